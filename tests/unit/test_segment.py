"""Windows: sentence boundaries first, overlapping token windows for long sentences."""

import pytest

from ja_ner.encode import encode
from ja_ner.segment import segment, sentence_ends


def _owned(windows):
    return [i for w in windows for i in range(w.own_start, w.own_end)]


def test_sentence_ends_include_closing_brackets():
    text = "「行く。」と言った！本当？\n次"
    assert [text[:e] for e in sentence_ends(text)] == [
        "「行く。」",
        "「行く。」と言った！",
        "「行く。」と言った！本当？\n",
    ]


def test_short_sentences_share_one_window(xlmr_tokenizer):
    text = "東京に行く。大阪に行く。"
    tokens = encode([text], xlmr_tokenizer)[0]
    windows = segment(0, tokens, text, max_tokens=64, overlap=8)
    assert [(w.start, w.end) for w in windows] == [(0, len(tokens))]


def test_windows_end_at_sentence_boundaries(xlmr_tokenizer):
    text = "東京都に住む鈴木さんは会社員です。" * 6
    tokens = encode([text], xlmr_tokenizer)[0]
    windows = segment(0, tokens, text, max_tokens=25, overlap=4)
    assert len(windows) > 1
    for w in windows[:-1]:
        end_char = tokens.offsets[w.end - 1][1]
        assert text[end_char - 1] == "。"  # every window but the last ends a sentence
        assert len(w) <= 25
    assert _owned(windows) == list(range(len(tokens)))  # every token owned exactly once


def test_long_sentence_is_cut_into_overlapping_windows(xlmr_tokenizer):
    text = "あいうえおかきくけこ" * 30  # no punctuation at all
    tokens = encode([text], xlmr_tokenizer)[0]
    windows = segment(0, tokens, text, max_tokens=40, overlap=10)
    assert len(windows) >= 3
    for a, b in zip(windows, windows[1:], strict=False):
        assert a.end - b.start == 10  # consecutive windows overlap by ``overlap`` tokens
        assert a.own_end == b.own_start  # and split the overlap between them
    assert all(len(w) <= 40 for w in windows)
    assert _owned(windows) == list(range(len(tokens)))


def test_mixed_long_and_short_sentences(xlmr_tokenizer):
    text = "短い文。" + "長" * 120 + "。終わり。"
    tokens = encode([text], xlmr_tokenizer)[0]
    windows = segment(3, tokens, text, max_tokens=32, overlap=8)
    assert all(w.doc_index == 3 and len(w) <= 32 for w in windows)
    assert _owned(windows) == list(range(len(tokens)))


def test_empty_document_has_no_windows(xlmr_tokenizer):
    tokens = encode([""], xlmr_tokenizer)[0]
    assert segment(0, tokens, "", max_tokens=32, overlap=8) == []


def test_plan_respects_the_token_budget_and_order(xlmr_tokenizer):
    from ja_ner.batch import plan

    text = "あいうえおかきくけこ" * 30
    tokens = encode([text], xlmr_tokenizer)[0]
    windows = segment(0, tokens, text, max_tokens=40, overlap=10)
    for keep_order in (False, True):
        groups = plan(windows, token_budget=100, keep_order=keep_order)
        assert sorted(w.start for g in groups for w in g) == sorted(w.start for w in windows)
        assert all(len(g) * (max(len(w) for w in g) + 2) <= 100 or len(g) == 1 for g in groups)
    ordered = [w for g in plan(windows, token_budget=100, keep_order=True) for w in g]
    assert ordered == windows


def _segment_by_rescan(doc_index, tokens, text, *, max_tokens, overlap):
    """The segmenter before issue 13: the previous bound found by rescanning every bound."""
    from ja_ner.segment import Window, _sentence_token_bounds, _split_long

    bounds = _sentence_token_bounds(tokens, text)
    windows, cur = [], 0
    for nxt in bounds[1:]:
        if nxt - cur <= max_tokens:
            continue
        prev = max((b for b in bounds if cur < b < nxt), default=None)
        if prev is not None and prev - cur <= max_tokens:
            windows.append(Window(doc_index, cur, prev, cur, prev))
            cur = prev
        if nxt - cur > max_tokens:
            windows.extend(_split_long(doc_index, cur, nxt, max_tokens, overlap))
            cur = nxt
    if cur < len(tokens):
        windows.append(Window(doc_index, cur, len(tokens), cur, len(tokens)))
    return windows


def test_issue13_one_pass_matches_the_rescan(xlmr_tokenizer):
    """The one-pass segmenter cuts exactly the windows the quadratic rescan cut."""
    sentences = ["東京に行く。", "大阪府の鈴木さんは会社員です！", "長" * 70 + "。", "え？", "「はい。」\n", "終わり"]
    text = "".join(sentences[(i * 7) % len(sentences)] for i in range(120))
    tokens = encode([text], xlmr_tokenizer)[0]
    for max_tokens, overlap in ((8, 2), (25, 4), (64, 16), (254, 32)):
        windows = segment(0, tokens, text, max_tokens=max_tokens, overlap=overlap)
        assert windows == _segment_by_rescan(0, tokens, text, max_tokens=max_tokens, overlap=overlap)
        assert _owned(windows) == list(range(len(tokens)))


@pytest.mark.parametrize("multiple", [1, 16])
def test_micro_batches_pad_to_the_plans_multiple_within_the_window(xlmr_tokenizer, multiple):
    from ja_ner.batch import SpecialIds, assemble, padded_length, plan

    assert [padded_length(n, pad_multiple=16) for n in (1, 16, 17, 33)] == [16, 16, 32, 48]
    assert [padded_length(n) for n in (1, 16, 17, 33)] == [1, 16, 17, 33]  # 1: no rounding
    assert padded_length(250, 256, 16) == 256 and padded_length(250, 252, 16) == 252
    assert padded_length(300, 256, 16) == 300  # never below the longest window
    text = "東京都に住む。" * 40
    tokens = encode([text], xlmr_tokenizer)
    windows = segment(0, tokens[0], text, max_tokens=40, overlap=10)
    window = 40 + 2  # the pipeline caps padding at its window, specials included
    groups = plan(windows, token_budget=100, max_length=window, pad_multiple=multiple)
    padded = [padded_length(max(len(w) for w in g) + 2, window, multiple) for g in groups]
    assert all(len(g) * n <= 100 or len(g) == 1 for g, n in zip(groups, padded, strict=True))
    ids = SpecialIds(cls=0, sep=2, pad=1)
    for g in groups:
        b = assemble(g, tokens, ids, max_length=window, pad_multiple=multiple)
        longest = max(len(w) for w in g) + 2
        assert b.input_ids.shape[1] == min(-(-longest // multiple) * multiple, window)
        assert b.attention_mask.sum(axis=1).tolist() == [len(w) + 2 for w in g]  # padding is masked
