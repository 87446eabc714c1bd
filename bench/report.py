"""Ratios, target checks and the markdown table of one benchmark run (pure functions of results.json).

Ratios to the ceiling are taken against the ceiling of the pair a mode served (``case["plans"]``,
read from its workers' ``plan:`` log line), and, for the issue-25 check, against the best pair's.
Where the served pair is unknown (no plan line), the best pair's ceiling stands in for it.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

# The targets (benchmark figures, not test assertions).
TARGET_VS_BASELINE = 4.0  # ours / baseline throughput at 16 users, at least
TARGET_VS_CEILING = 0.75  # best ours throughput / ceiling throughput (served pair's; best pair's), at least
TARGET_LONE_SPEEDUP = 1.3  # torch float32 variant's p50 at 1 user / ours', at least (issue 25)
TARGET_HELD = 1.0  # ours' throughput / torch float32 variant's at 16 and 64 users, at least ("not lower")
REFERENCE_PAIR = "float32"  # the bench's name of torch/float32 (bench.ceiling.pair_name)
TARGET_LONE_USER_MS = 15.0  # p50 at 1 user minus ceiling single-request p50, at most
COLLAPSE_THROUGHPUT = 0.9  # throughput at 64 users / at 16 users, at least
COLLAPSE_TAIL = 2.0  # (p99/p50 at 64 users) / (p99/p50 at 16 users), at most


def machine() -> dict[str, Any]:
    """Cores, CPU model and flags, memory, library versions and load of the machine running the bench."""
    info: dict[str, Any] = {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        text = cpuinfo.read_text()
        for line in text.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
        info["cpu_flags"] = sorted(f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "avx_vnni"))
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        kb = int(meminfo.read_text().split()[1])
        info["memory_gib"] = round(kb / 2**20, 1)
    for module in ("torch", "transformers", "tokenizers", "ts"):
        try:
            info[module if module != "ts" else "torchserve"] = __import__(module).__version__
        except (ImportError, AttributeError):
            info[module] = None
    try:
        import torch

        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def _level(levels: list[dict], users: int) -> dict | None:
    return next((lv for lv in levels if lv["users"] == users), None)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def ceilings_of(case: dict) -> dict[str, dict]:
    """Pair name -> ceiling figures, best first (a case of one ceiling only: that one)."""
    if case.get("ceilings"):
        return dict(case["ceilings"])
    ceiling = case.get("ceiling")
    return {ceiling.get("dtype", ""): ceiling} if ceiling else {}


def shown(pair: str | None) -> str:
    """A pair as the report prints it: always ``runtime/format`` (the bench names torch's by format alone)."""
    if not pair:
        return "–"
    return pair if "/" in pair else f"torch/{pair}"


def served_pair(case: dict, mode: str) -> str | None:
    """The pair ``mode`` served (its plan line), None where no plan line was read."""
    plan = (case.get("plans") or {}).get(mode)
    return plan["pair"] if plan else None


def summarise_mode(case: dict, mode: str) -> dict[str, Any]:
    """One mode of ours: the pair it served, its saturation throughput and that against its pair's ceiling."""
    levels = case["runs"].get(mode, [])
    pair = served_pair(case, mode)
    ceiling = ceilings_of(case).get(pair) if pair else None
    saturation = max((lv["throughput"] for lv in levels), default=None)
    plan = (case.get("plans") or {}).get(mode) or {}
    return {
        "pair": pair,
        "rowwise": plan.get("rowwise"),
        "saturation": saturation,
        "pair_ceiling": ceiling.get("best_throughput") if ceiling else None,
        "vs_pair_ceiling": _ratio(saturation, ceiling.get("best_throughput") if ceiling else None),
    }


def summarise(case: dict) -> dict[str, Any]:
    """Ratios per level and the target checks of one case (None where a figure is missing)."""
    ours = case["runs"].get("ours", [])
    baseline = case["runs"].get("baseline", [])
    ceilings = ceilings_of(case)
    best = case.get("ceiling") or next(iter(ceilings.values()), {})  # the best pair's
    pair = served_pair(case, "ours")
    served = ceilings.get(pair, {}) if pair else {}
    # unknown served pair: the best pair's throughput, the fastest single request of any pair
    against = served or best
    best_ceiling = best.get("best_throughput")
    invariant_best = next((c for name, c in ceilings.items() if invariant_batched(case, name)), {})
    single = (
        served.get("single_ms_p50")
        if served
        else min((c["single_ms_p50"] for c in ceilings.values() if "single_ms_p50" in c), default=None)
    )
    ceiling_per_core = (
        served.get("best_per_core")
        if served
        else (max((c.get("best_per_core") or 0 for c in ceilings.values()), default=0) or None)
    )
    ratios = []
    for level in ours:
        base = _level(baseline, level["users"])
        ratios.append(
            {
                "users": level["users"],
                "vs_baseline": _ratio(level["throughput"], base["throughput"] if base else None),
                "vs_ceiling": _ratio(level["throughput"], against.get("best_throughput")),
            }
        )
    at16 = next((r["vs_baseline"] for r in ratios if r["users"] == 16), None)
    saturation = max((lv["throughput"] for lv in ours), default=None)
    one = _level(ours, 1)
    lone = round(one["p50_ms"] - single, 1) if one and single is not None else None
    l16, l64 = _level(ours, 16), _level(ours, 64)
    collapse = None
    if l16 and l64 and l16["p50_ms"] and l64["p50_ms"] and l16["throughput"]:
        held = l64["throughput"] / l16["throughput"]
        tail = (l64["p99_ms"] / l64["p50_ms"]) / (l16["p99_ms"] / l16["p50_ms"])
        collapse = {
            "throughput_64_over_16": round(held, 2),
            "tail_growth": round(tail, 2),
            "met": held >= COLLAPSE_THROUGHPUT and tail <= COLLAPSE_TAIL,
        }
    best_per_core = max((lv.get("per_core") or 0 for lv in ours), default=0) or None
    return {
        "served_pair": pair,
        "ceiling_pair": against.get("dtype"),
        "best_pair": best.get("dtype"),
        "best_invariant_pair": invariant_best.get("dtype"),
        "ratios": ratios,
        "modes": {name: summarise_mode(case, name) for name in case["runs"] if name != "baseline"},
        "targets": {
            "vs_baseline_at_16": _check(at16, TARGET_VS_BASELINE, higher=True),
            "vs_ceiling_at_saturation": _check(
                _ratio(saturation, against.get("best_throughput")), TARGET_VS_CEILING, higher=True
            ),
            "vs_best_ceiling_at_saturation": _check(_ratio(saturation, best_ceiling), TARGET_VS_CEILING, higher=True),
            "vs_best_invariant_ceiling_at_saturation": _check(
                _ratio(saturation, invariant_best.get("best_throughput")), TARGET_VS_CEILING, higher=True
            )
            if invariant_best
            else None,
            "vs_ceiling_per_cpu_second": _check(
                _ratio(best_per_core, ceiling_per_core), TARGET_VS_CEILING, higher=True
            ),
            "lone_user_overhead_ms": _check(lone, TARGET_LONE_USER_MS, higher=False),
            "no_p99_collapse_16_64": collapse,
        },
        "vs_torch_float32": compare_to_reference(case),
        "vs_variants": versus_variants(case),
    }


def invariant_batched(case: dict, pair: str) -> bool:
    """Whether ``pair`` answered every text the same alone and batched (False where not measured)."""
    entry = (case.get("invariance") or {}).get(pair)
    return bool(entry) and all(c["invariant"] for c in entry["batched"]["comparisons"])


def versus_variants(case: dict) -> list[dict[str, Any]]:
    """Ours against each variant: the variant's p50 at 1 user over ours', ours' throughput over its at 16/64."""
    ours = case["runs"].get("ours", [])
    out = []
    for name, levels in case["runs"].items():
        if name in ("ours", "baseline"):
            continue
        row: dict[str, Any] = {"variant": name, "pair": served_pair(case, name)}
        one, mine = _level(levels, 1), _level(ours, 1)
        row["lone_p50_speedup"] = _ratio(one["p50_ms"], mine["p50_ms"]) if one and mine else None
        for users in (16, 64):
            theirs, mine = _level(levels, users), _level(ours, users)
            row[f"throughput_{users}"] = _ratio(mine["throughput"], theirs["throughput"]) if theirs and mine else None
        out.append(row)
    return out


def reference_variant(case: dict) -> str | None:
    """The first variant (not ours, not the baseline) whose workers served torch float32, if any."""
    return next(
        (
            name
            for name in case["runs"]
            if name not in ("ours", "baseline") and served_pair(case, name) == REFERENCE_PAIR
        ),
        None,
    )


def compare_to_reference(case: dict) -> dict[str, Any] | None:
    """Issue 25's checks: ours against the variant that served torch float32 (None without one).

    ``lone_p50_speedup``: the variant's p50 at 1 user over ours' (higher is better);
    ``throughput_16``/``throughput_64``: ours' throughput over the variant's at 16/64 users.
    """
    name = reference_variant(case)
    if name is None:
        return None
    ours, ref = case["runs"].get("ours", []), case["runs"][name]

    def at(levels: list[dict], users: int, key: str) -> float | None:
        level = _level(levels, users)
        return level[key] if level else None

    return {
        "variant": name,
        "ours_pair": served_pair(case, "ours"),
        "lone_p50_speedup": _check(
            _ratio(at(ref, 1, "p50_ms"), at(ours, 1, "p50_ms")), TARGET_LONE_SPEEDUP, higher=True
        ),
        "throughput_16": _check(
            _ratio(at(ours, 16, "throughput"), at(ref, 16, "throughput")), TARGET_HELD, higher=True
        ),
        "throughput_64": _check(
            _ratio(at(ours, 64, "throughput"), at(ref, 64, "throughput")), TARGET_HELD, higher=True
        ),
    }


def _check(value: float | None, target: float, *, higher: bool) -> dict[str, Any]:
    """A target check; ``met`` is None when the figure is missing."""
    met = None if value is None else (value >= target if higher else value <= target)
    return {"value": value, "target": target, "met": met}


def _lat(level: dict | None) -> str:
    return f"{level['p50_ms']:.0f} / {level['p90_ms']:.0f} / {level['p99_ms']:.0f}" if level else "–"


def _cpu(level: dict) -> str:
    cpu = level.get("cpu") or {}
    parts = [cpu.get(k) for k in ("frontend", "workers", "client")] + [level.get("other_cores", cpu.get("others"))]
    return " / ".join("–" if v is None else f"{v:.2f}" for v in parts)


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _met(flag: bool | None) -> str:
    return "–" if flag is None else ("met" if flag else "NOT met")


def _target_line(label: str, check: dict[str, Any], unit: str = "") -> str:
    return f"- {label}: {_num(check['value'], 2)}{unit if check['value'] is not None else ''} — {_met(check['met'])}"


def case_markdown(case: dict) -> str:
    """The table of one case: modes side by side per level, ceiling, targets, variants."""
    summary = summarise(case)
    ours, baseline = case["runs"].get("ours", []), case["runs"].get("baseline", [])
    lines = [f"### Case `{case['case']}`: {case['model']}", ""]
    lines += [
        "| users | ours sent/s | ours p50 / p90 / p99 ms | baseline sent/s | baseline p50 / p90 / p99 ms "
        "| ours/baseline | ours/ceiling (served pair) | sent per server CPU-s: ours / baseline "
        "| ours CPU cores: frontend / workers / client / others |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level, ratio in zip(ours, summary["ratios"], strict=True):
        base = _level(baseline, level["users"])
        lines.append(
            f"| {level['users']} | {level['throughput']:.1f} | {_lat(level)} | "
            f"{_num(base['throughput'] if base else None)} | {_lat(base)} | "
            f"{_num(ratio['vs_baseline'], 2)} | {_num(ratio['vs_ceiling'], 2)} | "
            f"{_num(level.get('per_core'))} / {_num(base.get('per_core') if base else None)} | {_cpu(level)} |"
        )
    lines += ceiling_markdown(case, summary)
    targets = summary["targets"]
    collapse = targets["no_p99_collapse_16_64"]
    served = f" ({shown(summary['ceiling_pair'])})" if summary["ceiling_pair"] else ""
    lines += [
        "",
        _target_line(f"ours ≥ {TARGET_VS_BASELINE:g}× baseline at 16 users", targets["vs_baseline_at_16"], "×"),
        _target_line(
            f"ours ≥ {TARGET_VS_CEILING:g} of the served pair's ceiling{served} at saturation",
            targets["vs_ceiling_at_saturation"],
        ),
        _target_line(
            f"ours ≥ {TARGET_VS_CEILING:g} of the best pair's ceiling ({shown(summary['best_pair'])}) at saturation",
            targets["vs_best_ceiling_at_saturation"],
        ),
        *(
            [
                _target_line(
                    f"ours ≥ {TARGET_VS_CEILING:g} of the best batch-invariant pair's ceiling "
                    f"({shown(summary['best_invariant_pair'])}) at saturation",
                    targets["vs_best_invariant_ceiling_at_saturation"],
                )
            ]
            if targets["vs_best_invariant_ceiling_at_saturation"]
            else []
        ),
        _target_line(
            "same, per CPU-second (sentences per server CPU-second / per ceiling CPU-second; robust to a shared box)",
            targets["vs_ceiling_per_cpu_second"],
        ),
        _target_line(
            f"p50 at 1 user ≤ ceiling single{served} + {TARGET_LONE_USER_MS:g} ms (overhead)",
            targets["lone_user_overhead_ms"],
            " ms",
        ),
        "- no p99 collapse 16→64 users: "
        + (
            f"throughput held {collapse['throughput_64_over_16']:.2f}×, p99/p50 grew {collapse['tail_growth']:.2f}× "
            f"— {_met(collapse['met'])}"
            if collapse
            else "–"
        ),
    ]
    versus = summary["vs_torch_float32"]
    if versus:
        lines += [
            _target_line(
                f"lone-user p50 ≥ {TARGET_LONE_SPEEDUP:g}× lower with ours ({shown(versus['ours_pair'])}) than with "
                f"torch float32 (variant {versus['variant']})",
                versus["lone_p50_speedup"],
                "×",
            ),
            _target_line(f"throughput at 16 users not lower than {versus['variant']}'s", versus["throughput_16"], "×"),
            _target_line(f"throughput at 64 users not lower than {versus['variant']}'s", versus["throughput_64"], "×"),
        ]
    elif summary["vs_variants"]:
        lines.append("- lone-user p50 against torch float32: – (no variant's workers served torch/float32)")
    if summary["vs_variants"]:
        lines += [
            "",
            "Ours against each variant (p50 at 1 user: the variant's over ours; throughput: ours over the variant's):",
            "",
            "| variant | pair served | lone-user p50 | throughput at 16 users | throughput at 64 users |",
            "|---|---|---:|---:|---:|",
        ]
        for row in summary["vs_variants"]:
            lines.append(
                f"| {row['variant']} | {shown(row['pair'])} | {_num(row['lone_p50_speedup'], 2)}× | "
                f"{_num(row['throughput_16'], 2)}× | {_num(row['throughput_64'], 2)}× |"
            )
    lines += plans_markdown(case)
    variants = {k: v for k, v in case["runs"].items() if k not in ("ours", "baseline")}
    if variants:
        users = [lv["users"] for lv in ours] or sorted({lv["users"] for v in variants.values() for lv in v})
        lines += [
            "",
            "Variants of ours: sent/s (p50/p99 ms) [sentences per server CPU-second]; "
            "saturation against the ceiling of the pair each served:",
            "",
            "| variant | settings | pair served | "
            + " | ".join(f"{u} users" for u in users)
            + " | vs its pair's ceiling |",
            "|---|---|---|" + "---:|" * (len(users) + 1),
        ]
        for name, levels in {"ours": ours, **variants}.items():
            cells = []
            for u in users:
                lv = _level(levels, u)
                cells.append(
                    f"{lv['throughput']:.1f} ({lv['p50_ms']:.0f}/{lv['p99_ms']:.0f}) [{_num(lv.get('per_core'))}]"
                    if lv
                    else "–"
                )
            settings = case.get("variant_settings", {}).get(name, "as model-config.yaml")
            mode = summary["modes"].get(name) or {}
            pair = shown(mode.get("pair")) + (" row by row" if mode.get("rowwise") else "")
            lines.append(
                f"| {name} | {settings} | {pair} | "
                + " | ".join(cells)
                + f" | {_num(mode.get('vs_pair_ceiling'), 2)} |"
            )
    return "\n".join(lines)


def _invariance_cell(entry: dict | None, which: str) -> str:
    """``entity / score changes of N`` for one comparison kind of one pair, both sides where measured twice."""
    if not entry:
        return "–"

    def cell(run: dict) -> str:
        found = next((c for c in run["comparisons"] if c["name"].startswith(which)), None)
        return f"{found['entity_changes']} / {found['score_changes']}" if found else "–"

    text = f"{cell(entry['batched'])} of {entry['texts']}"
    if "served" in entry:
        text += f" batched; {cell(entry['served'])} row by row"
    return text


def _at_batch(ceiling: dict, size: int) -> float | None:
    """The ceiling's best sentences/s at batch size ``size`` over the thread counts tried."""
    found = [v for k, v in ceiling.get("throughput", {}).items() if k.endswith(f" B{size}")]
    return max(found) if found else None


def ceiling_markdown(case: dict, summary: dict) -> list[str]:
    """Every pair's ceiling side by side (single p50, B=32, best throughput), its invariance, who served it."""
    ceilings = ceilings_of(case)
    if not ceilings:
        return []
    invariance = case.get("invariance") or {}
    served_by: dict[str, list[str]] = {}
    for name, mode in summary["modes"].items():
        if mode["pair"]:
            served_by.setdefault(mode["pair"], []).append(name)
    first = next(iter(ceilings.values()))
    lines = [
        "",
        f"Ceilings (raw forward in process, {first.get('texts', '?')} texts, {first.get('tokens_mean', '?')} "
        "tokens/text mean; best pair first). Invariance: texts whose entities / scores (4 decimals) changed "
        "against each text alone, in process, in client batches of 32 with random neighbours and streamed:",
        "",
        "| pair | single p50 / p90 ms | B=32 sent/s | best sent/s (threads, B) | sent per CPU-s "
        "| invariance: client batches | invariance: streamed | served by |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for name, c in ceilings.items():
        lines.append(
            f"| {shown(name)} | {c['single_ms_p50']:.1f} / {c['single_ms_p90']:.1f} | {_num(_at_batch(c, 32))} | "
            f"{c['best_throughput']:.1f} (t{c['threads']}, B{c['best_batch']}) | {_num(c.get('best_per_core'))} | "
            f"{_invariance_cell(invariance.get(name), 'client batches')} | "
            f"{_invariance_cell(invariance.get(name), 'streamed')} | {', '.join(served_by.get(name, [])) or '–'} |"
        )
    against = ceilings.get(summary["ceiling_pair"]) or first
    sweep = ", ".join(f"{k}: {v:.1f}" for k, v in against["throughput"].items())
    lines += [
        "",
        f"Ceiling of {shown(against['dtype'])}: best {against['best_throughput']:.1f} sent/s with {against['threads']} "
        f"threads at B={against['best_batch']} ({sweep}); single request p50 {against['single_ms_p50']:.1f} ms, "
        f"p90 {against['single_ms_p90']:.1f} ms ({against.get('single_threads', '?')} threads).",
    ]
    return lines


def plans_markdown(case: dict) -> list[str]:
    """What each mode's workers resolved (``plan:`` log line): the choice ``auto`` made and why."""
    plans = case.get("plans") or {}
    if not plans:
        return []
    lines = ["", "Served plans (each mode's workers' `plan:` line in the model log):", ""]
    for name, plan in plans.items():
        agree = "" if plan.get("workers_agree", True) else " (workers disagree: see the model log)"
        lines.append(f"- {name}: `{plan['line']}`{agree}")
    return lines


def markdown(results: dict) -> str:
    """The whole results.md: machine, texts, one section per case, notes."""
    m = results["machine"]
    lines = [
        f"## Benchmark {results['timestamp']}{' (QUICK)' if results.get('quick') else ''}",
        "",
        f"Machine: {m.get('cores')} cores, {m.get('cpu')} (torch capability {m.get('torch_cpu_capability')}, "
        f"flags {' '.join(m.get('cpu_flags', [])) or 'none listed'}), {m.get('memory_gib')} GiB; "
        f"torch {m.get('torch')}, transformers {m.get('transformers')}, TorchServe {m.get('torchserve')}, "
        f"Python {m.get('python')}; load average at start {m.get('loadavg_1m')}.",
        f"Texts: {results['texts']}. Each level: {results['settings']['warmup']} s warm-up, "
        f"{results['settings']['seconds']} s measured, closed loop, one sentence per request (REST text/plain).",
        "",
    ]
    if results.get("chart"):
        lines += [f"![throughput and latency against users]({results['chart']})", ""]
    for case in results["cases"]:
        lines += [case_markdown(case), ""]
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"
