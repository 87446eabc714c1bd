"""The committed default model (issue 3): plain-folder loading, size budget, labels, widget sentences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import training  # noqa: F401
from training.align import LABELS

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "ja-ner-small"
SIZE_LIMIT = 60_000_000  # bytes, everything under models/ja-ner-small/
WIDGET = {
    "鈴木は4月の陽気の良い日に、鈴をつけて熊本県の阿蘇山に登った": {
        ("鈴木", "PER"),
        ("熊本県", "LOC"),
        ("阿蘇山", "LOC"),
    },
    "中国では、中国共産党による一党統治が続く": {("中国", "LOC"), ("中国共産党", "ORG-P")},
}


def test_folder_size_within_budget():
    total = sum(p.stat().st_size for p in MODEL_DIR.rglob("*") if p.is_file())
    assert total <= SIZE_LIMIT, total


def test_config_labels_and_fp16_weights():
    config = json.loads((MODEL_DIR / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(LABELS))] == list(LABELS)
    assert config["label2id"] == {label: i for i, label in enumerate(LABELS)}
    from safetensors import safe_open

    with safe_open(str(MODEL_DIR / "model.safetensors"), "pt") as fh:
        dtypes = {str(fh.get_slice(k).get_dtype()) for k in fh.keys()}  # noqa: SIM118 (safe_open is not iterable)
    assert dtypes == {"F16"}


@pytest.fixture(scope="module")
def loaded():
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(MODEL_DIR)
    model = AutoModelForTokenClassification.from_pretrained(MODEL_DIR).eval()
    return tok, model, torch


def test_loads_from_plain_folder_as_fast_tokenizer_and_fp32_model(loaded):
    tok, model, torch = loaded
    assert tok.is_fast and tok.vocab_size == model.config.vocab_size == 20_000
    assert model.dtype == torch.float32
    enc = tok("熊本県", return_offsets_mapping=True)
    assert enc["input_ids"][0] == tok.cls_token_id and enc["input_ids"][-1] == tok.sep_token_id


def test_widget_sentences_in_process(loaded):
    from training.checkpoint import predict_spans
    from training.data import Example

    tok, model, _ = loaded
    texts = list(WIDGET)
    for text, spans in zip(texts, predict_spans(model, tok, [Example("", t, ()) for t in texts]), strict=True):
        found = {(text[s.start : s.end], s.type) for s in spans}
        assert WIDGET[text] <= found, found


def test_widget_sentences_through_core_pipeline():
    from ja_ner.pipeline import Pipeline
    from ja_ner.settings import Settings
    from ja_ner.types import Document

    pipe = Pipeline.load(MODEL_DIR, Settings())
    for text, result in zip(WIDGET, pipe.predict([Document(t) for t in WIDGET]), strict=True):
        found = {(e.text, e.type) for e in result.entities}
        assert all(text[e.start : e.end] == e.text for e in result.entities)
        assert WIDGET[text] <= found, found


def test_calibrated_threshold_travels_with_the_model_and_a_request_can_override_it():
    from ja_ner.options import RequestOptions
    from ja_ner.pipeline import Pipeline
    from ja_ner.settings import Settings
    from ja_ner.types import Document

    calibrated = json.loads((MODEL_DIR / "config.json").read_text())["ner_min_score"]
    assert 0.0 < calibrated < 1.0
    pipe = Pipeline.load(MODEL_DIR, Settings())
    assert pipe.min_score == calibrated
    assert Pipeline.load(MODEL_DIR, Settings(min_score=0.25)).min_score == 0.25  # the service may set its own
    text = "鈴木は4月の陽気の良い日に、鈴をつけて熊本県の阿蘇山に登った。中国では、中国共産党による一党統治が続く"
    by_threshold = {
        t: pipe.predict([Document(text, RequestOptions(min_score=t))])[0].entities for t in (0.0, calibrated, 1.0)
    }
    assert by_threshold[1.0] == ()
    assert set(by_threshold[calibrated]) <= set(by_threshold[0.0])
    assert all(e.score >= calibrated for e in by_threshold[calibrated])
    assert set(pipe.predict([Document(text)])[0].entities) == set(by_threshold[calibrated])
