"""Stage 6b: move entity edges onto word boundaries.

XLM-R's pieces ignore Japanese word boundaries: one piece often holds a name's last character
and the particle after it (県の), or cuts a katakana name in two. Measured on the Stockmark dev
split (docs/model.md), entity spans improve when their edges follow the analyser's words:

- an edge that falls inside a content word moves out to that word's edge (JFE商|事 -> JFE商事);
- particles and auxiliaries at either end are dropped (日本の -> 日本), keeping at least one word
  (a span of nothing but particles is left as it is).

Titles (PRD in the default model) legitimately end in particles (勝手にしやがれ), so the
caller decides per entity type whether to drop them.
"""

from __future__ import annotations

import re

from ja_ner.words import Word, Words


def follow_words(start: int, end: int, words: Words, *, drop_function: bool) -> tuple[int, int]:
    """The span [start, end) with its edges on word boundaries.

    Args:
        words: the text's words.
        drop_function: whether particles/auxiliaries at the span's ends are removed.
    """
    first = words.at(start)
    if first is not None and first.start < start and not first.function:
        start = first.start
    last = words.at(end - 1)
    if last is not None and last.end > end and not last.function:
        end = last.end
    if drop_function:
        start, end = _drop_function_words(start, end, words)
    return start, end


def _drop_function_words(start: int, end: int, words: Words) -> tuple[int, int]:
    inside = words.within(start, end)
    if all(w.function for w in inside):
        return start, end  # nothing but particles: not ours to judge
    while len(inside) > 1 and inside[-1].function and inside[-1].end == end:
        end = inside.pop().start
    while len(inside) > 1 and inside[0].function and inside[0].start == start:
        start = inside.pop(0).end
    return start, end


# --- News-style neighbours (setting ``news_edges``) --------------------------------------------
# News Japanese writes titles, one-character country names and place/role affixes straight against
# a name, with no particle between (横綱朝青龍, 米ラスベガス, 和歌山県沖, 石原都知事, 文藝春秋刊).
# A model trained on encyclopaedia text glues them onto the name. These words are never part of the
# name they touch; each rule applies only where the analyser puts a word boundary at the join, and a
# span is never emptied. Measured on the Stockmark dev split and the challenge set (docs/model.md).

# Words that come before a person's name: sumo ranks, offices, "the late". What follows one is a
# person, whatever type the model gave the whole (it often calls 横綱朝青龍 an organisation).
PERSON_TITLES = frozenset(
    {"横綱", "大関", "関脇", "小結", "前頭", "大統領", "首相", "故", "前大統領", "副大統領", "元首相"}
)
# Words that come before a name of any kind ("former": 元横綱, 元ソニー社長).
TITLES_BEFORE = PERSON_TITLES | {"元"}
# Words that follow a name: place parts and surroundings, honorifics and roles, "published by",
# "made in", "produced in", "affiliated to", "leaving from", "nationality".
AFFIXES_AFTER = frozenset(
    {
        "内", "沖", "中部", "北部", "南部", "東部", "西部", "北東部", "北西部", "南東部", "南西部",
        "郊外", "近郊", "周辺", "全域", "氏", "さん", "容疑", "容疑者", "被告", "首相", "社長",
        "知事", "市長", "刊", "製", "産", "系", "発", "籍",
    }
)  # fmt: skip
# 内 ("inside") follows a place: a proper noun or an administrative unit (札幌|市|内), not 城|内.
_PLACE_UNITS = frozenset("都道府県市区町村郡州省国")
# Types whose names may end in any of these words (新幹線E5系, a book title ending in 刊).
_FREE_ENDINGS = frozenset({"PRD", "EVT"})
# Offices written after a one-character country and before nothing else (スターマー英首相).
_OFFICES = frozenset({"首相", "大統領", "副大統領", "外相", "財務相", "国防相", "蔵相", "大使", "国王", "女王"})
# One word that is a place's last character plus 内 ("inside"): 東京|都内 -> 東京都 + 内.
INSIDE_SUFFIXES = frozenset({"都内", "県内", "府内", "道内", "市内", "区内", "町内", "村内"})
# One-character country names as headlines and news text write them before a name (米ボーイング).
COUNTRY_CHARS = frozenset("米英中韓露独仏伊加豪印蘭")
# A local-government head's seat written between a name and 知事/市長 (石原都知事).
_SEATS = frozenset("都道府県市町村")
_HEAD_TITLES = frozenset({"知事", "市長", "町長", "村長"})


def _name_like(word_text: str, proper: bool) -> bool:
    """A word a name may start with: a proper noun, or katakana / Latin script."""
    first = word_text[:1]
    return proper or ("\u30a0" <= first <= "\u30ff") or first.isascii() and first.isalnum()


