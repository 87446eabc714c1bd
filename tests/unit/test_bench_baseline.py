"""The baseline handler behaves as specified: one text at a time, 150 positions, argmax pairs, no offsets."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from bench.baseline_handler import MAX_LENGTH, BaselineHandler, request_text
from ja_ner.labels import IO_LABELS


@pytest.fixture(scope="module")
def handler(tiny_model_dir: Path) -> BaselineHandler:
    h = BaselineHandler()
    h.initialize(SimpleNamespace(system_properties={"model_dir": str(tiny_model_dir), "gpu_id": None}))
    return h


def test_request_text_reads_every_torchserve_shape() -> None:
    assert request_text({"body": "東京"}) == "東京"
    assert request_text({"body": bytearray("東京".encode())}) == "東京"
    assert request_text({"data": b"\xe6\x9d\xb1"}) == "東"
    assert request_text({"body": {"text": "大阪"}}) == "大阪"


def test_every_answer_has_150_subword_label_pairs(handler: BaselineHandler) -> None:
    out = handler.handle([{"body": "鈴木は熊本県に住む"}], SimpleNamespace())
    assert len(out) == 1
    pairs = json.loads(out[0])
    assert len(pairs) == MAX_LENGTH == 150
    assert pairs[0][0] == "<s>" and pairs[-1][0] == "<pad>"  # padded to 150, special tokens kept
    assert all(len(p) == 2 and p[1] in IO_LABELS for p in pairs)  # (subword, label): no offsets, no scores


def test_labels_are_the_argmax_of_a_padded_forward(handler: BaselineHandler) -> None:
    text = "株式会社ソニーの本社は東京都港区にある。"
    pairs = json.loads(handler.handle([{"body": text}], SimpleNamespace())[0])
    encoded = handler.tokenizer(text, padding="max_length", max_length=150, truncation=True, return_tensors="pt")
    with torch.no_grad():
        expected = handler.model(**encoded).logits.argmax(-1)[0].tolist()
    assert [p[1] for p in pairs] == [handler.model.config.id2label[i] for i in expected]
    assert [p[0] for p in pairs] == handler.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist())


def test_long_text_is_silently_truncated_and_rows_answered_one_by_one(handler: BaselineHandler) -> None:
    rows = [{"body": "東京都" * 400}, {"body": "大阪"}]
    out = handler.handle(rows, SimpleNamespace())
    assert len(out) == 2
    long, short = (json.loads(o) for o in out)
    assert len(long) == len(short) == 150
    assert long[-1][0] == "</s>"  # cut at 150 without any error or flag
    assert json.loads(handler.handle([rows[1]], SimpleNamespace())[0]) == short
