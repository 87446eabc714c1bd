"""Words from a morphological analyser (fugashi + unidic-lite).

Japanese has no spaces, so word-level aggregation and word-aware entity edges need a real
analyser. fugashi wraps MeCab (C, fast) and unidic-lite is a pip-installable dictionary; both are pinned.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

import fugashi

# Particles (助詞) and auxiliary verbs (助動詞) written in hiragana: の, は, で, から, だ ...
# A katakana or kanji word tagged so (ツ in ダンツ, 等) is more often part of a name.
_FUNCTION_POS = frozenset({"助詞", "助動詞"})
_HIRAGANA = re.compile(r"[\u3041-\u309f]+")


@dataclass(frozen=True)
class Word:
    """One word of a text: [start, end) in characters; ``function`` marks a hiragana particle/auxiliary."""

    start: int
    end: int
    function: bool = False
    proper: bool = False  # a proper noun (名詞-固有名詞) by the dictionary
    pos: tuple[str, ...] = ()  # the dictionary's part of speech, coarse to fine (名詞, 固有名詞, 人名)


@dataclass(frozen=True)
class Words:
    """The words of one text, in order, with their start offsets kept for bisection (built once per text)."""

    items: tuple[Word, ...]
    starts: tuple[int, ...]

    @classmethod
    def of(cls, words: list[Word]) -> Words:
        return cls(tuple(words), tuple(w.start for w in words))

    def __iter__(self) -> Iterator[Word]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: slice) -> tuple[Word, ...]:
        return self.items[index]

    def at(self, pos: int) -> Word | None:
        """The word holding character ``pos``, if any."""
        i = bisect_right(self.starts, pos) - 1
        if i >= 0 and self.items[i].start <= pos < self.items[i].end:
            return self.items[i]
        return None

    def within(self, start: int, end: int) -> list[Word]:
        """The words lying wholly inside [start, end)."""
        lo, hi = bisect_left(self.starts, start), bisect_left(self.starts, end)
        return [w for w in self.items[lo:hi] if w.end <= end]


class WordSplitter:
    """Callable returning the words of a text, in order."""

    def __init__(self) -> None:
        self._tagger = fugashi.Tagger()  # finds the unidic-lite dictionary on its own

    def __call__(self, text: str) -> Words:
        words: list[Word] = []
        cursor = 0
        for token in self._tagger(text):
            surface = token.surface
            start = text.find(surface, cursor) if surface else -1
            if start < 0:
                continue  # MeCab rewrote the surface (should not happen after normalisation)
            cursor = start + len(surface)
            function = token.feature.pos1 in _FUNCTION_POS and _HIRAGANA.fullmatch(surface) is not None
            proper = token.feature.pos1 == "名詞" and token.feature.pos2 == "固有名詞"
            pos = (token.feature.pos1, token.feature.pos2, token.feature.pos3)
            words.append(Word(start, cursor, function, proper, pos))
        return Words.of(words)