def news_neighbours(entity_type: str, start: int, end: int, text: str, words: Words) -> list[tuple[str, int, int]]:
    """Split titles, country characters and affixes that news text writes against a name, and a rank,
    occupation or honorific after a person's name (by its parts of speech, ``_role_start``).

    Returns the pieces as ``(type, start, end)`` in order: the name itself (the caller's type, or
    ``PER`` after a person's title) and,
    for a one-character country name at either edge of it, a ``LOC`` of that character. A span
    whose edges are not on word boundaries, or with a single word, comes back unchanged.
    """
    inside = words.within(start, end)
    if len(inside) < 2 or inside[0].start != start or inside[-1].end != end:
        return [(entity_type, start, end)]
    surface = [text[w.start : w.end] for w in inside]
    pieces: list[tuple[str, int, int]] = []
    lo, hi = 0, len(inside)
    # titles before the name, when a name-like word follows
    while hi - lo > 1 and surface[lo] in TITLES_BEFORE and _name_like(surface[lo + 1], inside[lo + 1].proper):
        if surface[lo] in PERSON_TITLES:
            entity_type = "PER"
        lo += 1
    # a one-character country before the name
    if hi - lo > 1 and surface[lo] in COUNTRY_CHARS and _name_like(surface[lo + 1], inside[lo + 1].proper):
        pieces.append(("LOC", inside[lo].start, inside[lo].end))
        lo += 1
    if entity_type in _FREE_ENDINGS:
        return [*pieces, (entity_type, inside[lo].start, end)]
    after: list[tuple[str, int, int]] = []
    following = words.at(end)
    next_word = text[following.start : following.end] if following is not None else ""
    # affixes after the name
    while hi - lo > 1 and surface[hi - 1] in AFFIXES_AFTER and _affix_follows(surface, inside, hi - 1):
        hi -= 1
    if entity_type == "PER":
        hi = _role_start(surface, inside, lo, hi)
    if hi - lo > 1 and entity_type == "PER" and surface[hi - 1] in COUNTRY_CHARS and next_word in _OFFICES:
        after.append(("LOC", inside[hi - 1].start, inside[hi - 1].end))  # スターマー英(首相)
        hi -= 1
    if hi - lo > 1 and entity_type == "PER" and surface[hi - 1] in _SEATS and next_word in _HEAD_TITLES:
        hi -= 1  # 石原都(知事)
    name_end = inside[hi - 1].end
    if hi - lo > 1 and surface[hi - 1] in INSIDE_SUFFIXES:
        name_end -= 1  # 東京|都内 -> 東京都
    pieces.append((entity_type, inside[lo].start, name_end))
    return pieces + after


# --- A person's rank, occupation or honorific (issue 24): a rule on the analyser's parts of speech ---
# News writes them straight after the name (羽生九段, 大谷選手, 原監督, 佐藤弁護士, 健太くん); the list
# above cannot hold them all. After a word the dictionary calls a person's name (名詞-固有名詞-人名), the
# rest of a PER span splits off when it is nothing but common nouns, numerals and suffixes written in
# kanji or hiragana, opened by a common noun of two or more kanji (選手, 監督), a numeral and a counter
# (九|段), or a hiragana suffix (さん, くん). One-kanji words and katakana stay: the dictionary cuts
# unknown given names into them (久松静|児, 楊|秀麗 is the price: about 1 % of PER spans on the train
# split, docs/model.md). The name keeps at least its first word.
_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\u3005]+")  # CJK ideographs and 々
_HIRAGANA = re.compile(r"[\u3041-\u309f]+")


def _person(word: Word) -> bool:
    return word.pos[1:3] == ("固有名詞", "人名")


def _role_word(text: str, word: Word) -> bool:
    """A word a rank or role is made of: a common noun, numeral or suffix in kanji or hiragana."""
    noun = word.pos[:1] == ("名詞",) and word.pos[1:2] in (("普通名詞",), ("数詞",))
    return (noun or word.pos[:1] == ("接尾辞",)) and bool(_KANJI.fullmatch(text) or _HIRAGANA.fullmatch(text))


def _opens_role(surface: list[str], inside: list[Word], i: int, hi: int) -> bool:
    word, text = inside[i], surface[i]
    if word.pos[:2] == ("名詞", "普通名詞"):
        return len(text) >= 2 and _KANJI.fullmatch(text) is not None
    if word.pos[:2] == ("名詞", "数詞"):  # a rank with a counter (九|段), not a name written in numerals (一六)
        return i + 1 < hi and inside[i + 1].pos[1:2] != ("数詞",)
    return word.pos[:1] == ("接尾辞",) and _HIRAGANA.fullmatch(text) is not None


def _role_start(surface: list[str], inside: list[Word], lo: int, hi: int) -> int:
    """Where a rank, occupation or honorific after a person's name begins in ``inside[lo:hi]`` (``hi``: none)."""
    for i in range(lo + 1, hi):
        role = _person(inside[i - 1]) and _opens_role(surface, inside, i, hi)
        if role and all(_role_word(surface[j], inside[j]) for j in range(i, hi)):
            return i
    return hi


def _affix_follows(surface: list[str], inside: list[Word], i: int) -> bool:
    """Whether word ``i`` (an affix) stands after a name rather than inside one (城内 is a place)."""
    if surface[i] != "内":
        return True
    return inside[i - 1].proper or surface[i - 1] in _PLACE_UNITS
