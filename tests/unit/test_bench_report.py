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
    assert "| bf16 | handler.dtype=bfloat16 | – | 30.0 (40/45) [–] | 60.0 (250/300) [–] | – |" in text  # no plan read
    assert "Ceiling of torch/float32: best 100.0 sent/s with 2 threads at B=64" in text


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


def test_issue13_without_a_served_pair_the_best_format_and_fastest_single_stand_in() -> None:
    """No plan line read: ratios against the best format's throughput, the single request against the fastest."""
    case = make_case([level(1, 20.0, 30.0, 40.0), level(16, 150.0, 100.0, 200.0)], [], best=200.0, single=25.0)
    bf16 = {**case["ceiling"], "dtype": "bfloat16"}
    fp32 = {**case["ceiling"], "dtype": "float32", "best_throughput": 80.0, "single_ms_p50": 18.0}
    case["ceiling"], case["ceilings"] = bf16, {"bfloat16": bf16, "float32": fp32}
    targets = report.summarise(case)["targets"]
    assert targets["vs_ceiling_at_saturation"]["value"] == 0.75  # 150 / 200, not 150 / 80
    assert targets["lone_user_overhead_ms"]["value"] == 12.0  # 30 - 18 (fp32's single is faster)
    text = report.case_markdown(case)
    assert "| torch/bfloat16 | 25.0 / 27.0 | – | 200.0 (t2, B64) |" in text
    assert "| torch/float32 | 18.0 / 27.0 | – | 80.0 (t2, B64) |" in text


def plan_of(pair: str, rowwise: bool = False) -> dict:
    runtime, _, dtype = pair.rpartition("/")
    line = f"{runtime or 'torch'}/{dtype} on cpu, 1 thread(s), {'row by row' if rowwise else 'batched, padded to 1'}"
    return {"pair": pair, "rowwise": rowwise, "line": line + ", batch_invariant=true: why", "workers_agree": True}


def comparisons(entity: int, score: int, texts: int = 128) -> dict:
    def one(name: str, e: int, s: int) -> dict:
        return {"name": name, "compared": texts, "entity_changes": e, "score_changes": s, "invariant": e == s == 0}

    return {
        "plan": "p",
        "comparisons": [one("client batches of 32", entity, score), one("streamed (final answer)", 0, 0)],
    }


def runtime_case() -> dict:
    """ours served ONNX Runtime, the variant ``torch`` served torch float32; three pairs measured."""
    case = make_case(
        [level(1, 40, 20, 26), level(16, 70, 230, 300), level(64, 72, 890, 1100)],
        [level(1, 15, 66, 80), level(16, 16, 1000, 1200)],
    )
    base = case["ceiling"]
    case["ceilings"] = {
        "int8": {**base, "dtype": "int8", "best_throughput": 110.0, "single_ms_p50": 40.0},
        "onnxruntime/float32": {**base, "dtype": "onnxruntime/float32", "best_throughput": 90.0, "single_ms_p50": 12.0},
        "float32": {**base, "dtype": "float32", "best_throughput": 80.0, "single_ms_p50": 30.0},
    }
    case["ceiling"] = case["ceilings"]["int8"]
    case["runs"]["torch"] = [level(1, 25, 30, 40), level(16, 56, 280, 360), level(64, 60, 1060, 1300)]
    case["plans"] = {"ours": plan_of("onnxruntime/float32"), "torch": plan_of("float32")}
    case["invariance"] = {
        "float32": {"texts": 128, "batched": comparisons(0, 0)},
        "onnxruntime/float32": {"texts": 128, "batched": comparisons(0, 0)},
        "int8": {"texts": 128, "batched": comparisons(6, 72), "served": comparisons(0, 0)},
    }
    case["variant_settings"] = {"ours": "as model-config.yaml", "torch": "handler.runtime=torch"}
    return case


def test_issue21_ratios_are_against_the_served_pairs_ceiling() -> None:
    summary = report.summarise(runtime_case())
    assert summary["served_pair"] == summary["ceiling_pair"] == "onnxruntime/float32"
    assert summary["best_pair"] == "int8"
    assert [r["vs_ceiling"] for r in summary["ratios"]] == [0.44, 0.78, 0.8]  # 40, 70, 72 over 90
    targets = summary["targets"]
    assert targets["vs_ceiling_at_saturation"] == {"value": 0.8, "target": 0.75, "met": True}  # 72 / 90
    assert targets["vs_best_ceiling_at_saturation"] == {"value": 0.65, "target": 0.75, "met": False}  # 72 / 110
    assert targets["lone_user_overhead_ms"]["value"] == 8.0  # 20 - the served pair's 12, not int8's 40


