"""Entity edges on word boundaries, with the real analyser (fugashi + unidic-lite)."""

import pytest

from ja_ner.edges import follow_words
from ja_ner.words import WordSplitter

SPLIT = WordSplitter()


def _follow(text: str, piece: str, drop_function: bool = True, occurrence: int = 0) -> str:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(piece, start + 1)
    words = SPLIT(text)
    s, e = follow_words(start, start + len(piece), words, drop_function=drop_function)
    return text[s:e]


@pytest.mark.parametrize(
    ("text", "predicted", "expected"),
    [
        ("日本の首都は東京", "日本の", "日本"),  # trailing particle dropped
        ("福岡ソフトバンクホークスの選手", "福岡ソフトバンクホークスの", "福岡ソフトバンクホークス"),
        ("2018年JFE商事顧問に就任", "JFE商", "JFE商事"),  # cut word completed
        ("ミャンマー大統領", "ャンマー", "ミャンマー"),  # cut at the start too
        ("エルンスト・ダンツは", "エルンスト・ダンツ", "エルンスト・ダンツ"),  # katakana ツ is not a particle
        ("東京では", "では", "では"),  # never emptied: a lone function word stays
        ("日本の首都は東京", "日本", "日本"),  # already on word edges: unchanged
    ],
)
def test_follow_words(text, predicted, expected):
    assert _follow(text, predicted) == expected


def test_titles_may_keep_their_particles():
    assert _follow("勝手にしやがれを観た", "勝手にしやがれ", drop_function=False) == "勝手にしやがれ"
    assert _follow("勝手にしやがれを観た", "勝手にしやがれ", drop_function=True) == "勝手にし"


def test_words_mark_hiragana_particles_and_auxiliaries_only():
    text = "日本の首都は東京だ"
    marked = [(text[w.start : w.end], w.function) for w in SPLIT(text)]
    assert marked == [("日本", False), ("の", True), ("首都", False), ("は", True), ("東京", False), ("だ", True)]
