"""Entity-level metrics on character spans (issue 3), on hand-made spans."""

from __future__ import annotations

import pytest

from training.data import Span
from training.metrics import classify_errors, score


def test_exact_match_micro_and_per_type():
    gold = [[Span(0, 2, "PER"), Span(5, 8, "LOC")], [Span(0, 3, "ORG")]]
    pred = [[Span(0, 2, "PER"), Span(5, 7, "LOC")], [Span(0, 3, "ORG"), Span(4, 6, "PRD")]]
    s = score(gold, pred, ("PER", "LOC", "ORG", "PRD", "EVT"))
    assert (s.micro.tp, s.micro.fp, s.micro.fn) == (2, 2, 1)
    assert s.micro.precision == pytest.approx(0.5)
    assert s.micro.recall == pytest.approx(2 / 3)
    assert s.micro.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert s.per_type["PER"].f1 == 1.0
    assert (s.per_type["LOC"].tp, s.per_type["LOC"].fp, s.per_type["LOC"].fn) == (0, 1, 1)
    assert s.per_type["EVT"].f1 == 0.0 and s.per_type["EVT"].tp + s.per_type["EVT"].fn == 0
    assert list(s.per_type) == ["PER", "LOC", "ORG", "PRD", "EVT"]


def test_type_must_match_and_duplicates_count_once():
    gold = [[Span(0, 2, "ORG")]]
    assert score(gold, [[Span(0, 2, "ORG-O")]]).micro.tp == 0
    s = score(gold, [[Span(0, 2, "ORG"), Span(0, 2, "ORG")]])
    assert (s.micro.tp, s.micro.fp) == (1, 0)


def test_empty_inputs_and_length_mismatch():
    s = score([[]], [[]])
    assert s.micro.f1 == 0.0 and s.micro.precision == 0.0
    with pytest.raises(ValueError):
        score([[]], [])


def test_error_buckets():
    gold = [[Span(0, 2, "PER"), Span(3, 6, "LOC"), Span(7, 9, "ORG"), Span(10, 12, "EVT"), Span(20, 22, "INS")]]
    pred = [
        [
            Span(0, 2, "LOC"),  # same span, wrong type
            Span(3, 5, "LOC"),  # boundary
            Span(7, 10, "ORG-O"),  # boundary and type
            Span(14, 16, "PRD"),  # spurious
            Span(20, 22, "INS"),  # correct
        ]
    ]
    errors = classify_errors(gold, pred)
    assert errors == {
        "type:PER->LOC": 1,
        "boundary:LOC": 1,
        "boundary+type:ORG->ORG-O": 1,
        "miss:EVT": 1,
        "spurious:PRD": 1,
    }
