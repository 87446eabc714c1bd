"""Stage 6: turn token probabilities into entity spans (normalised character positions).

Policies, stated once:
- Tokens with an empty span (bare ``▁``) and special tokens never reach this stage.
- ``simple``: each token is a unit. ``first``/``average``/``max``: each word from the
  morphological analyser is a unit whose probabilities are those of its first token, the mean
  over its tokens, or those of its most confident token. A token belongs to every word it overlaps.
- Units are grouped by the label codec: IO joins consecutive units of one type (touching
  entities of one type merge: an IO limit); BIO/BIOES start a new entity at B/S and after a type
  change, so an I without a B starts an entity rather than being dropped.
- The score of an entity is the mean, over its units, of the probability of the unit's label.
- Whitespace is trimmed from both edges; overlapping spans are clipped to the earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ja_ner.labels import LabelCodec, Scheme
from ja_ner.options import Aggregation


@dataclass(frozen=True)
class Span:
    """An entity in normalised-text coordinates."""

    type: str
    start: int
    end: int
    score: float


@dataclass
class _Open:
    type: str
    start: int
    end: int
    scores: list[float]


def _units(
    offsets: list[tuple[int, int]],
    probs: np.ndarray,
    strategy: Aggregation,
    words: list[tuple[int, int]] | None,
) -> list[tuple[int, int, np.ndarray]]:
    if strategy is Aggregation.SIMPLE or words is None:
        return [(s, e, p) for (s, e), p in zip(offsets, probs, strict=True)]
    units = []
    k = 0
    for ws, we in words:
        while k < len(offsets) and offsets[k][1] <= ws:
            k += 1
        members = []
        i = k
        while i < len(offsets) and offsets[i][0] < we:
            if offsets[i][1] > ws:
                members.append(i)
            i += 1
        if not members:
            continue
        vectors = probs[members]
        if strategy is Aggregation.FIRST:
            vec = vectors[0]
        elif strategy is Aggregation.AVERAGE:
            vec = vectors.mean(axis=0)
        else:
            vec = vectors[int(vectors.max(axis=1).argmax())]
        units.append((ws, we, vec))
    return units


def _group(units: list[tuple[int, int, np.ndarray]], codec: LabelCodec) -> list[_Open]:
    entities: list[_Open] = []
    current: _Open | None = None
    for start, end, vec in units:
        label = int(vec.argmax())
        tag = codec.tags[label]
        score = float(vec[label])
        if tag.position == "O":
            current = None
            continue
        continues = (
            current is not None
            and current.type == tag.type
            and (codec.scheme is Scheme.IO or tag.position in ("I", "E"))
        )
        if continues and current is not None:
            current.end = end
            current.scores.append(score)
        else:
            current = _Open(tag.type, start, end, [score])
            entities.append(current)
        if tag.position in ("E", "S"):
            current = None
    return entities


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def aggregate(
    text: str,
    offsets: list[tuple[int, int]],
    probs: np.ndarray,
    codec: LabelCodec,
    strategy: Aggregation,
    words: list[tuple[int, int]] | None = None,
) -> list[Span]:
    """Entities of one document, sorted by start and non-overlapping.

    Args:
        text: the normalised text the offsets index.
        offsets: [start, end) of each token, in order, empty spans already removed.
        probs: [tokens, labels] probabilities, rows aligned with ``offsets``.
        words: word spans, required for ``first``/``average``/``max``.
    """
    spans: list[Span] = []
    last_end = 0
    for ent in _group(_units(offsets, probs, strategy, words), codec):
        start, end = _trim(text, max(ent.start, last_end), ent.end)
        if start >= end:
            continue
        spans.append(Span(ent.type, start, end, sum(ent.scores) / len(ent.scores)))
        last_end = end
    return spans
