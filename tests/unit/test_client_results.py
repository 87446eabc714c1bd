"""The client's JSON readers and retry policy (no server)."""

from __future__ import annotations

import json

import pytest

from ja_ner.client.results import (
    NerClientError,
    Prediction,
    RetryPolicy,
    batch_from_json,
    call_with_retries,
    decode_json,
    error_from_json,
    prediction_from_json,
    request_json,
)
from ja_ner.types import Entity

TEXT = "鈴木は熊本県に住む"
ANSWER = {
    "model": "ja_ner",
    "model_version": "1.0",
    "entities": [
        {"type": "PER", "text": "鈴木", "start": 0, "end": 2, "score": 0.97},
        {"type": "LOC", "text": "熊本県", "start": 3, "end": 6, "score": 0.91},
    ],
    "truncated": False,
}


def test_prediction_from_json_reads_entities_with_offsets_into_the_text():
    p = prediction_from_json(ANSWER)
    assert p == Prediction(
        entities=(Entity("PER", "鈴木", 0, 2, 0.97), Entity("LOC", "熊本県", 3, 6, 0.91)),
        truncated=False,
        model="ja_ner",
        model_version="1.0",
    )
    assert all(TEXT[e.start : e.end] == e.text for e in p.entities)
    assert not p.partial and p.window is None


def test_partial_stream_message_keeps_its_window():
    p = prediction_from_json({**ANSWER, "partial": True, "window": 3})
    assert p.partial and p.window == 3


@pytest.mark.parametrize(
    "body",
    [
        {"code": 400, "type": "InvalidInput", "message": "body is not valid UTF-8 (byte 0)"},
        {"code": 413, "type": "InputTooLarge", "message": '"texts" has 65 items; the limit is 64'},
        # TorchServe's own frontend errors have the same keys
        {"code": 503, "type": "ServiceUnavailableException", "message": "Model not ready"},
    ],
)
def test_error_body_is_raised_with_code_type_and_message(body):
    with pytest.raises(NerClientError) as info:
        prediction_from_json(body)
    assert (info.value.code, info.value.type, info.value.message) == (body["code"], body["type"], body["message"])
    with pytest.raises(NerClientError):
        batch_from_json(body, expected=2)


def test_answer_that_happens_to_have_a_code_key_is_not_an_error():
    assert error_from_json({**ANSWER, "code": 1, "type": "x", "message": "y"}) is None
    assert error_from_json({"code": 400, "type": "InvalidInput"}) is None  # no message: not our error body


def test_batch_answer_keeps_order_and_checks_count():
    body = {
        "model": "ja_ner",
        "model_version": "1.0",
        "results": [{"entities": ANSWER["entities"], "truncated": False}, {"entities": [], "truncated": True}],
    }
    first, second = batch_from_json(body, expected=2)
    assert len(first.entities) == 2 and second.entities == () and second.truncated
    assert second.model == "ja_ner"
    with pytest.raises(NerClientError, match="expected 3 results"):
        batch_from_json(body, expected=3)


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe"])
def test_non_json_body_is_a_bad_response(body):
    with pytest.raises(NerClientError) as info:
        decode_json(body)
    assert info.value.code == 502 and info.value.type == "BadResponse"


def test_malformed_entity_is_a_bad_response():
    with pytest.raises(NerClientError, match="malformed entity"):
        prediction_from_json({"entities": [{"type": "PER"}]})


def test_request_json_passes_options_unchanged():
    assert request_json(TEXT) == {"text": TEXT}
    assert request_json(texts=["a", "b"], options={"aggregation": "max"}) == {
        "texts": ["a", "b"],
        "options": {"aggregation": "max"},
    }
    json.dumps(request_json(TEXT, options={"offsets": "utf16"}))


def test_retry_policy_delays_grow_exponentially_up_to_the_cap():
    policy = RetryPolicy(max_attempts=6, initial_backoff=0.1, multiplier=2.0, max_backoff=0.5, jitter=0.0)
    assert list(policy.delays()) == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    jittered = list(RetryPolicy(jitter=0.5).delays(rand=lambda: 1.0))
    assert jittered == pytest.approx([0.05, 0.1, 0.2])
    assert list(RetryPolicy(max_attempts=1).delays()) == []


def test_call_with_retries_stops_at_success_or_non_retryable_error():
    calls, slept = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "ok"

    policy = RetryPolicy(max_attempts=4, jitter=0.0)
    assert call_with_retries(flaky, lambda e: isinstance(e, ConnectionError), policy, sleep=slept.append) == "ok"
    assert slept == pytest.approx([0.1, 0.2])

    with pytest.raises(ValueError):
        call_with_retries(lambda: int("x"), lambda e: isinstance(e, ConnectionError), policy, sleep=slept.append)

    def always_down():
        raise ConnectionError("down")

    slept.clear()
    with pytest.raises(ConnectionError):
        call_with_retries(always_down, lambda e: True, policy, sleep=slept.append)
    assert len(slept) == 3
