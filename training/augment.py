"""Boundary augmentation: training sentences with news-style words next to their entities, labelled O.

The default model glues the word next to a name onto it (`和歌山県沖`, `横綱朝青龍`, `米ラスベガス`,
issue 12). This module makes extra training sentences from the training split, deterministically from a
seed, each a copy of one sentence with one or two edits; gold spans are moved with every edit, never
re-derived:

- **affix**: a word that follows a name in news text is put right after an entity and labelled O
  (PER: 氏 さん 容疑者 被告 首相 社長 知事 ...; LOC: 沖 内 中部 産 製 発 ...; ORG: 刊 製 系 ...);
- **title**: a title is put right before a person and labelled O (横綱 大統領 首相 元 故 ...);
- **country**: a one-character country (米 英 中 韓 露 独 仏) is put before an ORG, PER or LOC as an entity
  of its own, LOC (the convention of the data and of the challenge set, tests/data/challenge/README.md);
- **mention replacement**: a PER or LOC mention is replaced by a name of the same kind from a
  ``Gazetteer`` (``unidic_gazetteer``: UniDic's proper-noun entries, shipped by the ``unidic-lite``
  package the core already depends on), so the edits meet names the data does not have.

Replacement applies with probability ``replace_p``; then one boundary edit (affix, title or country) that
fits the sentence. Usage inside training: ``python -m training.train --augment N`` adds N such sentences
to the training data (docs/model.md). ``python -m training.augment --n 10`` prints examples.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import random
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from training.data import DATA_DIR, Example, Span, training_examples

AFFIXES: dict[str, tuple[str, ...]] = {
    "PER": (
        "氏",
        "さん",
        "容疑者",
        "被告",
        "首相",
        "社長",
        "知事",
        "都知事",
        "会長",
        "監督",
        "選手",
        "元首相",
        "大統領",
    ),
    "LOC": ("沖", "内", "中部", "北部", "南部", "産", "製", "発", "出身", "周辺", "各地"),
    "ORG": ("刊", "製", "系", "幹部", "関係者", "社長", "傘下"),
    "ORG-P": ("幹部", "関係者", "系"),
    "ORG-O": ("幹部", "関係者"),
}
TITLES: tuple[str, ...] = ("横綱", "大関", "小結", "大統領", "首相", "元首相", "元", "故", "前")
COUNTRIES: str = "米英中韓露独仏"
COUNTRY_BEFORE: frozenset[str] = frozenset({"ORG", "PER", "LOC"})
# The 47 prefectures' names without 都/道/府/県 (a fixed fact, not a dictionary): suffixed when used.
# fmt: off
PREFECTURES: tuple[tuple[str, str], ...] = tuple((name, "県") for name in (
    "青森", "岩手", "宮城", "秋田", "山形", "福島", "茨城", "栃木", "群馬", "埼玉", "千葉", "神奈川", "新潟", "富山",
    "石川", "福井", "山梨", "長野", "岐阜", "静岡", "愛知", "三重", "滋賀", "兵庫", "奈良", "和歌山", "鳥取", "島根",
    "岡山", "広島", "山口", "徳島", "香川", "愛媛", "高知", "福岡", "佐賀", "長崎", "熊本", "大分", "宮崎", "鹿児島",
    "沖縄",
)) + (("東京", "都"), ("北海", "道"), ("大阪", "府"), ("京都", "府"))
# fmt: on

_KANJI = re.compile(r"^[\u4e00-\u9fff々]+$")
_KANA_NAME = re.compile(r"^[\u30a1-\u30fa\u30fc・]+$")
_HIRAGANA = re.compile(r"^[\u3041-\u3096]+$")
_FOREIGN_START = re.compile(r"^[\u30a1-\u30faA-Za-z]")  # katakana or Latin: a name a country can precede
_PUNCT = frozenset("、。，．・「」『』（）()\"' 　")


@dataclass(frozen=True)
class Gazetteer:
    """Names to put in place of a PER or LOC mention, most frequent first."""

    surnames: tuple[str, ...]
    given_names: tuple[str, ...]
    foreign_persons: tuple[str, ...]
    places: tuple[str, ...]  # Japanese place names in kanji (towns, areas)
    foreign_places: tuple[str, ...]  # katakana place names of foreign origin
    countries: tuple[str, ...]
    prefectures: tuple[str, ...] = tuple(name + suffix for name, suffix in PREFECTURES)


# ---------------------------------------------------------------------------------------- dictionary


def _unidic_dicdir() -> Path:
    import unidic_lite

    return Path(unidic_lite.DICDIR)


def proper_nouns(dicdir: Path | None = None) -> list[tuple[str, str, str, str, int]]:
    """Every proper-noun entry of a compiled MeCab dictionary (``sys.dic``) as (pos3, pos4, surface, lemma,
    cost), lowest word cost (most frequent) first.

    The binary layout (MeCab's ``dictionary.cpp``): a 72-byte header (magic xor file size = 0xef718f77,
    version 102, type, lexicon size, left/right context sizes, then the byte sizes of the double array,
    the token array and the feature block), the double array, 16-byte tokens (left id, right id, POS id,
    word cost, feature offset, compound), and NUL-terminated CSV feature strings. UniDic's feature
    fields: pos1..pos4, conjugation type and form, lemma reading, lemma, surface (``orth``), ...
    """
    import numpy as np

    path = (dicdir or _unidic_dicdir()) / "sys.dic"
    buf = path.read_bytes()
    magic, version, _, _, _, _, dsize, tsize, fsize, _ = struct.unpack_from("<10I", buf, 0)
    if magic ^ len(buf) != 0xEF718F77 or version != 102:
        raise ValueError(f"{path} is not a MeCab dictionary of version 102")
    token = np.dtype([("l", "<u2"), ("r", "<u2"), ("pos", "<u2"), ("cost", "<i2"), ("feat", "<u4"), ("comp", "<u4")])
    tokens = np.frombuffer(buf, dtype=token, count=tsize // token.itemsize, offset=72 + dsize)
    order = np.lexsort((tokens["cost"], tokens["feat"]))  # by feature offset, then cost
    feat, cost = tokens["feat"][order], tokens["cost"][order]
    first = np.ones(len(feat), dtype=bool)
    first[1:] = feat[1:] != feat[:-1]
    best_cost = dict(zip(feat[first].tolist(), cost[first].tolist(), strict=True))
    block = buf[72 + dsize + tsize : 72 + dsize + tsize + fsize]
    prefix = "名詞,固有名詞,".encode()
    out = []
    offset = 0
    for raw in block.split(b"\0"):
        if raw.startswith(prefix) and offset in best_cost:
            fields = raw.decode("utf-8", "replace").split(",")
            if len(fields) > 8:
                out.append((fields[2], fields[3], fields[8], fields[7], best_cost[offset]))
        offset += len(raw) + 1
    out.sort(key=lambda e: (e[4], e[2]))
    return out


@functools.lru_cache(maxsize=2)
def unidic_gazetteer(dicdir: Path | None = None, *, top: int = 3000) -> Gazetteer:
    """Name lists derived from UniDic's proper nouns (``unidic-lite``), the ``top`` most frequent of each:

    surnames: 人名/姓 in kanji, 1-3 characters; given names: 人名/名 in kanji (1-3) or hiragana (2-3);
    foreign persons: 人名/一般 in katakana, 3+ characters, with a foreign lemma (``X-Clinton``, ``X-外国``);
    places: 地名/一般 in kanji, 2-3 characters; foreign places: 地名/一般 in katakana, 3+ characters, with
    a foreign lemma; countries: 地名/国 written as their own lemma (日本, フランス; not ニッポン, ジパング).
    Loading takes a few seconds (the dictionary is 188 MB); the result is cached per process.
    """
    lists: dict[str, list[str]] = {
        k: [] for k in ("surnames", "given_names", "foreign_persons", "places", "foreign_places", "countries")
    }

    def foreign(lemma: str) -> bool:
        return "-" in lemma

    for pos3, pos4, surface, lemma, _ in proper_nouns(dicdir):
        n = len(surface)
        if pos3 == "人名" and pos4 == "姓" and _KANJI.match(surface) and n <= 3:
            lists["surnames"].append(surface)
        elif (
            pos3 == "人名"
            and pos4 == "名"
            and ((_KANJI.match(surface) and n <= 3) or (_HIRAGANA.match(surface) and 2 <= n <= 3))
        ):
            lists["given_names"].append(surface)
        elif pos3 == "人名" and pos4 == "一般" and _KANA_NAME.match(surface) and n >= 3 and foreign(lemma):
            lists["foreign_persons"].append(surface)
        elif pos3 == "地名" and pos4 == "一般" and _KANJI.match(surface) and 2 <= n <= 3:
            lists["places"].append(surface)
        elif pos3 == "地名" and pos4 == "一般" and _KANA_NAME.match(surface) and n >= 3 and foreign(lemma):
            lists["foreign_places"].append(surface)
        elif pos3 == "地名" and pos4 == "国" and surface == lemma.split("-")[0] and n >= 2:
            lists["countries"].append(surface)
    return Gazetteer(**{k: tuple(dict.fromkeys(v))[:top] for k, v in lists.items()})


# ---------------------------------------------------------------------------------------- edits


def insert(ex: Example, pos: int, text: str, span_type: str | None = None) -> Example:
    """``ex`` with ``text`` inserted at character ``pos`` (not inside an entity); spans at or after ``pos``
    move right. With ``span_type`` the inserted text becomes an entity of that type, else it is O."""
    if any(s.start < pos < s.end for s in ex.spans):
        raise ValueError(f"position {pos} is inside an entity")
    k = len(text)
    spans = [Span(s.start + k, s.end + k, s.type) if s.start >= pos else s for s in ex.spans]
    if span_type:
        spans.append(Span(pos, pos + k, span_type))
    return replace(ex, text=ex.text[:pos] + text + ex.text[pos:], spans=tuple(sorted(spans, key=lambda s: s.start)))


def substitute(ex: Example, index: int, surface: str) -> Example:
    """``ex`` with entity ``index``'s text replaced by ``surface`` (same type); later spans move."""
    target = ex.spans[index]
    delta = len(surface) - (target.end - target.start)
    spans = []
    for i, s in enumerate(ex.spans):
        if i == index:
            spans.append(Span(s.start, s.start + len(surface), s.type))
        elif s.start >= target.end:
            spans.append(Span(s.start + delta, s.end + delta, s.type))
        else:
            spans.append(s)
    return replace(ex, text=ex.text[: target.start] + surface + ex.text[target.end :], spans=tuple(spans))


