"""Aggregation on hand-made probabilities over the real XLM-R tokenisation."""

import itertools

import numpy as np
import pytest

from ja_ner.aggregate import aggregate
from ja_ner.encode import encode
from ja_ner.labels import Decoding, LabelCodec
from ja_ner.options import Aggregation
from ja_ner.words import WordSplitter

IO = ["O", "PER", "ORG", "ORG-P", "ORG-O", "LOC", "INS", "PRD", "EVT"]
BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG-P", "I-ORG-P"]


def _probs(labels: list[str], per_token: list[str], confidence: float = 0.9) -> np.ndarray:
    """One row per token: ``confidence`` on the named label, the rest spread evenly."""
    rest = (1 - confidence) / (len(labels) - 1)
    probs = np.full((len(per_token), len(labels)), rest, dtype=np.float32)
    for row, name in enumerate(per_token):
        probs[row, labels.index(name)] = confidence
    return probs


def _run(
    tokenizer, text, labels, per_token, strategy=Aggregation.SIMPLE, words=None, word_edges=False, keep=frozenset()
):
    tokens = encode([text], tokenizer)[0]
    kept = [i for i, (s, e) in enumerate(tokens.offsets) if s < e]  # as the pipeline does
    offsets = [tokens.offsets[i] for i in kept]
    assert len(offsets) == len(per_token), [tokenizer.convert_ids_to_tokens(tokens.input_ids[i]) for i in kept]
    codec = LabelCodec.from_id2label(dict(enumerate(labels)))
    probs = _probs(labels, per_token)
    kw = {"word_edges": word_edges, "keep_function_words": keep, "decoding": Decoding.GROUP}  # the grouping's own tests
    spans = aggregate(text, offsets, probs, codec, strategy, words, **kw)
    return [(s.type, text[s.start : s.end], s.start, s.end) for s in spans]


def test_bare_word_start_token_owns_no_character(xlmr_tokenizer):
    tokens = encode(["鈴木は"], xlmr_tokenizer)[0]
    assert xlmr_tokenizer.convert_ids_to_tokens(tokens.input_ids[0]) == "\u2581"
    assert tokens.offsets[0] == (0, 0) and tokens.offsets[1] == (0, 1)


def test_io_keeps_org_p_and_org_o_whole(xlmr_tokenizer):
    # 自 民 党 と 国際 連 合 が 会 談 した
    tags = ["ORG-P", "ORG-P", "ORG-P", "O", "ORG-O", "ORG-O", "ORG-O", "O", "O", "O", "O"]
    assert _run(xlmr_tokenizer, "自民党と国際連合が会談した", IO, tags) == [
        ("ORG-P", "自民党", 0, 3),
        ("ORG-O", "国際連合", 4, 8),
    ]


def test_io_merges_touching_entities_of_one_type(xlmr_tokenizer):
    assert _run(xlmr_tokenizer, "田中鈴木", IO, ["PER"] * 4) == [("PER", "田中鈴木", 0, 4)]


def test_bio_separates_touching_entities_of_one_type(xlmr_tokenizer):
    tags = ["B-PER", "I-PER", "B-PER", "I-PER"]
    assert _run(xlmr_tokenizer, "田中鈴木", BIO, tags) == [("PER", "田中", 0, 2), ("PER", "鈴木", 2, 4)]


def test_bio_inside_without_begin_starts_an_entity(xlmr_tokenizer):
    assert _run(xlmr_tokenizer, "田中鈴木", BIO, ["O", "O", "I-PER", "I-PER"]) == [("PER", "鈴木", 2, 4)]


def test_bio_type_change_without_begin_keeps_one_entity_of_the_majority_type(xlmr_tokenizer):
    tags = ["B-LOC", "I-LOC", "I-LOC", "I-PER"]
    assert _run(xlmr_tokenizer, "田中鈴木", BIO, tags) == [("LOC", "田中鈴木", 0, 4)]
    tags = ["B-LOC", "I-PER", "I-PER", "I-PER"]
    assert _run(xlmr_tokenizer, "田中鈴木", BIO, tags) == [("PER", "田中鈴木", 0, 4)]


