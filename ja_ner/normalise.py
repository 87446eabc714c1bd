"""Stage 1: normalise text (NFKC, control characters, odd whitespace) keeping a map to the original."""

from __future__ import annotations

import unicodedata

from ja_ner.types import NormalisedText

# Characters that carry no meaning for NER and are removed: zero-width and bidi marks, BOM.
_DROPPED = frozenset("\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")
# Half-width voiced sound marks are spacing characters, yet NFKC composes them with the
# preceding kana (ｶﾞ -> ガ), so they belong to its cluster.
_HALF_WIDTH_MARKS = frozenset("\uff9e\uff9f")
# Line breaks are kept: sentence segmentation uses them.
_NEWLINES = frozenset("\n\r\u2028\u2029\x85")


def _clean(cluster: str) -> str:
    """Normalise one cluster (a base character and its combining marks)."""
    out = []
    for ch in unicodedata.normalize("NFKC", cluster):
        if ch in _NEWLINES:
            out.append("\n")
        elif ch in _DROPPED:
            continue
        elif ch.isspace():
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn"):
            # Control, lone surrogate, private-use and unassigned code points: a space keeps
            # the neighbours apart without feeding the model a character it never saw.
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _clusters(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into [start, end) clusters: a character plus following combining marks.

    NFKC composes marks with their base (か + U+3099 -> が), so the unit we normalise and
    map back must keep them together.
    """
    bounds: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or not (unicodedata.combining(text[i]) or text[i] in _HALF_WIDTH_MARKS):
            bounds.append((start, i))
            start = i
    return bounds if text else []


def normalise(original: str) -> NormalisedText:
    """Normalise ``original`` for the model.

    Each normalised character maps back to the cluster of original characters it came from.

    Returns:
        NormalisedText whose ``text`` may be shorter or longer than ``original``.
    """
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for start, end in _clusters(original):
        cleaned = _clean(original[start:end])
        chars.append(cleaned)
        starts.extend([start] * len(cleaned))
        ends.extend([end] * len(cleaned))
    return NormalisedText(original, "".join(chars), tuple(starts), tuple(ends))


def to_original_span(norm: NormalisedText, start: int, end: int) -> tuple[int, int]:
    """Map a non-empty normalised span [start, end) to the original string.

    The result covers every original character that contributed to the span, so it may be
    wider than the span when one original character expanded into several (㈱ -> (株)).
    """
    return norm.to_original[start], norm.to_original_end[end - 1]
