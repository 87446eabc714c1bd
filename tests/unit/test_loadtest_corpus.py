"""The bundled corpus and user corpus files."""

from __future__ import annotations

import random
import re

import pytest

from loadtest.corpus import CORPUS_DIR, MIXES, load_corpus, read_texts


def test_bundled_corpus_is_small_and_varied() -> None:
    files = sorted(CORPUS_DIR.iterdir())
    assert sum(f.stat().st_size for f in files) < 300_000
    texts = [t for f in files for t in read_texts(f)]
    assert len(texts) > 250
    joined = "".join(texts)
    assert re.search(r"[ｦ-ﾟ]", joined), "half-width katakana"
    assert re.search(r"[Ａ-Ｚａ-ｚ０-９]", joined), "full-width Latin letters and digits"
    assert re.search(r"[A-Za-z0-9]", joined), "half-width Latin letters and digits"
    assert re.search(r"[\U00020000-\U0002FFFF]", joined), "an astral (non-BMP) character"
    longs = read_texts(CORPUS_DIR / "long.jsonl")
    assert all("\n\n" in t and len(t) > 350 for t in longs), "long documents have paragraphs"


def test_plain_lines_never_look_like_json() -> None:
    """The server reads a raw body starting with '{' as JSON: the text corpus must not do that."""
    for name in ("short.txt", "news.txt"):
        assert not any(t.lstrip().startswith("{") for t in read_texts(CORPUS_DIR / name))


@pytest.mark.parametrize("mix", list(MIXES))
def test_every_mix_loads_and_samples(mix: str) -> None:
    corpus = load_corpus(mix)
    rng = random.Random(1)
    assert all(isinstance(corpus.sample(rng), str) for _ in range(20))
    assert corpus.source == f"bundled:{mix}"


def test_mix_lengths_are_ordered() -> None:
    rng = random.Random(2)
    means = {}
    for mix in MIXES:
        corpus = load_corpus(mix)
        means[mix] = sum(len(corpus.sample(rng)) for _ in range(300)) / 300
    assert means["short"] < means["mixed"] < means["long"]


def test_unknown_mix() -> None:
    with pytest.raises(ValueError, match="known: short, mixed, long"):
        load_corpus("huge")


def test_user_files(tmp_path) -> None:
    plain = tmp_path / "texts.txt"
    plain.write_text("東京タワー\n\n  \n大阪城\n", encoding="utf-8")
    assert load_corpus("short", plain).pools == (("東京タワー", "大阪城"),)
    lines = tmp_path / "texts.jsonl"
    lines.write_text('{"text": "一行目\\n二行目", "id": 1}\n{"text": "次"}\n', encoding="utf-8")
    assert read_texts(lines) == ("一行目\n二行目", "次")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="without a string"):
        read_texts(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no texts"):
        read_texts(empty)
