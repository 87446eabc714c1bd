"""Offset units: code points (Python) to UTF-16 code units (JavaScript, Java)."""

from __future__ import annotations

from itertools import accumulate


def utf16_positions(text: str) -> list[int]:
    """``result[i]`` is the UTF-16 index of code point ``i``; ``len(result) == len(text) + 1``."""
    return [0, *accumulate(2 if ord(ch) > 0xFFFF else 1 for ch in text)]


def utf16_to_codepoint(text: str, index: int) -> int:
    """Inverse of ``utf16_positions`` for an index that falls on a code-point boundary."""
    return utf16_positions(text).index(index)
