"""Stage 4: group windows into padded micro-batches under a token budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ja_ner.encode import TokenisedText
from ja_ner.segment import Window

# Micro-batches are padded to a multiple of ``pad_multiple`` tokens, which the plan decides per runtime
# and format (``ja_ner.plan.pad_multiple_for``: 16 where oneDNN caches kernels per shape, else 1).
# Padding tokens are masked, so answers do not change.


def padded_length(n: int, max_length: int | None = None, pad_multiple: int = 1) -> int:
    """``n`` tokens rounded up to a multiple of ``pad_multiple``, never past ``max_length`` (nor below ``n``)."""
    rounded = -(-n // pad_multiple) * pad_multiple
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
    windows: list[Window],
    *,
    token_budget: int,
    keep_order: bool = False,
    max_length: int | None = None,
    pad_multiple: int = 1,
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
        own = padded_length(len(window) + 2, max_length, pad_multiple)  # + [cls] and [sep]
        size = max(longest, own)
        if current and (len(current) + 1) * size > token_budget:
            groups.append(current)
            current, size = [], own
        current.append(window)
        longest = size
    if current:
        groups.append(current)
    return groups


def assemble(
    group: list[Window],
    tokens: list[TokenisedText],
    ids: SpecialIds,
    max_length: int | None = None,
    pad_multiple: int = 1,
) -> Batch:
    """Pad one group to its longest window plus the two special tokens, rounded by ``padded_length``."""
    rows = [(ids.cls, *tokens[w.doc_index].input_ids[w.start : w.end], ids.sep) for w in group]
    return from_rows(rows, ids.pad, pad_multiple, max_length, windows=tuple(group))


def from_rows(
    rows: Sequence[Sequence[int]],
    pad: int,
    pad_multiple: int = 1,
    max_length: int | None = None,
    *,
    windows: tuple[Window, ...] = (),
) -> Batch:
    """Token-id rows (specials included) padded with ``pad`` to the longest, rounded by ``padded_length``."""
    length = padded_length(max(len(r) for r in rows), max_length, pad_multiple)
    input_ids = np.full((len(rows), length), pad, dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=np.int64)
    for row, body in enumerate(rows):
        input_ids[row, : len(body)] = body
        mask[row, : len(body)] = 1
    return Batch(windows, input_ids, mask)
