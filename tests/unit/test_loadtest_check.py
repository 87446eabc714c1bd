"""The load test's answer check: a wrong answer must be caught, a right one accepted."""

from __future__ import annotations

import json
import random

import pytest

from loadtest.check import KINDS, KindCycle, Payload, WrongAnswer, check_answer, corrupt, make_payload, parse_weights
from loadtest.corpus import Corpus

TEXT = "鈴木は熊本県に住む"


def _single(text: str = TEXT) -> Payload:
    return Payload("text", (text,), text.encode(), "text/plain; charset=utf-8")


def _entity(start: int, end: int, text: str = TEXT, type_: str = "PER", score: float = 0.9) -> dict:
    return {"type": type_, "text": text[start:end], "start": start, "end": end, "score": score}


def _answer(*entities: dict) -> bytes:
    return json.dumps(
        {"model": "ja_ner", "model_version": "1.0", "entities": list(entities), "truncated": False}
    ).encode()


def test_right_answers_pass() -> None:
    assert check_answer(_answer(_entity(0, 2), _entity(3, 6, type_="LOC")), _single()) == 2
    assert check_answer(_answer(), _single()) == 0
    batch = Payload("batch", (TEXT, "東京"), b"", "application/json")
    body = {"results": [{"entities": [_entity(0, 2)]}, {"entities": [_entity(0, 2, "東京", "LOC")]}]}
    assert check_answer(json.dumps(body), batch) == 2


def test_astral_characters_count_as_one_code_point() -> None:
    text = "𠮷野家の牛丼"
    assert check_answer(_answer(_entity(0, 3, text, "ORG")), _single(text)) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"code": 400, "type": "InvalidInput", "message": "bad"}', "error answer 400 InvalidInput"),
        (b'{"entities": null}', "no entities list"),
        (_answer(_entity(0, 2) | {"start": 1}), "!= sent[1:2]"),
        (_answer(_entity(0, 2) | {"end": 99}), "outside a text of 9"),
        (_answer(_entity(0, 2) | {"start": 2, "end": 2}), "span 2..2"),
        (_answer(_entity(0, 2) | {"start": "0"}), "not integers"),
        (_answer(_entity(0, 2) | {"start": True}), "not integers"),
        (_answer(_entity(0, 2, type_="PERSON")), "unknown entity type"),
        (_answer(_entity(0, 2, score=1.5)), "score 1.5"),
        (_answer(["not", "an", "object"]), "not an object"),
    ],
)
def test_wrong_answers_fail(body: bytes, message: str) -> None:
    with pytest.raises(WrongAnswer, match=message.replace("[", r"\[").replace(".", r"\.")):
        check_answer(body, _single())


def test_batch_answer_must_have_one_result_per_text() -> None:
    batch = Payload("batch", (TEXT, TEXT, TEXT), b"", "application/json")
    with pytest.raises(WrongAnswer, match="batch of 3 texts answered with 2 results"):
        check_answer(json.dumps({"results": [{"entities": []}, {"entities": []}]}), batch)
    with pytest.raises(WrongAnswer, match='no "results" list'):
        check_answer(_answer(), batch)


def test_any_type_accepted_when_types_is_none() -> None:
    assert check_answer(_answer(_entity(0, 2, type_="PERSON")), _single(), types=None) == 1


def test_corrupt_makes_every_entity_wrong_but_keeps_the_body() -> None:
    payload = _single()
    bad = corrupt(payload)
    assert bad.body == payload.body and len(bad.texts[0]) == len(TEXT)
    with pytest.raises(WrongAnswer, match="entity text"):
        check_answer(_answer(_entity(0, 2)), bad)


def test_make_payload_bodies() -> None:
    corpus = Corpus((("東京",), ("大阪",)), (1.0, 0.0), "test")
    rng = random.Random(0)
    assert make_payload("text", corpus, rng).body == "東京".encode()
    assert json.loads(make_payload("json", corpus, rng).body) == {"text": "東京"}
    batch = make_payload("batch", corpus, rng, batch_size=3)
    assert json.loads(batch.body) == {"texts": ["東京"] * 3} and batch.texts == ("東京",) * 3
    assert batch.content_type == "application/json"
    with pytest.raises(ValueError, match="unknown payload kind"):
        make_payload("xml", corpus, rng)


def test_parse_weights() -> None:
    assert parse_weights("text=6, batch=1") == {"text": 6.0, "json": 0.0, "batch": 1.0}
    assert set(parse_weights("json=1")) == set(KINDS)
    for bad in ("text", "xml=1", "text=-1", "text=x", "text=0"):
        with pytest.raises(ValueError):
            parse_weights(bad)


def test_kind_cycle_spreads_kinds_by_weight() -> None:
    cycle = KindCycle({"text": 5.0, "json": 4.0, "batch": 1.0})
    picks = [cycle.next() for _ in range(30)]
    for window in (picks[0:10], picks[10:20], picks[20:30]):
        assert (window.count("text"), window.count("json"), window.count("batch")) == (5, 4, 1)
    assert picks[:10] == ["text", "json", "text", "json", "text", "batch", "json", "text", "json", "text"]


def test_kind_cycle_offset_and_zero_weights() -> None:
    plain = KindCycle({"text": 1.0, "json": 1.0, "batch": 0.0})
    shifted = KindCycle({"text": 1.0, "json": 1.0, "batch": 0.0}, offset=1)
    assert [plain.next() for _ in range(4)] == ["text", "json", "text", "json"]
    assert [shifted.next() for _ in range(3)] == ["json", "text", "json"]
    with pytest.raises(ValueError):
        KindCycle({"text": 0.0})
