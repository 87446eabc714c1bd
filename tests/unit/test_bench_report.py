"""bench.report: ratios, target checks and the markdown table (percentiles: loadtest.stats)."""

from __future__ import annotations

import pytest

from bench import report


def level(users: int, throughput: float, p50: float, p99: float, p90: float | None = None) -> dict:
    return {
        "users": users,
        "throughput": throughput,
        "p50_ms": p50,
        "p90_ms": p90 or p50,
        "p99_ms": p99,
        "other_cores": 0.0,
    }


def make_case(ours: list[dict], baseline: list[dict], best: float = 100.0, single: float = 20.0) -> dict:
    ceiling = {
        "dtype": "float32",
        "threads": 2,
        "tokens_mean": 38.0,
        "throughput": {"t2 B1": 50.0, "t2 B64": best},
        "best_batch": 64,
        "best_throughput": best,
        "single_ms_p50": single,
        "single_ms_p90": single + 2,
        "best_per_core": best / 2,
    }
    return {"case": "default", "model": "m", "runs": {"ours": ours, "baseline": baseline}, "ceiling": ceiling}


def test_ratios_per_level_against_baseline_and_ceiling() -> None:
    case = make_case([level(1, 40, 30, 35), level(16, 90, 170, 200)], [level(1, 20, 50, 55), level(16, 20, 800, 900)])
    summary = report.summarise(case)
    assert summary["ratios"] == [
        {"users": 1, "vs_baseline": 2.0, "vs_ceiling": 0.4},
        {"users": 16, "vs_baseline": 4.5, "vs_ceiling": 0.9},
    ]
    targets = summary["targets"]
    assert targets["vs_baseline_at_16"] == {"value": 4.5, "target": 4.0, "met": True}
    assert targets["vs_ceiling_at_saturation"]["value"] == 0.9 and targets["vs_ceiling_at_saturation"]["met"]
    assert targets["lone_user_overhead_ms"] == {"value": 10.0, "target": 15.0, "met": True}


def test_unmet_targets_and_collapse() -> None:
    ours = [level(1, 10, 60, 70), level(16, 30, 500, 600), level(64, 20, 3000, 12000)]
    case = make_case(ours, [level(16, 10, 1600, 1700)])
    targets = report.summarise(case)["targets"]
    assert targets["vs_baseline_at_16"]["value"] == 3.0 and targets["vs_baseline_at_16"]["met"] is False
    assert targets["vs_ceiling_at_saturation"]["value"] == 0.3 and not targets["vs_ceiling_at_saturation"]["met"]
    assert targets["lone_user_overhead_ms"]["value"] == 40.0 and not targets["lone_user_overhead_ms"]["met"]
    collapse = targets["no_p99_collapse_16_64"]
    assert collapse["throughput_64_over_16"] == pytest.approx(0.67, abs=0.01)
    assert collapse["tail_growth"] == pytest.approx(3.33, abs=0.01)
    assert collapse["met"] is False


def test_queueing_alone_is_not_a_collapse() -> None:
    # saturated at 16 users: 4x the users gives 4x the latency, same shape, same throughput
    ours = [level(16, 100, 160, 200), level(64, 100, 640, 800)]
    collapse = report.summarise(make_case(ours, []))["targets"]["no_p99_collapse_16_64"]
    assert collapse == {"throughput_64_over_16": 1.0, "tail_growth": 1.0, "met": True}


def test_missing_figures_give_none_not_errors() -> None:
    case = {"case": "base", "model": "m", "runs": {"ours": [level(4, 10, 100, 120)]}}
    summary = report.summarise(case)
    assert summary["ratios"] == [{"users": 4, "vs_baseline": None, "vs_ceiling": None}]
    assert summary["targets"]["vs_baseline_at_16"]["met"] is None
    assert summary["targets"]["no_p99_collapse_16_64"] is None
    text = report.case_markdown(case)
    assert "| 4 | 10.0 | 100 / 100 / 120 | – |" in text


def test_markdown_has_machine_table_targets_and_variants() -> None:
    case = make_case([level(1, 40, 30, 35), level(16, 90, 170, 200)], [level(1, 20, 50, 55), level(16, 20, 800, 900)])
    case["runs"]["bf16"] = [level(1, 30, 40, 45), level(16, 60, 250, 300)]
    case["variant_settings"] = {"ours": "as model-config.yaml", "bf16": "handler.dtype=bfloat16"}
    results = {
        "timestamp": "20260101-000000",
        "quick": True,
        "texts": "dev.jsonl (2 texts)",
        "settings": {"users": [1, 16], "seconds": 5, "warmup": 1},
        "machine": {"cores": 2, "cpu": "Test CPU", "cpu_flags": ["avx2"]},
        "cases": [case],
        "notes": ["a note"],
    }
    text = report.markdown(results)
    assert "(QUICK)" in text and "Test CPU" in text and "- a note" in text
    assert "| 16 | 90.0 | 170 / 170 / 200 | 20.0 | 800 / 800 / 900 | 4.50 | 0.90 | – / – | – / – / – / 0.00 |" in text
    assert "4.50× — met" in text
    assert "| bf16 | handler.dtype=bfloat16 | 30.0 (40/45) [–] | 60.0 (250/300) [–] |" in text
    assert "best 100.0 sent/s with 2 threads at B=64" in text


def test_cpu_split_is_shown_for_ours() -> None:
    ours = level(1, 40, 30, 35)
    ours["cpu"] = {"frontend": 0.2, "workers": 1.1, "client": 0.1, "others": 0.05}
    ours["other_cores"] = 0.05
    ours["per_core"] = 30.0  # 40 sent/s on 1.3 server cores
    case = make_case([ours], [])
    text = report.case_markdown(case)
    assert "| 30.0 / – | 0.20 / 1.10 / 0.10 / 0.05 |" in text
    check = report.summarise(case)["targets"]["vs_ceiling_per_cpu_second"]
    assert check == {"value": 0.6, "target": 0.75, "met": False}  # 30 / (100 / 2)


def test_machine_description_names_cores_cpu_and_torch() -> None:
    info = report.machine()
    assert info["cores"] >= 1 and info["cpu"]
    assert info["torch"] and "torch_threads" in info


def test_issue13_ceiling_is_the_best_format_and_lone_user_uses_the_fastest_single() -> None:
    """Ratios are taken against the best format's throughput; the single request against the fastest one."""
    case = make_case([level(1, 20.0, 30.0, 40.0), level(16, 150.0, 100.0, 200.0)], [], best=200.0, single=25.0)
    bf16 = {**case["ceiling"], "dtype": "bfloat16"}
    fp32 = {**case["ceiling"], "dtype": "float32", "best_throughput": 80.0, "single_ms_p50": 18.0}
    case["ceiling"], case["ceilings"] = bf16, {"bfloat16": bf16, "float32": fp32}
    targets = report.summarise(case)["targets"]
    assert targets["vs_ceiling_at_saturation"]["value"] == 0.75  # 150 / 200, not 150 / 80
    assert targets["lone_user_overhead_ms"]["value"] == 12.0  # 30 - 18 (fp32's single is faster)
    text = report.case_markdown(case)
    assert "Formats tried" in text and "bfloat16 200.0 sent/s" in text and "float32 80.0 sent/s" in text