def test_issue25_ours_against_the_variant_that_served_torch_float32() -> None:
    versus = report.summarise(runtime_case())["vs_torch_float32"]
    assert versus["variant"] == "torch" and versus["ours_pair"] == "onnxruntime/float32"
    assert versus["lone_p50_speedup"] == {"value": 1.5, "target": 1.3, "met": True}  # 30 ms / 20 ms
    assert versus["throughput_16"] == {"value": 1.25, "target": 1.0, "met": True}  # 70 / 56
    assert versus["throughput_64"] == {"value": 1.2, "target": 1.0, "met": True}  # 72 / 60


def test_no_torch_float32_variant_means_no_runtime_comparison() -> None:
    case = runtime_case()
    case["plans"]["torch"] = plan_of("bfloat16")
    assert report.summarise(case)["vs_torch_float32"] is None
    text = report.case_markdown(case)
    assert "- lone-user p50 against torch float32: – (no variant's workers served torch/float32)" in text
    assert "| torch | torch/bfloat16 | 1.50× | 1.25× | 1.20× |" in text  # still set side by side


def test_every_variant_is_compared_with_ours() -> None:
    case = runtime_case()
    case["runs"]["half"] = [level(1, 10, 80, 90), level(16, 35, 400, 500)]
    rows = report.summarise(case)["vs_variants"]
    assert rows == [
        {"variant": "torch", "pair": "float32", "lone_p50_speedup": 1.5, "throughput_16": 1.25, "throughput_64": 1.2},
        {"variant": "half", "pair": None, "lone_p50_speedup": 4.0, "throughput_16": 2.0, "throughput_64": None},
    ]


def test_issue21_best_invariant_pair_leaves_out_a_pair_whose_batches_moved_answers() -> None:
    """int8 is the best ceiling batched, but its batches moved scores: the invariant best is ONNX Runtime's."""
    summary = report.summarise(runtime_case())
    assert summary["best_pair"] == "int8" and summary["best_invariant_pair"] == "onnxruntime/float32"
    assert summary["targets"]["vs_best_invariant_ceiling_at_saturation"]["value"] == 0.8  # 72 / 90
    assert "best batch-invariant pair's ceiling (onnxruntime/float32) at saturation: 0.80 — met" in (
        report.case_markdown(runtime_case())
    )
    unmeasured = runtime_case()
    del unmeasured["invariance"]
    assert report.summarise(unmeasured)["targets"]["vs_best_invariant_ceiling_at_saturation"] is None


def test_each_variant_is_set_against_its_own_pairs_ceiling() -> None:
    modes = report.summarise(runtime_case())["modes"]
    assert modes["ours"] == {
        "pair": "onnxruntime/float32",
        "rowwise": False,
        "saturation": 72,
        "pair_ceiling": 90.0,
        "vs_pair_ceiling": 0.8,
    }
    assert modes["torch"]["pair_ceiling"] == 80.0 and modes["torch"]["vs_pair_ceiling"] == 0.75  # 60 / 80


def test_markdown_shows_pairs_side_by_side_with_invariance_and_plans() -> None:
    text = report.case_markdown(runtime_case())
    rows = [line for line in text.splitlines() if line.startswith("| torch/int8 |")]
    assert rows == [
        "| torch/int8 | 40.0 / 22.0 | – | 110.0 (t2, B64) | 50.0 | 6 / 72 of 128 batched; 0 / 0 row by row "
        "| 0 / 0 of 128 batched; 0 / 0 row by row | – |"
    ]
    assert (
        "| onnxruntime/float32 | 12.0 / 22.0 | – | 90.0 (t2, B64) | 50.0 | 0 / 0 of 128 | 0 / 0 of 128 | ours |" in text
    )
    assert "| torch/float32 | 30.0 / 22.0 |" in text and text.index("torch/int8 |") < text.index("torch/float32 |")
    assert "- ours: `onnxruntime/float32 on cpu, 1 thread(s), batched, padded to 1, batch_invariant=true: why`" in text
    assert "served pair's ceiling (onnxruntime/float32) at saturation: 0.80 — met" in text
    assert "best pair's ceiling (torch/int8) at saturation: 0.65 — NOT met" in text
    assert "lone-user p50 ≥ 1.3× lower with ours (onnxruntime/float32) than with torch float32 (variant torch)" in text
    assert "| torch | handler.runtime=torch | torch/float32 | 25.0 (30/40) [–] |" in text
    assert text.rstrip().endswith("| 0.75 |")  # the torch variant: 60 / 80


def test_ceiling_table_reads_the_b32_figure_best_over_threads() -> None:
    case = runtime_case()
    case["ceilings"]["float32"]["throughput"] = {"t1 B32": 40.0, "t2 B32": 61.5, "t2 B64": 80.0}
    assert "| torch/float32 | 30.0 / 22.0 | 61.5 | 80.0 (t2, B64) |" in report.case_markdown(case)


def test_markdown_links_the_chart() -> None:
    results = {
        "timestamp": "t",
        "texts": "x",
        "settings": {"seconds": 5, "warmup": 1},
        "machine": {},
        "cases": [runtime_case()],
        "chart": "results.png",
    }
    assert "![throughput and latency against users](results.png)" in report.markdown(results)