def _boundary_char(ch: str) -> bool:
    """Hiragana (particles, verb endings) or punctuation: an edit next to it reads naturally."""
    return bool(_HIRAGANA.match(ch)) or ch in _PUNCT


def _free_after(ex: Example, s: Span) -> bool:
    """Nothing glued to the entity's end: the text ends, or hiragana/punctuation follows."""
    return s.end == len(ex.text) or _boundary_char(ex.text[s.end])


def _free_before(ex: Example, s: Span) -> bool:
    """Nothing glued to the entity's start: the text starts, or hiragana/punctuation precedes."""
    return s.start == 0 or _boundary_char(ex.text[s.start - 1])


def add_affix(ex: Example, rng: random.Random) -> Example | None:
    """An affix of the entity's type right after one entity (O); None when no entity takes one."""
    options = [s for s in ex.spans if s.type in AFFIXES and _free_after(ex, s)]
    if not options:
        return None
    s = rng.choice(options)
    return insert(ex, s.end, rng.choice(AFFIXES[s.type]))


def add_title(ex: Example, rng: random.Random) -> Example | None:
    """A title right before one person (O); None without a person."""
    options = [s for s in ex.spans if s.type == "PER" and _free_before(ex, s)]
    if not options:
        return None
    return insert(ex, rng.choice(options).start, rng.choice(TITLES))


