"""Character spans -> IOB2 token labels and back (issue 3), on hand-made tokens and offsets."""

from __future__ import annotations

from training.align import IGNORE, LABEL2ID, LABELS, decode_spans, token_labels
from training.data import TYPE_MAP, Span, parse_record

ID2LABEL = dict(enumerate(LABELS))


def names(ids):
    return [ID2LABEL.get(i, "IGN") if i != IGNORE else "IGN" for i in ids]


def test_label_set_matches_seed_types_in_iob2():
    assert LABELS[0] == "O" and len(LABELS) == 17
    assert LABELS[1:5] == ("B-PER", "I-PER", "B-ORG", "I-ORG")
    assert {label.split("-", 1)[1] for label in LABELS[1:]} == set(TYPE_MAP.values())


def test_specials_and_lone_metaspace_are_ignored():
    text = "鈴木は熊本県に"
    tokens = ["<s>", "▁", "鈴木", "は", "熊本県", "に", "</s>"]
    offsets = [(0, 0), (0, 1), (0, 2), (2, 3), (3, 6), (6, 7), (0, 0)]
    special = [1, 0, 0, 0, 0, 0, 1]
    spans = [Span(0, 2, "PER"), Span(3, 6, "LOC")]
    got = names(token_labels(text, tokens, offsets, special, spans))
    assert got == ["IGN", "IGN", "B-PER", "O", "B-LOC", "O", "IGN"]
    assert decode_spans(text, offsets, token_labels(text, tokens, offsets, special, spans), ID2LABEL) == spans


def test_token_inside_entity_is_inside_and_majority_type_wins():
    text = "東京都港区日本の"
    # "京都港" covers 2 chars of LOC 東京都 (0-3) and 1 char of LOC2 港区 (3-5): the larger overlap wins.
    tokens = ["東", "京都港", "区", "日本の"]
    offsets = [(0, 1), (1, 4), (4, 5), (5, 8)]
    spans = [Span(0, 3, "LOC"), Span(3, 5, "INS"), Span(5, 7, "LOC")]
    got = names(token_labels(text, tokens, offsets, [0] * 4, spans))
    # 区 contains no first character of INS (3): I-INS; 日本の holds LOC's first character: B-LOC
    assert got == ["B-LOC", "I-LOC", "I-INS", "B-LOC"]


def test_whitespace_does_not_count_and_touching_entities_stay_apart():
    text = "I like New York"
    tokens = ["▁I", "▁like", "▁New", "▁York"]
    offsets = [(0, 1), (1, 6), (6, 10), (10, 15)]
    spans = [Span(7, 10, "LOC"), Span(11, 15, "LOC")]
    ids = token_labels(text, tokens, offsets, [0] * 4, spans)
    assert names(ids) == ["O", "O", "B-LOC", "B-LOC"]
    assert decode_spans(text, offsets, ids, ID2LABEL) == spans


def test_decode_is_lenient_about_stray_inside_tags():
    text = "ABCD"
    offsets = [(0, 1), (1, 2), (2, 3), (3, 4)]
    ids = [LABEL2ID["I-ORG"], LABEL2ID["I-ORG"], LABEL2ID["I-PER"], LABEL2ID["O"]]
    assert decode_spans(text, offsets, ids, ID2LABEL) == [Span(0, 2, "ORG"), Span(2, 3, "PER")]


def test_parse_record_maps_japanese_type_names():
    entity = {"name": "中国共産党", "span": [0, 5], "type": "政治的組織名"}
    rec = {"curid": 1, "text": "中国共産党", "entities": [entity]}
    ex = parse_record(rec)
    assert ex.spans == (Span(0, 5, "ORG-P"),) and ex.curid == "1"


def test_decode_reads_an_io_model_through_the_core_codec():
    # the seed model's bare labels: the training decoder no longer assumes B-/I- prefixes
    io = dict(enumerate(["O", "PER", "ORG", "ORG-P", "ORG-O", "LOC", "INS", "PRD", "EVT"]))
    text = "鈴木は熊本県に"
    offsets = [(0, 1), (1, 2), (2, 3), (3, 6), (6, 7)]
    assert decode_spans(text, offsets, [1, 1, 0, 5, 0], io) == [Span(0, 2, "PER"), Span(3, 6, "LOC")]
    assert decode_spans(text, offsets, [IGNORE, 1, 0, 3, 3], io) == [Span(1, 2, "PER"), Span(3, 7, "ORG-P")]
