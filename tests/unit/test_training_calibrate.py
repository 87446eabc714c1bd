"""Threshold calibration: the sweep scores each threshold, the choice resists a lone spike."""

from training.calibrate import choose, sweep
from training.data import Example, Span

GOLD = Example("1", "鈴木は東京にいる", (Span(0, 2, "PER"), Span(3, 5, "LOC")))


def test_sweep_drops_entities_below_each_threshold():
    predicted = [[(Span(0, 2, "PER"), 0.9), (Span(3, 5, "LOC"), 0.6), (Span(6, 8, "ORG"), 0.3)]]
    rows = sweep([GOLD], predicted, grid=(0.0, 0.5, 0.7, 0.95))
    assert [(r["threshold"], r["precision"], r["recall"]) for r in rows] == [
        (0.0, 2 / 3, 1.0),
        (0.5, 1.0, 1.0),
        (0.7, 1.0, 0.5),
        (0.95, 0.0, 0.0),
    ]


def test_choice_prefers_a_plateau_to_a_spike():
    f1s = [0.70, 0.71, 0.90, 0.60, 0.80, 0.82, 0.81, 0.80]
    rows = [{"threshold": i / 10, "f1": f} for i, f in enumerate(f1s)]
    assert choose(rows)["threshold"] == 0.5


def test_choice_never_takes_an_edge_of_the_grid():
    rows = [{"threshold": i / 10, "f1": f} for i, f in enumerate([0.80, 0.81, 0.82, 0.84, 0.90])]
    assert choose(rows)["threshold"] == 0.3
