"""results.png beside results.md: throughput and latency against users, one row of two plots per case.

Left: sentences/s against concurrent users for ours, each variant and the baseline, with the
ceiling as horizontal lines (the best pair's, and the served pair's where it differs). Right: p50
(solid) and p99 (dashed) latency on a log scale. Drawn with matplotlib's object API on the Agg
canvas (no pyplot, no display, no global state); the series are pure functions of results.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench import report


@dataclass(frozen=True)
class Series:
    """One mode's figures per concurrency level, in users order."""

    name: str
    label: str
    users: tuple[int, ...]
    throughput: tuple[float, ...]  # sentences/s
    p50_ms: tuple[float, ...]
    p99_ms: tuple[float, ...]


@dataclass(frozen=True)
class CeilingLine:
    label: str
    throughput: float  # sentences/s


def series(case: dict) -> list[Series]:
    """Ours first, then the variants in run order, the baseline last; each labelled with the pair it served."""
    names = [n for n in case["runs"] if n not in ("ours", "baseline")]
    order = (["ours"] if "ours" in case["runs"] else []) + names + (["baseline"] if "baseline" in case["runs"] else [])
    out = []
    for name in order:
        levels = sorted(case["runs"][name], key=lambda lv: lv["users"])
        if not levels:
            continue
        pair = report.served_pair(case, name)
        label = f"{name} ({report.shown(pair)})" if pair else name
        out.append(
            Series(
                name=name,
                label=label,
                users=tuple(lv["users"] for lv in levels),
                throughput=tuple(lv["throughput"] for lv in levels),
                p50_ms=tuple(lv["p50_ms"] for lv in levels),
                p99_ms=tuple(lv["p99_ms"] for lv in levels),
            )
        )
    return out


def ceiling_lines(case: dict) -> list[CeilingLine]:
    """The best pair's ceiling, and the pair ours served where that is another one."""
    ceilings = report.ceilings_of(case)
    if not ceilings:
        return []
    best_name, best = next(iter(ceilings.items()))
    lines = [CeilingLine(f"ceiling {report.shown(best_name)} (best pair)", best["best_throughput"])]
    served = report.served_pair(case, "ours")
    if served and served != best_name and served in ceilings:
        lines.append(
            CeilingLine(f"ceiling {report.shown(served)} (served by ours)", ceilings[served]["best_throughput"])
        )
    return lines


def figure(results: dict):  # -> matplotlib.figure.Figure (imported here only: the bench imports this module)
    """The chart of every case in ``results``: one row per case, throughput left, latency right."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, ScalarFormatter

    cases = results["cases"]
    fig = Figure(figsize=(13, 4.8 * max(1, len(cases))), layout="constrained")
    FigureCanvasAgg(fig)
    m = results.get("machine", {})
    fig.suptitle(
        f"Benchmark {results.get('timestamp', '')}{' (QUICK)' if results.get('quick') else ''}: "
        f"{m.get('cores', '?')} cores, {m.get('cpu', '?')}, load average {m.get('loadavg_1m', '?')} at start",
        fontsize=11,
    )
    grid = fig.subplots(max(1, len(cases)), 2, squeeze=False)
    colours = [f"C{i}" for i in range(10)]
    for row, case in zip(grid, cases, strict=False):
        speed, latency = row
        drawn = series(case)
        users = sorted({u for s in drawn for u in s.users}) or [1]
        for i, s in enumerate(drawn):
            colour = "0.45" if s.name == "baseline" else colours[i % len(colours)]
            speed.plot(s.users, s.throughput, marker="o", color=colour, label=s.label)
            latency.plot(s.users, s.p50_ms, marker="o", color=colour, label=s.label)
            latency.plot(s.users, s.p99_ms, marker="^", linestyle="--", color=colour)  # same colour, dashed
        for j, line in enumerate(ceiling_lines(case)):
            speed.axhline(
                line.throughput,
                color="k",
                linestyle=(":" if j else "-."),
                linewidth=1.2,
                label=f"{line.label}: {line.throughput:.1f}",
            )
        speed.set_title(f"{case['case']}: throughput (closed loop, one sentence a request)", fontsize=10)
        speed.set_ylabel("sentences / s")
        speed.set_ylim(bottom=0)
        latency.set_title(f"{case['case']}: latency, p50 solid, p99 dashed", fontsize=10)
        latency.set_ylabel("ms (log scale)")
        latency.set_yscale("log")
        latency.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        latency.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 20, 50, 100, not 2×10¹
        latency.yaxis.set_minor_formatter(NullFormatter())
        for ax in (speed, latency):
            ax.set_xscale("log", base=2)
            ax.set_xticks(users)
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("concurrent users")
            ax.grid(True, which="major", alpha=0.3)
        if speed.get_legend_handles_labels()[0]:
            speed.legend(fontsize=8, loc="best")
        if drawn:
            latency.legend(fontsize=8, loc="upper left")
    return fig


def draw(results: dict, path: Path, *, dpi: int = 100) -> Path:
    """Write ``figure(results)`` to ``path`` as a PNG (13 × 4.8 inches per case at ``dpi``); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure(results).savefig(path, dpi=dpi)
    return path
