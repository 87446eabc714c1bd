"""Stage 6: turn token probabilities into entity spans (normalised character positions).

Policies, stated once:
- Tokens with an empty span (bare ``▁``) and special tokens never reach this stage.
- ``simple``: each token is a unit. ``first``/``average``/``max``: each word from the
  morphological analyser is a unit whose probabilities are those of its first token, the mean
  over its tokens, or those of its most confident token. A token belongs to every word it overlaps.
- Decoding ``group`` (setting ``decoding``): units are grouped by the label codec. IO joins
  consecutive units of one type (touching entities of one type merge: an IO limit; a type change
  is the only edge IO has). BIO/BIOES
  run an entity from a B/S (or from an I without a B) through every following I/E, whatever
  their types, until O, the next B/S or an E; the entity takes the type with the largest
  probability summed over its units. A small model often wavers between types inside one
  name (ミ|ャ|ンマー as PER, LOC, PER); voting keeps the name whole (+2 F1 points on dev).
- Decoding ``viterbi``: the units take the most probable label path the scheme allows
  (``LabelCodec.viterbi``: no I-T after O or after another type), read into entities by
  ``LabelCodec.runs``; an entity's type is its B's. An IO model has no illegal path: both decodings
  give the same entities.
- The score of an entity is the mean, over its units, of the probability of its type
  (B-, I-, E- and S- of that type together).
- With words given and ``word_edges`` on, edges move onto word boundaries (see ``edges``); with
  ``news_edges`` too, titles, one-character countries and affixes written against a name are split off.
- Entities scoring below ``min_score`` are dropped (the default model calibrates one on dev).
- Whitespace is trimmed from both edges; overlapping spans are clipped to the earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ja_ner import edges
from ja_ner.labels import Decoding, LabelCodec, Scheme, Tag
from ja_ner.options import Aggregation
from ja_ner.words import Words


@dataclass(frozen=True)
class Span:
    """An entity in normalised-text coordinates."""

    type: str
    start: int
    end: int
    score: float


@dataclass
class _Open:
    tag_type: str  # the type of the argmax tag that opened the run (IO continues on it)
    start: int
    end: int
    masses: list[np.ndarray]  # per unit: probability of each entity type


def _units(
    offsets: list[tuple[int, int]],
    probs: np.ndarray,
    strategy: Aggregation,
    words: Words | None,
    codec: LabelCodec | None = None,
) -> list[tuple[int, int, np.ndarray]]:
    """One (start, end, label probabilities) per unit: a token, or a word (``strategy``).

    With ``codec`` (structured decoding), an ``average``/``max`` word keeps its aggregated mass
    per type but takes its position labels (B/I/E/S) from its first token: the word's most
    confident token is often an inner I-, and a word read as "I- after O" would be an illegal
    start that the Viterbi path then drops (鈴木 as ▁ + 鈴木 under ``max``).
    """
    if strategy is Aggregation.SIMPLE or words is None:
        return [(s, e, p) for (s, e), p in zip(offsets, probs, strict=True)]
    units = []
    k = 0
    for word in words:
        ws, we = word.start, word.end
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
        if codec is not None and strategy is not Aggregation.FIRST:
            vec = _positions_of_first(vec, vectors[0], codec)
        units.append((ws, we, vec))
    return units


def _positions_of_first(vec: np.ndarray, first: np.ndarray, codec: LabelCodec) -> np.ndarray:
    """``vec``'s mass per entity type, split over that type's positions as ``first`` splits it."""
    type_of = codec.type_matrix  # [labels, types], one-hot rows; O's row is zero
    entity = type_of.sum(axis=1) > 0
    own = type_of @ (vec @ type_of)  # each label: its type's aggregated mass
    base = type_of @ (first @ type_of)  # each label: its type's mass in the first token
    split = np.where(base > 1e-12, first / np.maximum(base, 1e-12), vec / np.maximum(own, 1e-12))
    return np.where(entity, own * split, vec).astype(vec.dtype, copy=False)


def _group(units: list[tuple[int, int, np.ndarray]], codec: LabelCodec) -> list[Span]:
    mass_of = codec.type_matrix  # [labels, types]: probs @ mass_of sums each type's labels
    runs: list[_Open] = []
    current: _Open | None = None
    for start, end, vec in units:
        tag = codec.tags[int(vec.argmax())]
        if tag.position == "O":
            current = None
            continue
        if current is not None and _continues(current, tag, codec.scheme):
            current.end = end
            current.masses.append(vec @ mass_of)
        else:
            current = _Open(tag.type, start, end, [vec @ mass_of])
            runs.append(current)
        if tag.position in ("E", "S"):
            current = None
    return [_decide(run, codec) for run in runs]


def _viterbi(units: list[tuple[int, int, np.ndarray]], codec: LabelCodec) -> list[Span]:
    if not units:
        return []
    probs = np.stack([vec for _, _, vec in units])
    masses = probs @ codec.type_matrix  # [units, types]
    spans = []
    for first, stop, kind in codec.runs(codec.viterbi(probs)):
        score = float(masses[first:stop, codec.types.index(kind)].mean())
        spans.append(Span(kind, units[first][0], units[stop - 1][1], score))
    return spans


def _continues(run: _Open, tag: Tag, scheme: Scheme) -> bool:
    # IO has no B: a type change is its only edge. BIO/BIOES: any I/E continues, its type is voted on.
    if scheme is Scheme.IO:
        return run.tag_type == tag.type
    return tag.position in ("I", "E")


def _decide(run: _Open, codec: LabelCodec) -> Span:
    total = np.sum(run.masses, axis=0)
    best = int(total.argmax())
    return Span(codec.types[best], run.start, run.end, float(total[best]) / len(run.masses))


def _edge_noise(ch: str) -> bool:
    """Whitespace or an emoji (pictographs, dingbats, their joiner and presentation selector): never the
    first or last character of a name. A model reads an emoji as ``<unk>`` and may tag it with the name
    next to it (``👍 鈴木`` -> ``👍`` PER); other symbols (``501®``, ``〒``) are left alone."""
    code = ord(ch)
    return ch.isspace() or 0x2600 <= code <= 0x27BF or 0x1F000 <= code <= 0x1FAFF or code in (0x200D, 0xFE0F)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and _edge_noise(text[start]):
        start += 1
    while end > start and _edge_noise(text[end - 1]):
        end -= 1
    return start, end


def _on_words(span: Span, words: Words, drop_function: bool) -> Span:
    start, end = edges.follow_words(span.start, span.end, words, drop_function=drop_function)
    return Span(span.type, start, end, span.score)


def aggregate(
    text: str,
    offsets: list[tuple[int, int]],
    probs: np.ndarray,
    codec: LabelCodec,
    strategy: Aggregation,
    words: Words | None = None,
    *,
    word_edges: bool = False,
    keep_function_words: frozenset[str] = frozenset(),
    news_edges: bool = False,
    min_score: float = 0.0,
    decoding: Decoding = Decoding.VITERBI,
) -> list[Span]:
    """Entities of one document, sorted by start and non-overlapping.

    Args:
        text: the normalised text the offsets index.
        offsets: [start, end) of each token, in order, empty spans already removed.
        probs: [tokens, labels] probabilities, rows aligned with ``offsets``.
        words: the text's words; required for ``first``/``average``/``max`` and ``word_edges``.
        word_edges: move entity edges onto word boundaries (``edges.follow_words``).
        keep_function_words: entity types whose edge particles stay (titles).
        news_edges: split titles, one-character countries and affixes off names (``edges.news_neighbours``);
            needs ``word_edges``.
        min_score: entities scoring below are dropped (before they can clip a neighbour).
        decoding: ``viterbi`` (the best legal label path; the served default, setting ``decoding``) or
            ``group`` (argmax runs, type voted).
    """
    viterbi = decoding is Decoding.VITERBI
    units = _units(offsets, probs, strategy, words, codec if viterbi else None)
    decoded = _viterbi(units, codec) if viterbi else _group(units, codec)
    grouped = [g for g in decoded if g.score >= min_score]
    if word_edges and words:
        grouped = [_on_words(g, words, g.type not in keep_function_words) for g in grouped]
        if news_edges:
            grouped = [
                Span(kind, start, end, g.score)
                for g in grouped
                for kind, start, end in edges.news_neighbours(g.type, g.start, g.end, text, words)
            ]
    spans: list[Span] = []
    last_end = 0
    for g in grouped:
        start, end = _trim(text, max(g.start, last_end), g.end)
        if start >= end:
            continue
        spans.append(Span(g.type, start, end, g.score))
        last_end = end
    return spans
