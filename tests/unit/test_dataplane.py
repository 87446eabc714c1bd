"""ja_ner.dataplane.answer_batch: an exception injected at any stage stays with the request that raised it.

The real pipeline on the tiny random model (float32: answers do not depend on batch company), one
poisoned request between two good ones: the good ones get exactly their answers alone, the poisoned
one a 500 ``Internal`` (its stack trace logged once), and nothing is raised out of the batch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import ja_ner.dataplane as dataplane
from ja_ner.dataplane import Answer, Incoming, answer_batch, error_answer
from ja_ner.errors import InvalidInput
from ja_ner.pipeline import Pipeline
from ja_ner.request import ParsedRequest
from ja_ner.settings import Settings

MODEL = {"model": "ja_ner", "model_version": "1"}
POISON = "毒"
GOOD = (
    Incoming("東京都に住む鈴木さん".encode(), "text/plain"),
    Incoming('{"texts": ["大阪", "京都の田中"], "options": {"aggregation": "max"}}'.encode(), "application/json"),
)
POISONED = Incoming(POISON.encode(), "text/plain")


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir: Path) -> Pipeline:
    settings = Settings(max_chars=200, max_tokens=48, overlap_tokens=8, dtype="float32", threads=1)
    return Pipeline.load(tiny_model_dir, settings)


@pytest.fixture(scope="module")
def alone(pipeline: Pipeline) -> list[Answer]:
    answers = [answer_batch(pipeline, MODEL, [g])[0] for g in GOOD]
    assert all(a.status == 200 for a in answers)
    return answers


def _poisoned(request: ParsedRequest) -> bool:
    return any(d.text == POISON for d in request.documents)


def _boom(*_: object) -> None:
    raise RuntimeError("injected")


def _inject(stage: str, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Make ``stage`` raise for the poisoned request only; the keyword arguments for answer_batch."""
    if stage == "read":
        return {"poisoned": _boom}
    if stage == "parse":
        real = dataplane.parse_request
        monkeypatch.setattr(
            dataplane, "parse_request", lambda body, **kw: _boom() if body == POISONED.body else real(body, **kw)
        )
    elif stage == "admit":
        real_chars = ParsedRequest.chars.fget
        monkeypatch.setattr(ParsedRequest, "chars", property(lambda r: _boom() if _poisoned(r) else real_chars(r)))
    elif stage == "predict":
        real_prepare = pipeline._prepare
        monkeypatch.setattr(pipeline, "_prepare", lambda doc: _boom() if doc.text == POISON else real_prepare(doc))
    elif stage == "render":
        real_render = dataplane.render_response
        monkeypatch.setattr(
            dataplane, "render_response", lambda r, o, m: _boom() if _poisoned(r) else real_render(r, o, m)
        )
    elif stage == "stream":  # the poisoned request streams, and sending its partial message fails
        return {"poisoned": Incoming(POISONED.body, "text/plain", stream=True), "send_partial": _boom}
    elif stage == "stream-prepare":  # the pipeline's streaming path itself raises
        real_prepare = pipeline._prepare
        monkeypatch.setattr(pipeline, "_prepare", lambda doc: _boom() if doc.text == POISON else real_prepare(doc))
        return {"poisoned": Incoming(POISONED.body, "text/plain", stream=True), "send_partial": lambda i, b: None}
    return {}


@pytest.mark.parametrize("stage", ["read", "parse", "admit", "predict", "render", "stream", "stream-prepare"])
def test_an_exception_injected_at_each_stage_stays_with_its_request(
    pipeline: Pipeline, alone: list[Answer], stage: str, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    kwargs = _inject(stage, pipeline, monkeypatch)
    poisoned = kwargs.pop("poisoned", POISONED)
    with caplog.at_level(logging.WARNING):
        answers = answer_batch(pipeline, MODEL, [GOOD[0], poisoned, GOOD[1]], **kwargs)
    assert [answers[0], answers[2]] == alone  # byte for byte what each gets alone
    assert answers[1].status == 500
    assert json.loads(answers[1].body) == {"code": 500, "type": "Internal", "message": answers[1].error.message}
    traces = [r for r in caplog.records if r.exc_info]
    assert len(traces) == 1 and "injected" in str(traces[0].exc_info[1])  # logged once, with its stack


def test_a_failing_metrics_recorder_fails_no_answer(pipeline: Pipeline, alone: list[Answer], caplog) -> None:
    with caplog.at_level(logging.ERROR):
        answers = answer_batch(pipeline, MODEL, list(GOOD), record=_boom)
    assert answers == alone
    assert any("metrics" in r.getMessage() for r in caplog.records)


def test_a_bug_outside_every_request_guard_still_answers_each_request(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataplane, "_admit", _boom)
    answers = answer_batch(pipeline, MODEL, [*GOOD, POISONED])
    assert [a.status for a in answers] == [500, 500, 500]
    assert {json.loads(a.body)["type"] for a in answers} == {"Internal"}


def test_busy_admission_is_in_the_data_plane(tiny_model_dir: Path) -> None:
    """max_batch_chars: a request that does not fit beside those before it is refused alone (503 Busy)."""
    settings = Settings(max_request_chars=100, max_batch_chars=150, dtype="float32", threads=1)
    small = Pipeline.load(tiny_model_dir, settings)
    requests = [Incoming("東" * 100, "text/plain"), Incoming("京" * 60, "text/plain"), Incoming("大阪" * 20, None)]
    statuses = [(a.status, json.loads(a.body).get("type")) for a in answer_batch(small, MODEL, requests)]
    assert statuses == [(200, None), (503, "Busy"), (200, None)]


def test_partial_messages_go_to_the_streaming_request_only(pipeline: Pipeline) -> None:
    sent: list[tuple[int, dict]] = []
    text = "東京都に住む鈴木さんは大阪の田中さんに会った。" * 6  # several 48-token windows
    requests = [GOOD[0], Incoming(text.encode(), "text/plain", stream=True)]
    answers = answer_batch(pipeline, MODEL, requests, send_partial=lambda i, body: sent.append((i, json.loads(body))))
    assert {i for i, _ in sent} == {1} and len(sent) > 1
    assert [m["window"] for _, m in sent] == list(range(len(sent))) and all(m["partial"] for _, m in sent)
    assert answers[1] == answer_batch(pipeline, MODEL, [Incoming(text.encode(), "text/plain")])[0]


def test_an_error_whose_message_cannot_be_encoded_is_still_json() -> None:
    """Regression: a message holding a lone surrogate failed ``.encode("utf-8")`` outside every guard."""
    answer = error_answer(InvalidInput("unknown field(s): \ud800"))
    assert answer.status == 400 and json.loads(answer.body)["message"] == "unknown field(s): \ud800"
