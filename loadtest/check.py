"""Request bodies and the answer check: a load test counts a wrong answer as a failure."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from ja_ner import labels
from loadtest.corpus import Corpus

KINDS = ("text", "json", "batch")  # text/plain body, {"text": ...}, {"texts": [...]}
ENTITY_TYPES = frozenset(labels.ENTITY_TYPES)


class WrongAnswer(Exception):
    """The server answered, but not correctly (reported to Locust as a failure)."""


@dataclass(frozen=True)
class Payload:
    """One request: what is sent and the texts the answer must refer to."""

    kind: str  # one of KINDS
    texts: tuple[str, ...]
    body: bytes
    content_type: str


def make_payload(kind: str, corpus: Corpus, rng: random.Random, batch_size: int = 4) -> Payload:
    """Build a request of ``kind`` from texts drawn from ``corpus``.

    Raises:
        ValueError: an unknown kind.
    """
    if kind == "text":
        text = corpus.sample(rng)
        return Payload(kind, (text,), text.encode("utf-8"), "text/plain; charset=utf-8")
    if kind == "json":
        text = corpus.sample(rng)
        return Payload(kind, (text,), _json_bytes({"text": text}), "application/json")
    if kind == "batch":
        texts = tuple(corpus.sample(rng) for _ in range(batch_size))
        return Payload(kind, texts, _json_bytes({"texts": list(texts)}), "application/json")
    raise ValueError(f"unknown payload kind {kind!r}; known: {', '.join(KINDS)}")


def parse_weights(spec: str) -> dict[str, float]:
    """Parse ``"text=6,json=3,batch=1"`` into weights per payload kind (missing kinds get 0).

    Raises:
        ValueError: an unknown kind, a negative or non-numeric weight, or all weights zero.
    """
    weights = dict.fromkeys(KINDS, 0.0)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in weights:
            raise ValueError(f"bad weight {part!r}; expected kind=number with kind one of {', '.join(KINDS)}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise ValueError(f"weight of {name!r} is not a number: {value!r}") from None
        if weights[name] < 0:
            raise ValueError(f"weight of {name!r} is negative")
    if not any(weights.values()):
        raise ValueError(f"all payload weights are zero in {spec!r}")
    return weights


class KindCycle:
    """Payload kinds in proportion to their weights, spread evenly (smooth weighted round robin).

    Deterministic: over any ``sum(weights)`` consecutive picks of integer weights every kind
    appears exactly its weight's number of times, so even a short run sends every kind.
    ``offset`` skips that many picks first (users start at different places in the cycle).
    """

    def __init__(self, weights: dict[str, float], offset: int = 0) -> None:
        self._weights = {k: w for k, w in weights.items() if w > 0}
        if not self._weights:
            raise ValueError("no payload kind has a positive weight")
        self._total = sum(self._weights.values())
        self._current = dict.fromkeys(self._weights, 0.0)
        for _ in range(offset):
            self.next()

    def next(self) -> str:
        """The next kind: the one furthest behind its share (ties: the first in ``weights``)."""
        for kind, weight in self._weights.items():
            self._current[kind] += weight
        kind = max(self._current, key=self._current.__getitem__)
        self._current[kind] -= self._total
        return kind


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def check_answer(body: bytes | str, payload: Payload, types: frozenset[str] | None = ENTITY_TYPES) -> int:
    """Check one answer against what was sent; return the number of entities checked.

    The answer must be a JSON object without the error keys ``code``/``type``; a single text gets
    ``entities``, a ``texts`` batch gets ``results`` of the same length. Every entity needs
    ``0 <= start < end <= len(text)`` (code points), ``text == sent[start:end]``, a type in
    ``types`` (None accepts any) and a score in [0, 1] when one is given.

    Raises:
        WrongAnswer: the first problem found, with the item index in the message.
    """
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WrongAnswer(f"answer is not JSON: {exc}") from None
    if not isinstance(answer, dict):
        raise WrongAnswer(f"answer is a JSON {type(answer).__name__}, not an object")
    if "code" in answer or "type" in answer:
        raise WrongAnswer(f"error answer {answer.get('code')} {answer.get('type')}: {answer.get('message')}")
    if payload.kind == "batch":
        results = answer.get("results")
        if not isinstance(results, list):
            raise WrongAnswer('batch answer has no "results" list')
        if len(results) != len(payload.texts):
            raise WrongAnswer(f"batch of {len(payload.texts)} texts answered with {len(results)} results")
    else:
        results = [answer]
    count = 0
    for index, (result, text) in enumerate(zip(results, payload.texts, strict=True)):
        entities = result.get("entities") if isinstance(result, dict) else None
        if not isinstance(entities, list):
            raise WrongAnswer(f"result {index} has no entities list")
        for entity in entities:
            _check_entity(entity, text, types, index)
        count += len(entities)
    return count


def _check_entity(entity: Any, text: str, types: frozenset[str] | None, index: int) -> None:
    if not isinstance(entity, dict):
        raise WrongAnswer(f"result {index}: entity is not an object: {entity!r}")
    start, end = entity.get("start"), entity.get("end")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise WrongAnswer(f"result {index}: start/end are not integers: {entity!r}")
    if not 0 <= start < end <= len(text):
        raise WrongAnswer(f"result {index}: span {start}..{end} outside a text of {len(text)} characters")
    if entity.get("text") != text[start:end]:
        raise WrongAnswer(
            f"result {index}: entity text {entity.get('text')!r} != sent[{start}:{end}] {text[start:end]!r}"
        )
    if types is not None and entity.get("type") not in types:
        raise WrongAnswer(f"result {index}: unknown entity type {entity.get('type')!r}")
    score = entity.get("score")
    if score is not None and not (isinstance(score, (int, float)) and 0.0 <= score <= 1.0):
        raise WrongAnswer(f"result {index}: score {score!r} outside [0, 1]")


def corrupt(payload: Payload) -> Payload:
    """A copy whose expected texts are rotated by one character (test-only: every entity mismatches).

    Only what the checker compares against changes; the request body stays as sent.
    """
    return Payload(payload.kind, tuple(t[1:] + t[:1] for t in payload.texts), payload.body, payload.content_type)
