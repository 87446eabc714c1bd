"""Stage 4: group windows into padded micro-batches under a token budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ja_ner.encode import TokenisedText
from ja_ner.segment import Window

# Micro-batches are padded to a multiple of this many tokens. Every distinct input shape makes oneDNN
# build (and cache) new kernels and the allocator keep new block sizes: with lengths rounded to 16 a
# worker meets at most 16 shapes per row count for 256-token windows, and its memory levels off
# (docs/operations.md, soak). Padding tokens are masked, so answers do not change.
PAD_MULTIPLE = 16


def padded_length(n: int, max_length: int | None = None) -> int:
    """``n`` tokens rounded up to a multiple of ``PAD_MULTIPLE``, never past ``max_length`` (nor below ``n``)."""
    rounded = -(-n // PAD_MULTIPLE) * PAD_MULTIPLE
    return rounded if max_length is None else max(n, min(rounded, max_length))


@dataclass(frozen=True)
class SpecialIds:
    """Ids the model expects around and after each window."""

    cls: int
    sep: int
    pad: int


@dataclass(frozen=True)
class Batch:
    """Model inputs for ``windows``; row ``r`` holds ``[cls] window tokens [sep] pad...``."""

    windows: tuple[Window, ...]
    input_ids: np.ndarray  # int64 [rows, length]
    attention_mask: np.ndarray  # int64 [rows, length]


def plan(
    windows: list[Window], *, token_budget: int, keep_order: bool = False, max_length: int | None = None
) -> list[list[Window]]:
    """Cut windows into groups whose padded size fits the budget.

    Windows are sorted by length first (less padding) unless ``keep_order`` (streaming, where
    messages follow the text). A group is closed when adding a window would make
    ``rows * padded length`` exceed ``token_budget``; a single window always forms a group.
    ``max_length`` caps the padding (``padded_length``): the model's window, specials included.
    """
    groups: list[list[Window]] = []
    current: list[Window] = []
    longest = 0
    for window in windows if keep_order else sorted(windows, key=len):
        own = padded_length(len(window) + 2, max_length)  # + [cls] and [sep]
        size = max(longest, own)
        if current and (len(current) + 1) * size > token_budget:
            groups.append(current)
            current, size = [], own
        current.append(window)
        longest = size
    if current:
        groups.append(current)
    return groups


def assemble(group: list[Window], tokens: list[TokenisedText], ids: SpecialIds, max_length: int | None = None) -> Batch:
    """Pad one group to its longest window plus the two special tokens, rounded by ``padded_length``."""
    length = padded_length(max(len(w) for w in group) + 2, max_length)
    input_ids = np.full((len(group), length), ids.pad, dtype=np.int64)
    mask = np.zeros((len(group), length), dtype=np.int64)
    for row, w in enumerate(group):
        body = tokens[w.doc_index].input_ids[w.start : w.end]
        input_ids[row, : len(body) + 2] = (ids.cls, *body, ids.sep)
        mask[row, : len(body) + 2] = 1
    return Batch(tuple(group), input_ids, mask)
