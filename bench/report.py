"""Ratios, target checks and the markdown table of one benchmark run (pure functions of results.json)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

# The targets (benchmark figures, not test assertions).
TARGET_VS_BASELINE = 4.0  # ours / baseline throughput at 16 users, at least
TARGET_VS_CEILING = 0.75  # best ours throughput / best ceiling throughput, at least
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


def summarise(case: dict) -> dict[str, Any]:
    """Ratios per level and the four target checks of one case (None where a figure is missing)."""
    ours = case["runs"].get("ours", [])
    baseline = case["runs"].get("baseline", [])
    ceiling = case.get("ceiling") or {}  # the best format's (bench.ceiling.measure_formats)
    ceilings = list((case.get("ceilings") or {"": ceiling}).values())
    best_ceiling = ceiling.get("best_throughput")
    # the best the hardware does for one request / per CPU-second, in whichever native gated format
    single = min((c["single_ms_p50"] for c in ceilings if "single_ms_p50" in c), default=None)
    ceiling_per_core = max((c.get("best_per_core") or 0 for c in ceilings), default=0) or None
    ratios = []
    for level in ours:
        base = _level(baseline, level["users"])
        ratios.append(
            {
                "users": level["users"],
                "vs_baseline": _ratio(level["throughput"], base["throughput"] if base else None),
                "vs_ceiling": _ratio(level["throughput"], best_ceiling),
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
    vs_ceiling = _ratio(saturation, best_ceiling)
    best_per_core = max((lv.get("per_core") or 0 for lv in ours), default=0) or None
    vs_ceiling_per_core = _ratio(best_per_core, ceiling_per_core)
    return {
        "ratios": ratios,
        "targets": {
            "vs_baseline_at_16": _check(at16, TARGET_VS_BASELINE, higher=True),
            "vs_ceiling_at_saturation": _check(vs_ceiling, TARGET_VS_CEILING, higher=True),
            "vs_ceiling_per_cpu_second": _check(vs_ceiling_per_core, TARGET_VS_CEILING, higher=True),
            "lone_user_overhead_ms": _check(lone, TARGET_LONE_USER_MS, higher=False),
            "no_p99_collapse_16_64": collapse,
        },
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
        "| ours/baseline | ours/ceiling | sent per server CPU-s: ours / baseline "
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
    ceiling = case.get("ceiling")
    if ceiling:
        sweep = ", ".join(f"{k}: {v:.1f}" for k, v in ceiling["throughput"].items())
        lines += [
            "",
            f"Ceiling (raw forward in process, {ceiling['dtype']}, {ceiling['tokens_mean']} tokens/text "
            f"mean): best {ceiling['best_throughput']:.1f} sent/s with {ceiling['threads']} threads at "
            f"B={ceiling['best_batch']} ({sweep}); single request p50 {ceiling['single_ms_p50']:.1f} ms, "
            f"p90 {ceiling['single_ms_p90']:.1f} ms ({ceiling.get('single_threads', '?')} threads).",
        ]
        others = case.get("ceilings") or {}
        if len(others) > 1:
            tried = ", ".join(
                f"{name} {c['best_throughput']:.1f} sent/s (single p50 {c['single_ms_p50']:.1f} ms)"
                for name, c in others.items()
            )
            lines.append(f"Formats tried (native here, accuracy gate passed; best first): {tried}.")
    targets = summary["targets"]
    collapse = targets["no_p99_collapse_16_64"]
    lines += [
        "",
        _target_line(f"ours ≥ {TARGET_VS_BASELINE:g}× baseline at 16 users", targets["vs_baseline_at_16"], "×"),
        _target_line(f"ours ≥ {TARGET_VS_CEILING:g} of ceiling at saturation", targets["vs_ceiling_at_saturation"]),
        _target_line(
            "same, per CPU-second (sentences per server CPU-second / per ceiling CPU-second; robust to a shared box)",
            targets["vs_ceiling_per_cpu_second"],
        ),
        _target_line(
            f"p50 at 1 user ≤ ceiling single + {TARGET_LONE_USER_MS:g} ms (overhead)",
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
    variants = {k: v for k, v in case["runs"].items() if k not in ("ours", "baseline")}
    if variants:
        users = [lv["users"] for lv in ours] or sorted({lv["users"] for v in variants.values() for lv in v})
        lines += [
            "",
            "Variants of ours: sent/s (p50/p99 ms) [sentences per server CPU-second]:",
            "",
            "| variant | settings | " + " | ".join(f"{u} users" for u in users) + " |",
            "|---|---|" + "---:|" * len(users),
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
            lines.append(f"| {name} | {settings} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    for case in results["cases"]:
        lines += [case_markdown(case), ""]
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"
