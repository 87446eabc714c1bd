"""Typed values that cross pipeline stage boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ja_ner.errors import NerError
from ja_ner.options import RequestOptions


@dataclass(frozen=True)
class NormalisedText:
    """Text after normalisation, with a map back to the caller's string.

    ``to_original[i]`` is the code-point index in ``original`` where the source
    of normalised character ``i`` starts, and ``to_original_end[i]`` where it
    ends (one original character may expand into several normalised ones, and
    several original ones may fold into one). ``normalise.to_original_span``
    is the only function that reads them.
    """

    original: str
    text: str
    to_original: tuple[int, ...]
    to_original_end: tuple[int, ...]


@dataclass(frozen=True)
class Entity:
    """One entity; ``start``/``end`` are code-point offsets into the original text."""

    type: str
    text: str
    start: int
    end: int
    score: float


# The Hugging Face TokenClassificationPipeline's entity keys (aggregation strategy set) and ours:
# the ``format: hf`` answers. ``word`` is the exact text between start and end.
HF_KEYS: tuple[tuple[str, str], ...] = (
    ("entity_group", "type"),
    ("score", "score"),
    ("word", "text"),
    ("start", "start"),
    ("end", "end"),
)


def entity_to_hf(entity: dict[str, Any]) -> dict[str, Any]:
    """An entity's JSON in the pipeline's shape: ``{"entity_group", "score", "word", "start", "end"}``."""
    return {hf: entity[ours] for hf, ours in HF_KEYS}


def entity_from_hf(entity: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``entity_to_hf``: ``{"type", "text", "start", "end", "score"}``."""
    return {ours: entity[hf] for hf, ours in HF_KEYS}


@dataclass(frozen=True)
class TokenInfo:
    """Debug view of one token (``include_tokens``); offsets into the original text."""

    token: str
    start: int
    end: int
    label: str
    score: float


@dataclass(frozen=True)
class Document:
    """One text to analyse and the options that apply to it."""

    text: str
    options: RequestOptions = field(default_factory=RequestOptions)


@dataclass(frozen=True)
class DocumentResult:
    """Entities of one document, sorted by ``start`` and never overlapping."""

    entities: tuple[Entity, ...]
    truncated: bool = False
    tokens: tuple[TokenInfo, ...] | None = None


Outcome = DocumentResult | NerError
