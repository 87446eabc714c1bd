"""Stage 3: cut a tokenised document into windows that fit the model.

Windows end at sentence boundaries (。！？!? and line breaks) whenever a sentence fits; several
short sentences share one window. A sentence longer than a window is cut in token space into
windows that overlap by ``overlap_tokens``; each window *owns* the tokens up to the middle of
its overlaps, so every token's prediction comes from exactly one window, where it had the most
context on both sides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ja_ner.encode import TokenisedText

_SENTENCE_END = re.compile(r"[。．！？!?\n]+[」』）)】\]]*")


@dataclass(frozen=True)
class Window:
    """Tokens [start, end) of document ``doc_index``; it owns tokens [own_start, own_end)."""

    doc_index: int
    start: int
    end: int
    own_start: int
    own_end: int

    def __len__(self) -> int:
        return self.end - self.start


def sentence_ends(text: str) -> list[int]:
    """Character positions just after each sentence terminator run (closing brackets included)."""
    return [m.end() for m in _SENTENCE_END.finditer(text)]


def _sentence_token_bounds(tokens: TokenisedText, text: str) -> list[int]:
    """Token indices where a new sentence starts (always includes 0 and len(tokens))."""
    ends = sentence_ends(text)
    bounds = [0]
    j = 0
    for i, (start, end) in enumerate(tokens.offsets):
        while j < len(ends) and ends[j] <= start and end > start:
            if i > bounds[-1]:
                bounds.append(i)
            j += 1
    if len(tokens) > bounds[-1]:
        bounds.append(len(tokens))
    return bounds


def _split_long(doc_index: int, start: int, end: int, size: int, overlap: int) -> list[Window]:
    """Overlapping windows over tokens [start, end); ownership splits each overlap in half."""
    step = size - overlap
    starts = list(range(start, max(end - overlap, start + 1), step))
    windows = []
    for k, s in enumerate(starts):
        e = min(s + size, end)
        own_start = start if k == 0 else s + overlap // 2
        own_end = end if k == len(starts) - 1 else starts[k + 1] + overlap // 2
        windows.append(Window(doc_index, s, e, own_start, own_end))
    return windows


def segment(doc_index: int, tokens: TokenisedText, text: str, *, max_tokens: int, overlap: int) -> list[Window]:
    """Windows of at most ``max_tokens`` tokens (special tokens excluded) covering every token.

    Returns an empty list for a document without tokens.
    """
    bounds = _sentence_token_bounds(tokens, text)
    windows: list[Window] = []
    cur = 0  # first token of the window being filled
    prev = 0  # the sentence bound before ``nxt`` (bounds are sorted: one pass, no rescan)
    for nxt in bounds[1:]:
        if nxt - cur > max_tokens:
            if cur < prev and prev - cur <= max_tokens:
                windows.append(Window(doc_index, cur, prev, cur, prev))  # close at the last bound that fits
                cur = prev
            if nxt - cur > max_tokens:
                windows.extend(_split_long(doc_index, cur, nxt, max_tokens, overlap))
                cur = nxt
        prev = nxt
    if cur < len(tokens):
        windows.append(Window(doc_index, cur, len(tokens), cur, len(tokens)))
    return windows
