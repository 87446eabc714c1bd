"""Word boundaries from a morphological analyser (fugashi + unidic-lite).

Japanese has no spaces, so the word-level aggregation strategies need a real analyser.
fugashi wraps MeCab (C, fast) and unidic-lite is a pip-installable dictionary; both are pinned.
"""

from __future__ import annotations

import fugashi


class WordSplitter:
    """Callable returning [start, end) character spans of the words of a text, in order."""

    def __init__(self) -> None:
        self._tagger = fugashi.Tagger()  # finds the unidic-lite dictionary on its own

    def __call__(self, text: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        cursor = 0
        for word in self._tagger(text):
            surface = word.surface
            start = text.find(surface, cursor) if surface else -1
            if start < 0:
                continue  # MeCab rewrote the surface (should not happen after normalisation)
            cursor = start + len(surface)
            spans.append((start, cursor))
        return spans
