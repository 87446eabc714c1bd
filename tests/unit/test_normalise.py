"""Normalisation keeps every span pointing into the caller's original string."""

import pytest

from ja_ner.normalise import normalise, to_original_span


def _back(original: str, start: int, end: int) -> str:
    norm = normalise(original)
    s, e = to_original_span(norm, start, end)
    return original[s:e]


def test_full_width_ascii_becomes_ascii_and_maps_back():
    norm = normalise("ＡＢＣ株式会社")
    assert norm.text == "ABC株式会社"
    assert _back("ＡＢＣ株式会社", 0, 3) == "ＡＢＣ"


def test_half_width_katakana_composes_voiced_marks():
    original = "ｶﾞｲﾄﾞ"  # half-width ガイド: voiced marks are separate characters
    norm = normalise(original)
    assert norm.text == "ガイド"
    assert _back(original, 0, 3) == original
    assert _back(original, 2, 3) == "ﾄﾞ"


def test_combining_mark_stays_with_its_base():
    original = "か\u3099ぎ"  # か + combining dakuten -> が
    norm = normalise(original)
    assert norm.text == "がぎ"
    assert _back(original, 0, 1) == "か\u3099"
    assert _back(original, 1, 2) == "ぎ"


@pytest.mark.parametrize("original", ["𠮷野家", "😀東京", "東京👨‍👩‍👧大阪"])
def test_astral_and_emoji_offsets_are_code_points(original):
    norm = normalise(original)
    index = norm.text.index("家" if "家" in norm.text else "京")
    assert original[norm.to_original[index]] == norm.text[index]


def test_controls_become_spaces_and_zero_width_marks_vanish():
    original = "東\x00京\u200b都\u200f"
    norm = normalise(original)
    assert norm.text == "東 京都"
    assert _back(original, 2, 4) == "京\u200b都"


def test_ideographic_space_and_newlines():
    norm = normalise("東京\u3000大阪\r\n名古屋")
    assert norm.text == "東京 大阪\n\n名古屋"


def test_expansion_maps_to_the_whole_source_character():
    original = "㈱トヨタ"
    norm = normalise(original)
    assert norm.text == "(株)トヨタ"
    assert _back(original, 1, 2) == "㈱"


def test_empty_text():
    norm = normalise("")
    assert norm.text == "" and norm.to_original == ()
