"""bench.chart: the series and ceiling lines taken from results.json, and the PNG drawn from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bench import chart


def level(users: int, throughput: float, p50: float, p99: float) -> dict:
    return {"users": users, "throughput": throughput, "p50_ms": p50, "p90_ms": p50, "p99_ms": p99, "other_cores": 0.0}


def ceiling(pair: str, best: float) -> dict:
    return {
        "dtype": pair,
        "threads": 2,
        "throughput": {"t2 B32": best},
        "best_batch": 32,
        "best_throughput": best,
        "single_ms_p50": 20.0,
        "single_ms_p90": 25.0,
    }


def plan(pair: str) -> dict:
    return {"pair": pair, "rowwise": False, "line": f"{pair} ...", "workers_agree": True}


@pytest.fixture
def case() -> dict:
    return {
        "case": "default",
        "model": "m",
        "runs": {
            "baseline": [level(16, 15.0, 1000.0, 1200.0), level(1, 14.0, 70.0, 80.0)],
            "ours": [level(1, 40.0, 25.0, 30.0), level(16, 70.0, 220.0, 300.0), level(64, 72.0, 880.0, 1100.0)],
            "torch": [level(1, 28.0, 35.0, 44.0), level(16, 60.0, 260.0, 330.0), level(64, 61.0, 1040.0, 1300.0)],
        },
        "ceilings": {"int8": ceiling("int8", 100.0), "onnxruntime/float32": ceiling("onnxruntime/float32", 80.0)},
        "plans": {"ours": plan("onnxruntime/float32"), "torch": plan("float32")},
    }


def results_of(*cases: dict) -> dict:
    return {"timestamp": "20260101-000000", "quick": True, "machine": {"cores": 2, "cpu": "Test CPU"}, "cases": cases}


def test_series_put_ours_first_baseline_last_sorted_by_users_and_named_by_pair(case: dict) -> None:
    drawn = chart.series(case)
    assert [s.name for s in drawn] == ["ours", "torch", "baseline"]
    assert [s.label for s in drawn] == ["ours (onnxruntime/float32)", "torch (torch/float32)", "baseline"]
    assert drawn[2].users == (1, 16) and drawn[2].throughput == (14.0, 15.0) and drawn[2].p99_ms == (80.0, 1200.0)
    assert drawn[0].p50_ms == (25.0, 220.0, 880.0)


def test_ceiling_lines_are_the_best_pair_and_the_served_one_when_it_differs(case: dict) -> None:
    assert [(line.label, line.throughput) for line in chart.ceiling_lines(case)] == [
        ("ceiling torch/int8 (best pair)", 100.0),
        ("ceiling onnxruntime/float32 (served by ours)", 80.0),
    ]
    case["plans"]["ours"] = plan("int8")
    assert [line.label for line in chart.ceiling_lines(case)] == ["ceiling torch/int8 (best pair)"]
    del case["ceilings"]
    assert chart.ceiling_lines(case) == []


def test_figure_plots_every_series_and_the_ceilings(case: dict) -> None:
    fig = chart.figure(results_of(case))
    speed, latency = fig.axes
    lines = {line.get_label(): list(line.get_ydata()) for line in speed.get_lines()}
    assert lines["ours (onnxruntime/float32)"] == [40.0, 70.0, 72.0]
    assert lines["baseline"] == [14.0, 15.0]
    assert lines["ceiling torch/int8 (best pair): 100.0"] == [100.0, 100.0]
    assert lines["ceiling onnxruntime/float32 (served by ours): 80.0"] == [80.0, 80.0]
    assert latency.get_yscale() == "log" and speed.get_xscale() == "log"
    p99 = [list(line.get_ydata()) for line in latency.get_lines() if line.get_linestyle() == "--"]
    assert p99 == [[30.0, 300.0, 1100.0], [44.0, 330.0, 1300.0], [80.0, 1200.0]]
    assert [int(t) for t in speed.get_xticks()] == [1, 16, 64]


def test_draw_writes_a_png_one_row_per_case(case: dict, tmp_path: Path) -> None:
    one = chart.draw(results_of(case), tmp_path / "one.png", dpi=50)
    two = chart.draw(results_of(case, {**case, "case": "base"}), tmp_path / "sub" / "two.png", dpi=50)
    with Image.open(one) as a, Image.open(two) as b:
        assert a.format == b.format == "PNG"
        assert a.size == (650, 240) and b.size == (650, 480)  # 13 x 4.8 inches per case at 50 dpi


def test_a_case_without_runs_still_draws(tmp_path: Path) -> None:
    empty = {"case": "default", "model": "m", "runs": {}}
    assert chart.draw(results_of(empty), tmp_path / "empty.png", dpi=30).is_file()