def add_country(ex: Example, rng: random.Random) -> Example | None:
    """A one-character country (a LOC entity of its own) right before an ORG, PER or LOC written in katakana
    or Latin letters (a foreign name, as news writes 米アップル); None without one."""
    options = [
        s
        for s in ex.spans
        if s.type in COUNTRY_BEFORE and _free_before(ex, s) and _FOREIGN_START.match(ex.text[s.start : s.end])
    ]
    if not options:
        return None
    return insert(ex, rng.choice(options).start, rng.choice(COUNTRIES), "LOC")


def replace_mention(ex: Example, rng: random.Random, gaz: Gazetteer) -> Example | None:
    """One PER or LOC mention replaced by a gazetteer name of the same script and kind; None without one.

    PER: katakana -> a foreign person; otherwise a surname, half the time followed by a given name.
    LOC: katakana -> a foreign place or a country; otherwise a prefecture, a place or a country.
    """
    options = [i for i, s in enumerate(ex.spans) if s.type in ("PER", "LOC")]
    if not options:
        return None
    i = rng.choice(options)
    s = ex.spans[i]
    katakana = bool(_KANA_NAME.match(ex.text[s.start : s.end]))
    if s.type == "PER":
        if katakana and gaz.foreign_persons:
            name = rng.choice(gaz.foreign_persons)
        elif gaz.surnames:
            name = rng.choice(gaz.surnames)
            if gaz.given_names and rng.random() < 0.5:
                name += rng.choice(gaz.given_names)
        else:
            return None
    else:
        pools = (gaz.foreign_places, gaz.countries) if katakana else (gaz.prefectures, gaz.places, gaz.countries)
        pools = tuple(p for p in pools if p)
        if not pools:
            return None
        name = rng.choice(rng.choice(pools))
    return substitute(ex, i, name)