def test_bio_begin_of_another_type_starts_a_new_entity(xlmr_tokenizer):
    tags = ["B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert _run(xlmr_tokenizer, "田中鈴木", BIO, tags) == [("LOC", "田中", 0, 2), ("PER", "鈴木", 2, 4)]


def test_io_type_change_splits(xlmr_tokenizer):
    tags = ["LOC", "LOC", "PER", "PER"]
    assert _run(xlmr_tokenizer, "田中鈴木", IO, tags) == [("LOC", "田中", 0, 2), ("PER", "鈴木", 2, 4)]


def test_bio_score_sums_begin_and_inside_of_the_type(xlmr_tokenizer):
    tokens = encode(["東京"], xlmr_tokenizer)[0]
    codec = LabelCodec.from_id2label(dict(enumerate(BIO)))
    probs = np.array([[0.1, 0.0, 0.0, 0.5, 0.4, 0.0, 0.0]], dtype=np.float32)  # B-LOC 0.5 + I-LOC 0.4
    spans = aggregate("東京", [tokens.offsets[1]], probs, codec, Aggregation.SIMPLE)
    assert [(s.type, s.start, s.end) for s in spans] == [("LOC", 0, 2)]
    assert spans[0].score == pytest.approx(0.9)


def test_entities_at_the_very_start_and_end(xlmr_tokenizer):
    # 鈴 木 は 4 月に 熊本 県 の 阿 蘇 山 に 登 った
    tags = ["PER", "PER", "O", "O", "O", "LOC", "LOC", "O", "LOC", "LOC", "LOC", "O", "O", "EVT"]
    assert _run(xlmr_tokenizer, "鈴木は4月に熊本県の阿蘇山に登った", IO, tags) == [
        ("PER", "鈴木", 0, 2),
        ("LOC", "熊本県", 6, 9),
        ("LOC", "阿蘇山", 10, 13),
        ("EVT", "った", 15, 17),
    ]


def test_score_is_the_mean_token_probability(xlmr_tokenizer):
    tokens = encode(["東京"], xlmr_tokenizer)[0]
    codec = LabelCodec.from_id2label(dict(enumerate(IO)))
    probs = _probs(IO, ["LOC"], confidence=0.8)
    spans = aggregate("東京", [tokens.offsets[1]], probs, codec, Aggregation.SIMPLE)
    assert spans[0].score == pytest.approx(0.8)


def test_whitespace_is_trimmed_from_span_edges():
    codec = LabelCodec.from_id2label(dict(enumerate(IO)))
    offsets = [(0, 3), (3, 5)]  # " 東京" as one token, then "は"
    spans = aggregate(" 東京は", offsets, _probs(IO, ["LOC", "O"]), codec, Aggregation.SIMPLE)
    assert [(s.start, s.end) for s in spans] == [(1, 3)]


@pytest.mark.parametrize(
    ("text", "cuts", "tags", "kept"),
    [
        ("👍 鈴木", [0, 2, 4], ["PER", "PER"], ["鈴木"]),  # an emoji tagged with the name after it
        ("😀", [0, 1], ["PER"], []),  # an emoji alone is no entity
        ("鈴木👍🏻", [0, 2, 4], ["PER", "PER"], ["鈴木"]),  # skin-tone modifier too
        ("501®", [0, 3, 4], ["PRD", "PRD"], ["501®"]),  # other symbols stay (Stockmark's gold has 501®)
    ],
)
def test_emoji_and_spaces_never_edge_an_entity(text, cuts, tags, kept):
    codec = LabelCodec.from_id2label(dict(enumerate(IO)))
    offsets = list(itertools.pairwise(cuts))
    spans = aggregate(text, offsets, _probs(IO, tags), codec, Aggregation.SIMPLE)
    assert [text[s.start : s.end] for s in spans] == kept


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (Aggregation.FIRST, [("PER", "山田太郎", 0, 4)]),  # word 山田 takes 山's PER; 太郎 is its own word
        (Aggregation.MAX, [("PER", "山田太郎", 0, 4)]),
        (Aggregation.AVERAGE, [("PER", "山田太郎", 0, 4)]),
    ],
)
def test_word_strategies_use_morphological_words(xlmr_tokenizer, strategy, expected):
    text = "山田太郎は東京に住む"
    words = WordSplitter()(text)
    assert [(w.start, w.end) for w in words[:2]] == [(0, 2), (2, 4)]  # 山田 / 太郎 from MeCab, not from spaces
    # 山 田 太郎 は 東京 に 住 む : the token 田 is unsure; the words decide
    tags = ["PER", "O", "PER", "O", "O", "O", "O", "O"]
    got = _run(xlmr_tokenizer, text, IO, tags, strategy, words)
    if strategy is Aggregation.AVERAGE:
        # the mean of PER and O over 山田 is a tie broken by argmax order: O (id 0) wins
        assert got == [("PER", "太郎", 2, 4)]
    else:
        assert got == expected


