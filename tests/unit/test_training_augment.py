"""Boundary augmentation (issue 12): edits keep every span on its text, affixes and titles are O, the
one-character country is LOC, output is fixed by the seed, and the UniDic name lists are sane."""

from __future__ import annotations

import random

import pytest

from training import augment as aug
from training.data import Example, Span

GAZ = aug.Gazetteer(
    surnames=("山川", "森"),
    given_names=("花子",),
    foreign_persons=("ロドリゲス",),
    places=("木津",),
    foreign_places=("リヨン",),
    countries=("チリ",),
)


def ex(text: str, *marked: tuple[str, str]) -> Example:
    """An example whose entities are given as (surface, type), found left to right."""
    spans, pos = [], 0
    for surface, kind in marked:
        start = text.index(surface, pos)
        spans.append(Span(start, start + len(surface), kind))
        pos = start + len(surface)
    return Example("7", text, tuple(spans))


SENTENCES = [
    ex("鈴木は熊本県の阿蘇山に登った。", ("鈴木", "PER"), ("熊本県", "LOC"), ("阿蘇山", "LOC")),
    ex("トヨタ自動車の本社は愛知県にある。", ("トヨタ自動車", "ORG"), ("愛知県", "LOC")),
    ex("サッチャーは保守党を率いた。", ("サッチャー", "PER"), ("保守党", "ORG-P")),
    ex("アップルとグーグルが提携した。", ("アップル", "ORG"), ("グーグル", "ORG")),
]


def surfaces(e: Example) -> list[tuple[str, str]]:
    return [(e.text[s.start : s.end], s.type) for s in e.spans]


def check_spans(e: Example) -> None:
    assert all(0 <= s.start < s.end <= len(e.text) for s in e.spans)
    assert all(a.end <= b.start for a, b in zip(e.spans, e.spans[1:], strict=False)), surfaces(e)


def test_insert_moves_later_spans_and_labels_the_inserted_text_o():
    src = SENTENCES[0]
    out = aug.insert(src, 2, "容疑者")
    assert out.text == "鈴木容疑者は熊本県の阿蘇山に登った。"
    assert surfaces(out) == surfaces(src)
    with pytest.raises(ValueError, match="inside an entity"):
        aug.insert(src, 1, "氏")


def test_substitute_keeps_type_and_moves_later_spans():
    out = aug.substitute(SENTENCES[0], 1, "北海道")
    assert out.text == "鈴木は北海道の阿蘇山に登った。"
    assert surfaces(out) == [("鈴木", "PER"), ("北海道", "LOC"), ("阿蘇山", "LOC")]


def test_affix_sits_right_after_an_entity_and_is_outside_every_span():
    rng = random.Random(0)
    for src in SENTENCES * 5:
        out = aug.add_affix(src, rng)
        assert out is not None
        check_spans(out)
        assert [t for _, t in surfaces(out)] == [t for _, t in surfaces(src)]
        assert [s for s, _ in surfaces(out)] == [s for s, _ in surfaces(src)]  # entities unchanged, affix O
        added = len(out.text) - len(src.text)
        grown = [s for s, o in zip(src.spans, out.spans, strict=True) if o.start == s.start and o.end == s.end]
        owner = max(grown, key=lambda s: s.end)  # the last entity not moved is the one the affix follows
        affix = out.text[owner.end : owner.end + added]
        assert affix in aug.AFFIXES[owner.type]
        assert not any(s.start < owner.end + added and owner.end < s.end for s in out.spans)


def test_title_sits_right_before_a_person_and_is_o():
    rng = random.Random(1)
    out = aug.add_title(SENTENCES[0], rng)
    assert out is not None and surfaces(out) == surfaces(SENTENCES[0])
    title = out.text[: out.spans[0].start]
    assert title in aug.TITLES and out.text.endswith("鈴木は熊本県の阿蘇山に登った。")
    assert aug.add_title(SENTENCES[1], rng) is None  # no person


def test_country_is_a_one_character_loc_before_a_foreign_name():
    rng = random.Random(2)
    out = aug.add_country(SENTENCES[3], rng)
    assert out is not None
    check_spans(out)
    countries = [s for s in out.spans if len(out.text[s.start : s.end]) == 1]
    assert len(countries) == 1 and countries[0].type == "LOC"
    c = countries[0]
    assert out.text[c.start] in aug.COUNTRIES
    assert any(s.start == c.end and s.type == "ORG" for s in out.spans)  # touching, typed apart
    assert (
        aug.add_country(ex("鈴木は熊本県にいる。", ("鈴木", "PER"), ("熊本県", "LOC")), rng) is None
    )  # no foreign name


def test_no_edit_glues_onto_a_word():
    rng = random.Random(3)
    glued = ex("熊本県民の声", ("熊本県", "LOC"))  # 民 follows: an affix would make 熊本県沖民
    assert aug.add_affix(glued, rng) is None


def test_mention_replacement_uses_the_same_script_and_kind():
    rng = random.Random(4)
    for _ in range(20):
        out = aug.replace_mention(SENTENCES[2], rng, GAZ)
        assert out is not None and out.spans[0].type == "PER"
        assert out.text[out.spans[0].start : out.spans[0].end] == "ロドリゲス"  # katakana -> foreign person
        check_spans(out)
        out = aug.replace_mention(SENTENCES[0], rng, GAZ)
        check_spans(out)
        assert [t for _, t in surfaces(out)] == ["PER", "LOC", "LOC"]
        changed = [new for new, old in zip(surfaces(out), surfaces(SENTENCES[0]), strict=True) if new != old]
        assert len(changed) == 1
        name, kind = changed[0]
        if kind == "PER":  # kanji -> a surname, maybe with a given name
            assert name in {"山川", "森", "山川花子", "森花子"}
        else:
            assert name in {*GAZ.prefectures, *GAZ.places, *GAZ.countries}
    assert aug.replace_mention(SENTENCES[3], rng, GAZ) is None  # no PER or LOC


def test_augment_is_fixed_by_the_seed_and_every_output_is_well_formed():
    a = aug.augment(SENTENCES, 40, seed=11, gazetteer=GAZ)
    assert a == aug.augment(SENTENCES, 40, seed=11, gazetteer=GAZ)
    assert a != aug.augment(SENTENCES, 40, seed=12, gazetteer=GAZ)
    assert len(a) == 40 and len({e.curid for e in a}) == 40
    for e in a:
        check_spans(e)
        assert e.curid.startswith("7+aug")
    assert aug.augment(SENTENCES, 0, gazetteer=GAZ) == []
    with pytest.raises(ValueError, match="no example with an entity"):
        aug.augment([Example("1", "なにもない。", ())], 3, gazetteer=GAZ)


def test_unidic_gazetteer_lists_come_from_the_installed_dictionary():
    gaz = aug.unidic_gazetteer()
    assert {"鈴木", "中村", "田中"} <= set(gaz.surnames)
    assert {"フランス", "日本", "イギリス"} <= set(gaz.countries) and "ジパング" not in gaz.countries
    assert {"ワシントン", "ハワイ"} <= set(gaz.foreign_places)
    assert "クリントン" in gaz.foreign_persons
    assert "東京" in gaz.places and "熊本県" in gaz.prefectures and len(gaz.prefectures) == 47
    assert all(aug._KANJI.match(n) for n in gaz.surnames)
    assert all(aug._KANA_NAME.match(n) for n in gaz.foreign_persons + gaz.foreign_places)
    assert min(len(gaz.surnames), len(gaz.given_names), len(gaz.foreign_persons), len(gaz.places)) >= 1000
