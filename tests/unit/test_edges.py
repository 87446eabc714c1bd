"""Entity edges on word boundaries, with the real analyser (fugashi + unidic-lite)."""

import pytest

from ja_ner.edges import follow_words, news_neighbours
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


def _news(text: str, predicted: str, entity_type: str) -> list[tuple[str, str]]:
    start = text.index(predicted)
    pieces = news_neighbours(entity_type, start, start + len(predicted), text, SPLIT(text))
    return [(text[s:e], kind) for kind, s, e in pieces]


@pytest.mark.parametrize(
    ("text", "predicted", "entity_type", "expected"),
    [
        ("和歌山県沖で漁船が転覆した", "和歌山県沖", "LOC", [("和歌山県", "LOC")]),  # affix after a place
        ("札幌市内の自宅", "札幌市内", "LOC", [("札幌市", "LOC")]),
        ("新たな感染者は東京都内で120人", "東京都内", "LOC", [("東京都", "LOC")]),  # 都内 is one word
        ("文藝春秋刊の新書", "文藝春秋刊", "ORG", [("文藝春秋", "ORG")]),
        ("石原都知事は意欲を示した", "石原都", "PER", [("石原", "PER")]),  # seat before 知事
        ("横綱朝青龍が優勝した", "横綱朝青龍", "ORG-O", [("朝青龍", "PER")]),  # a person's title: PER
        ("元横綱白鵬が会見した", "横綱白鵬", "PER", [("白鵬", "PER")]),
        ("米ラスベガスで見本市が開幕", "米ラスベガス", "LOC", [("米", "LOC"), ("ラスベガス", "LOC")]),
        (
            "独フォルクスワーゲンは検討している",
            "独フォルクスワーゲン",
            "ORG",
            [("独", "LOC"), ("フォルクスワーゲン", "ORG")],
        ),
        ("スターマー英首相は述べた", "スターマー英", "PER", [("スターマー", "PER"), ("英", "LOC")]),
    ],
)
def test_news_neighbours_split_off_what_news_writes_against_a_name(text, predicted, entity_type, expected):
    assert _news(text, predicted, entity_type) == expected


@pytest.mark.parametrize(
    ("text", "predicted", "entity_type"),
    [
        ("東北新幹線E5系が走る", "東北新幹線E5系", "PRD"),  # products may end in 系/製/刊
        ("神奈川県小田原市城内の住宅", "神奈川県小田原市城内", "LOC"),  # 城内 is a place, not 城 + inside
        ("首相官邸で会見した", "首相官邸", "INS"),  # no name after the title: left whole
        ("中国の首都", "中国", "LOC"),  # one word
        ("明貴美加が出演した", "明貴美加", "PER"),  # a name ending in 加: no office after it
        ("中華為技術の新機種", "中華為技術", "ORG"),  # no word boundary after 中
    ],
)
def test_news_neighbours_leave_names_that_only_look_glued(text, predicted, entity_type):
    assert _news(text, predicted, entity_type) == [(predicted, entity_type)]


# Issue 24: a person's rank, occupation or honorific splits off by the analyser's parts of speech; none of
# these words is in the news_edges lists (tests/unit/test_challenge.py holds the role_after class to that).
@pytest.mark.parametrize(
    ("text", "predicted", "expected"),
    [
        ("将棋の羽生九段が勝った", "羽生九段", "羽生"),  # a numeral and its counter
        ("大谷選手は手術を受けた", "大谷選手", "大谷"),  # a common noun
        ("試合後、原監督は語った", "原監督", "原"),  # a one-kanji surname keeps itself
        ("弁護団の佐藤弁護士は控訴する", "佐藤弁護士", "佐藤"),  # noun and suffix: the tail goes whole
        ("羽生善治九段が勝った", "羽生善治九段", "羽生善治"),  # surname and given name stay together
        ("健太くんは毎朝起きる", "健太くん", "健太"),  # a hiragana suffix
        ("林官房長官は明らかにしなかった", "林官房長官", "林"),
    ],
)
def test_a_role_after_a_persons_name_splits_off(text, predicted, expected):
    assert _news(text, predicted, "PER") == [(expected, "PER")]


@pytest.mark.parametrize(
    ("text", "predicted", "entity_type"),
    [
        ("大谷選手は手術を受けた", "大谷選手", "ORG"),  # only a PER span: 松下電器 is a surname and a noun too
        ("久松静児が監督した", "久松静児", "PER"),  # a one-kanji word after a name is more often the name's
        ("巖谷一六の書", "巖谷一六", "PER"),  # a name written in numerals, no counter
        ("ゼレンスキー大統領が訴えた", "ゼレンスキー大統領", "PER"),  # not a 人名 to the dictionary: a known miss
        ("山田太郎が来た", "山田太郎", "PER"),
    ],
)
def test_the_role_rule_leaves_what_is_not_a_persons_role(text, predicted, entity_type):
    assert _news(text, predicted, entity_type) == [(predicted, entity_type)]