def test_simple_strategy_splits_on_the_unsure_token(xlmr_tokenizer):
    tags = ["PER", "O", "PER", "O", "O", "O", "O", "O"]
    assert _run(xlmr_tokenizer, "山田太郎は東京に住む", IO, tags) == [("PER", "山", 0, 1), ("PER", "太郎", 2, 4)]


def test_word_edges_drop_a_trailing_particle_and_complete_a_cut_word(xlmr_tokenizer):
    text = "日本の三井物産に入った"
    words = WordSplitter()(text)
    # 日本の 三 井 物 産 に入った : one piece holds 日本 and its particle; the word 物産 is cut after 物
    tags = ["LOC", "ORG", "ORG", "ORG", "O", "O"]
    assert _run(xlmr_tokenizer, text, IO, tags) == [("LOC", "日本の", 0, 3), ("ORG", "三井物", 3, 6)]
    edged = _run(xlmr_tokenizer, text, IO, tags, words=words, word_edges=True)
    assert edged == [("LOC", "日本", 0, 2), ("ORG", "三井物産", 3, 7)]


def test_word_edges_keep_particles_of_the_listed_types(xlmr_tokenizer):
    text = "日本の三井物産に入った"
    tags = ["PRD", "O", "O", "O", "O", "O"]
    words = WordSplitter()(text)
    kept = _run(xlmr_tokenizer, text, IO, tags, words=words, word_edges=True, keep=frozenset({"PRD"}))
    assert kept == [("PRD", "日本の", 0, 3)]
    assert _run(xlmr_tokenizer, text, IO, tags, words=words, word_edges=True) == [("PRD", "日本", 0, 2)]


# --- decoding: viterbi beside group (issue 24) ----------------------------------------------------


def _rows(labels: list[str], per_token: list[dict[str, float]]) -> np.ndarray:
    """One row per token: the named probabilities, the rest of the mass spread evenly over the other labels."""
    probs = np.zeros((len(per_token), len(labels)), dtype=np.float32)
    for row, named in enumerate(per_token):
        rest = (1 - sum(named.values())) / (len(labels) - len(named))
        probs[row] = [named.get(label, rest) for label in labels]
    return probs


def _mass(rows: np.ndarray, units: list[int], kind: str) -> float:
    """The mean over ``units`` of the probability of ``kind`` (its B- and I- together): an entity's score."""
    return round(float(np.mean([rows[u, BIO.index(f"B-{kind}")] + rows[u, BIO.index(f"I-{kind}")] for u in units])), 4)


def _decode(tokenizer, text, labels, rows, decoding, strategy=Aggregation.SIMPLE, words=None, **kw):
    tokens = encode([text], tokenizer)[0]
    offsets = [o for o in tokens.offsets if o[0] < o[1]]
    assert len(offsets) == len(rows)
    codec = LabelCodec.from_id2label(dict(enumerate(labels)))
    spans = aggregate(text, offsets, rows, codec, strategy, words, decoding=decoding, **kw)
    return [(s.type, text[s.start : s.end], round(s.score, 4)) for s in spans]


def test_viterbi_keeps_the_type_of_the_begin_where_group_votes(xlmr_tokenizer):
    # 田 中 鈴 木: a confident B-LOC, then I-PER. Group runs on through the I-PERs and votes PER for the
    # whole; I-PER cannot follow B-LOC, so the best legal path opens a PER at 中 (B-PER 0.3).
    rows = _rows(BIO, [{"B-LOC": 0.9}, {"I-PER": 0.6, "B-PER": 0.3}, {"I-PER": 0.9}, {"I-PER": 0.9}])
    group = _decode(xlmr_tokenizer, "田中鈴木", BIO, rows, Decoding.GROUP)
    assert [(t, s) for t, s, _ in group] == [("PER", "田中鈴木")]
    viterbi = _decode(xlmr_tokenizer, "田中鈴木", BIO, rows, Decoding.VITERBI)
    assert viterbi == [("LOC", "田", _mass(rows, [0], "LOC")), ("PER", "中鈴木", _mass(rows, [1, 2, 3], "PER"))]


