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


def test_a_fixed_threshold_is_written_as_given_and_the_sweep_kept(tmp_path):
    import json

    import pytest

    from training import standins
    from training.calibrate import calibrate

    model = standins.build(tmp_path / "m", standins.TINY)
    (model / "training_summary.json").write_text("{}")
    result = calibrate(model, [GOLD], threads=1, fixed=0.65)
    assert json.loads((model / "config.json").read_text())["ner_min_score"] == 0.65
    assert result["chosen"]["fixed_beforehand"] is True
    recorded = json.loads((model / "training_summary.json").read_text())["calibration"]
    assert [r["threshold"] for r in recorded["sweep"]][:3] == [0.0, 0.05, 0.1]  # dev still swept, for the record
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        calibrate(model, [GOLD], threads=1, fixed=1.5)