EDITS = (add_affix, add_title, add_country)
WEIGHTS = (0.6, 0.2, 0.2)  # affixes are the most frequent failure (issue 12)


def augment_one(ex: Example, rng: random.Random, gaz: Gazetteer, *, replace_p: float = 0.5) -> Example | None:
    """One augmented copy of ``ex``: maybe a mention replaced, then one boundary edit that fits; None when no
    boundary edit fits the sentence."""
    if rng.random() < replace_p:
        ex = replace_mention(ex, rng, gaz) or ex
    first = rng.choices(range(len(EDITS)), weights=WEIGHTS)[0]
    for k in itertools.chain([first], (j for j in range(len(EDITS)) if j != first)):
        out = EDITS[k](ex, rng)
        if out is not None:
            return out
    return None


def augment(
    examples: Sequence[Example], n: int, *, seed: int = 13, gazetteer: Gazetteer | None = None, replace_p: float = 0.5
) -> list[Example]:
    """``n`` augmented sentences made from ``examples`` (those with at least one entity), the same for the
    same inputs and seed. Curids are ``<source curid>+aug<k>``."""
    if n <= 0:
        return []
    sources = [ex for ex in examples if ex.spans]
    if not sources:
        raise ValueError("no example with an entity to augment")
    gaz = gazetteer if gazetteer is not None else unidic_gazetteer()
    rng = random.Random(seed)
    out: list[Example] = []
    while len(out) < n:
        src = rng.choice(sources)
        made = augment_one(src, rng, gaz, replace_p=replace_p)
        if made is not None:
            out.append(replace(made, curid=f"{src.curid}+aug{len(out)}"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=DATA_DIR / "train.jsonl")
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--gazetteer", action="store_true", help="print the sizes and heads of the name lists")
    args = parser.parse_args(argv)
    if args.gazetteer:
        gaz = unidic_gazetteer()
        for field, names in vars(gaz).items():
            print(f"{field}: {len(names)}: {' '.join(names[:15])}")
    for ex in augment(training_examples(args.train), args.n, seed=args.seed):
        marked = [f"{ex.text[s.start : s.end]}/{s.type}" for s in ex.spans]
        print(json.dumps({"text": ex.text, "entities": marked}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