def test_viterbi_over_words_decodes_word_units(xlmr_tokenizer):
    text = "山田太郎は東京に住む"
    words = WordSplitter()(text)
    # 山 田 太郎 は 東京 に 住 む: 山 says I-PER (no B before it), 田 says O; the word 山田 takes 山's row
    rows = _rows(
        BIO,
        [{"I-PER": 0.6, "B-PER": 0.3}, {"O": 0.9}, {"I-PER": 0.7, "B-PER": 0.2}, {"O": 0.9}]
        + [{"B-LOC": 0.7, "I-LOC": 0.2}, {"O": 0.9}, {"O": 0.9}, {"O": 0.9}],
    )
    by_word = _decode(xlmr_tokenizer, text, BIO, rows, Decoding.VITERBI, Aggregation.FIRST, words)
    # word units 山田 (山's row) and 太郎: B-PER I-PER (0.3 * 0.7) beats B-PER B-PER (0.3 * 0.2)
    assert by_word == [("PER", "山田太郎", _mass(rows, [0, 2], "PER")), ("LOC", "東京", _mass(rows, [4], "LOC"))]
    # token units: 田 is O, so 太郎 opens its own PER
    by_token = _decode(xlmr_tokenizer, text, BIO, rows, Decoding.VITERBI)
    assert [(t, s) for t, s, _ in by_token] == [("PER", "山"), ("PER", "太郎"), ("LOC", "東京")]


@pytest.mark.parametrize("strategy", list(Aggregation))
def test_io_models_decode_the_same_either_way(xlmr_tokenizer, strategy):
    text = "米アップルの田中社長は熊本県の阿蘇山に登った"
    words = WordSplitter()(text)
    tokens = encode([text], xlmr_tokenizer)[0]
    offsets = [o for o in tokens.offsets if o[0] < o[1]]
    codec = LabelCodec.from_id2label(dict(enumerate(IO)))
    rng = np.random.default_rng(11)
    for _ in range(20):
        probs = rng.dirichlet(np.full(len(IO), 0.2), size=len(offsets)).astype(np.float32)
        kw = {"word_edges": True, "news_edges": True}
        group = aggregate(text, offsets, probs, codec, strategy, words, decoding=Decoding.GROUP, **kw)
        assert aggregate(text, offsets, probs, codec, strategy, words, decoding=Decoding.VITERBI, **kw) == group


def test_viterbi_agrees_with_group_on_a_legal_argmax(xlmr_tokenizer):
    rows = _rows(BIO, [{"B-PER": 0.8}, {"I-PER": 0.8}, {"B-PER": 0.8}, {"I-PER": 0.8}])
    for decoding in Decoding:
        got = _decode(xlmr_tokenizer, "田中鈴木", BIO, rows, decoding)
        assert got == [("PER", "田中", _mass(rows, [0, 1], "PER")), ("PER", "鈴木", _mass(rows, [2, 3], "PER"))]


@pytest.mark.parametrize("strategy", [Aggregation.AVERAGE, Aggregation.MAX])
@pytest.mark.parametrize("decoding", list(Decoding))
def test_a_word_whose_most_confident_token_is_inside_still_begins_its_entity(strategy, decoding):
    """Regression: 鈴木 as ▁ (B-PER 0.60) + 鈴木 (I-PER 0.99) under ``max`` read as an illegal I- start."""
    from ja_ner.words import Word, Words

    codec = LabelCodec.from_id2label(dict(enumerate(BIO)))
    text = "鈴木は東京"
    offsets = [(0, 1), (1, 2), (2, 3), (3, 5)]  # 鈴 | 木 | は | 東京
    probs = np.full((4, len(BIO)), 0.01, dtype=np.float32)
    probs[0, BIO.index("B-PER")], probs[1, BIO.index("I-PER")] = 0.60, 0.99
    probs[2, BIO.index("O")], probs[3, BIO.index("B-LOC")] = 0.95, 0.95
    probs /= probs.sum(axis=1, keepdims=True)
    words = Words.of([Word(0, 2, proper=True), Word(2, 3, function=True), Word(3, 5, proper=True)])
    spans = aggregate(text, offsets, probs, codec, strategy, words, decoding=decoding)
    assert [(s.type, s.start, s.end) for s in spans] == [("PER", 0, 2), ("LOC", 3, 5)]
