"""Stage 4: group windows into padded micro-batches under a token budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ja_ner.encode import TokenisedText
from ja_ner.segment import Window


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


def plan(windows: list[Window], *, token_budget: int, keep_order: bool = False) -> list[list[Window]]:
    """Cut windows into groups whose padded size fits the budget.

    Windows are sorted by length first (less padding) unless ``keep_order`` (streaming, where
    messages follow the text). A group is closed when adding a window would make
    ``rows * longest`` exceed ``token_budget``; a single window always forms a group.
    """
    groups: list[list[Window]] = []
    current: list[Window] = []
    longest = 0
    for window in windows if keep_order else sorted(windows, key=len):
        size = max(longest, len(window) + 2)  # + [cls] and [sep]
        if current and (len(current) + 1) * size > token_budget:
            groups.append(current)
            current, size = [], len(window) + 2
        current.append(window)
        longest = size
    if current:
        groups.append(current)
    return groups


def assemble(group: list[Window], tokens: list[TokenisedText], ids: SpecialIds) -> Batch:
    """Pad one group to its longest window (plus the two special tokens)."""
    length = max(len(w) for w in group) + 2
    input_ids = np.full((len(group), length), ids.pad, dtype=np.int64)
    mask = np.zeros((len(group), length), dtype=np.int64)
    for row, w in enumerate(group):
        body = tokens[w.doc_index].input_ids[w.start : w.end]
        input_ids[row, : len(body) + 2] = (ids.cls, *body, ids.sep)
        mask[row, : len(body) + 2] = 1
    return Batch(tuple(group), input_ids, mask)
