"""``make bench``: ours, the baseline and the ceiling on the same texts and machine, in one run.

    python -m bench.run                      # both cases, 1/4/16/64 users, 20 s per level
    python -m bench.run --quick              # default case, 1/16/64 users, short levels
    python -m bench.run --variant bf16:handler.dtype=bfloat16 --variant b32:batchSize=32
    python -m bench.run --quick --variant torch:handler.runtime=torch
    python -m bench.run --render bench/results/<stamp>   # results.md/png again from results.json

Writes bench/results/<UTC timestamp>/results.json, results.md and results.png (the chart) and
prints the markdown. A variant is another archive of our handler with model-config.yaml overrides
(``key=value``; ``handler.key=value`` for the handler: section), served beside ours in the same
TorchServe. The ceiling and the batch-invariance check run in process, before the server starts,
for every runtime/format pair this machine and the model allow; each mode's ratios are then taken
against the ceiling of the pair it served, read from its workers' ``plan:`` line in the model log.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import re
import shutil
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench import archive, ceiling, chart, client, invariance, pyspy, report
from bench.models import resolve_case
from bench.texts import load_texts
from handler.handler import MODEL_SUBDIR

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
WORK = REPO / "build" / "bench" / "run"
NOISY_CORES = 0.25  # other processes using more than this many cores make a level's figures noisy

log = logging.getLogger("bench")


@dataclass(frozen=True)
class Mode:
    """One model registered in the benchmark's TorchServe."""

    name: str
    kind: str  # "ours" (handler/handler.py) or "baseline" (bench/baseline_handler.py)
    overrides: dict = field(default_factory=dict)
    describe: str = "as model-config.yaml"


def parse_variant(spec: str) -> Mode:
    """``name:key=value,handler.key=value`` -> a Mode of kind ours with build_mar overrides.

    Values are read as YAML scalars (``5`` is an int, ``bfloat16`` a string).

    Raises:
        ValueError: no name, or an item without ``=``.
    """
    name, _, items = spec.partition(":")
    if not name or not name.replace("_", "").isalnum() or name in ("ours", "baseline"):
        raise ValueError(f"variant {spec!r}: needs a name of letters, digits or _ (not ours/baseline)")
    overrides: dict = {}
    for item in filter(None, items.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"variant {spec!r}: {item!r} is not key=value")
        parsed = yaml.safe_load(value)
        if key.startswith("handler."):
            overrides.setdefault("handler", {})[key.removeprefix("handler.")] = parsed
        else:
            overrides[key] = parsed
    return Mode(name, "ours", overrides, items or "as model-config.yaml")


# A worker's "plan: ..." line as TorchServe's model log records it ("W-<port>-<model>_<version>-stdout").
_PLAN_LINE = re.compile(
    r"W-\d+-(?P<model>.+)_(?P<version>[^_\s]+)-std(?:out|err) MODEL_LOG - (?:[\w.]+: )?plan: (?P<plan>.+)$"
)
# The head of ``ja_ner.plan.Plan.describe()``: "<runtime>/<dtype> on <device>, <n> thread(s), <batching>, ...".
_PLAN_HEAD = re.compile(
    r"^(?P<runtime>\w+)/(?P<dtype>\w+) on (?P<device>\S+), (?P<threads>\d+) thread\(s\), (?P<batching>.+?), "
    r"batch_invariant=(?P<invariant>\w+): (?P<reason>.*)$"
)


def served_plans(model_log: str) -> dict[str, list[str]]:
    """Model name -> the distinct ``plan:`` lines its workers logged (in order), from a model log's text."""
    plans: dict[str, list[str]] = {}
    for line in model_log.splitlines():
        found = _PLAN_LINE.search(line)
        if found:
            seen = plans.setdefault(found["model"], [])
            if found["plan"] not in seen:
                seen.append(found["plan"])
    return plans


def parse_plan(line: str) -> dict | None:
    """One ``Plan.describe()`` line's parts: pair (bench name), device, threads, rowwise, reason; else None."""
    head = _PLAN_HEAD.match(line.strip())
    if not head:
        return None
    return {
        "pair": ceiling.pair_name(head["runtime"], head["dtype"]),
        "device": head["device"],
        "threads": int(head["threads"]),
        "rowwise": head["batching"] == "row by row",
        "batch_invariant": head["invariant"] == "true",
        "reason": head["reason"],
        "line": line.strip(),
    }


def _post(url: str, text: str) -> None:
    request = urllib.request.Request(url, data=text.encode(), headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()


def _server_pid(workdir: Path) -> int | None:
    pid_file = workdir / "tmp" / ".model_server.pid"
    return int(pid_file.read_text()) if pid_file.is_file() else None


def _worker_pids(mgmt_url: str, name: str) -> list[int]:
    with urllib.request.urlopen(f"{mgmt_url}/models/{name}", timeout=10) as response:
        described = json.loads(response.read())
    return [int(w["pid"]) for m in described for w in m.get("workers", []) if w.get("pid")]


def run_case(name: str, modes: list[Mode], texts: list[str], args: argparse.Namespace) -> dict:
    """Ceiling and invariance per pair in process, then every mode through one TorchServe, level by level."""
    from handler.server import start_on_free_ports, stop

    case = resolve_case(name)
    log.info("case %s: %s", name, case.description)
    built = {kind: archive.build(kind, case.model_dir) for kind in dict.fromkeys(m.kind for m in modes)}
    result: dict = {"case": name, "model": case.description, "model_dir": str(case.model_dir), "runs": {}}
    result["variant_settings"] = {m.name: m.describe for m in modes if m.kind == "ours"}
    # The archived model folder: the files the workers load, the exported ONNX graph among them.
    served_dir = built["ours"] / MODEL_SUBDIR if "ours" in built else case.model_dir
    formats = tuple(args.ceiling_dtype.split(",")) if args.ceiling_dtype else ceiling.formats_for(served_dir)
    if not args.skip_ceiling:
        log.info("ceiling: raw forward in process, pairs %s", ", ".join(formats))
        sizes = (32,) if args.quick else (8, 32, 64)
        measured = ceiling.measure_formats(
            served_dir,
            texts[: args.ceiling_texts],
            formats,
            batch_sizes=sizes,
            threads=(1, 0),
            single_texts=16 if args.quick else 48,
        )
        # The best format is the ceiling; every format's figures are kept beside it.
        result["ceiling"] = next(iter(measured.values())).to_json()
        result["ceilings"] = {fmt: m.to_json() for fmt, m in measured.items()}
        for fmt, m in measured.items():
            log.info("ceiling %s: %.1f sent/s, single p50 %.1f ms", fmt, m.best_throughput, m.single_ms_p50)
        gc.collect()
    if not args.skip_invariance:
        result["invariance"] = measure_invariance(served_dir, texts[: args.invariance_texts], formats)
        gc.collect()
    work = WORK / name
    store = work / "model_store"
    shutil.rmtree(store, ignore_errors=True)
    for mode in modes:
        archive.stage(built[mode.kind], store, mode.name, mode.overrides)
    load = ",".join(f"{m.name}={m.name}" for m in modes)
    server = start_on_free_ports({"load_models": load}, store, work / "server")
    try:
        server_pid = _server_pid(server.workdir)
        for mode in modes:
            for text in texts[:8]:
                _post(f"{server.rest_url}/predictions/{mode.name}", text)  # first-request costs out of the way
        result["plans"] = _plans_of(server.workdir / "logs" / "model_log.log", modes)
        # modes alternate within each level, so a drift in the machine's load hits them alike
        for users in args.users:
            for mode in modes:
                if args.quick and mode.kind == "baseline" and users > 16:
                    continue  # QUICK: the baseline's 64-user queue takes minutes to drain
                url = f"{server.rest_url}/predictions/{mode.name}"
                level = client.run_level(
                    url, texts, users, seconds=args.seconds, warmup=args.warmup, cpu_meter=client.CpuMeter(server_pid)
                )
                log.info(
                    "%s %s users=%d: %.1f sent/s p50 %.0f p99 %.0f ms (errors %d, cores %s)",
                    name,
                    mode.name,
                    users,
                    level.throughput,
                    level.p50_ms,
                    level.p99_ms,
                    level.errors,
                    level.cpu,
                )
                result["runs"].setdefault(mode.name, []).append(level.to_json())
        if args.profile:
            result["profile"] = _profile(server, texts, args, args.out / args.stamp / f"pyspy-{name}.txt")
    finally:
        stop(server)
    return result


def _plans_of(model_log: Path, modes: list[Mode]) -> dict[str, dict]:
    """Mode name -> the plan its workers logged (``parse_plan``, plus ``workers_agree``); ours' modes only."""
    found = served_plans(model_log.read_text(errors="replace")) if model_log.is_file() else {}
    plans = {}
    for mode in modes:
        lines = found.get(mode.name, [])
        parsed = [p for p in map(parse_plan, lines) if p]
        if mode.kind != "ours":
            continue
        if not parsed:
            log.warning("%s: no plan line in %s; its ratios use no served pair", mode.name, model_log)
            continue
        plans[mode.name] = parsed[-1] | {"workers_agree": len({p["pair"] for p in parsed}) == 1}
        log.info("%s serves %s", mode.name, parsed[-1]["line"])
    return plans


def measure_invariance(model_dir: Path, texts: list[str], pairs: tuple[str, ...]) -> dict[str, dict]:
    """Per pair, ``bench.invariance.in_process`` batched as the ceiling runs it (``batch_invariant: false``).

    A pair whose batches moved answers is measured again as ``batch_invariant: true`` serves it
    (row by row), so the report shows both sides of the trade.
    """
    out: dict[str, dict] = {}
    for name in pairs:
        runtime, dtype = ceiling.parse_pair(name)
        entry: dict = {"texts": len(texts)}
        for key, invariant in (("batched", "false"), ("served", "true")):
            settings = {"runtime": runtime, "dtype": dtype, "batch_invariant": invariant}
            log.info("invariance %s, batch_invariant %s: %d texts", name, invariant, len(texts))
            entry[key] = invariance.in_process(texts, settings, batch=32, seed=0, model_dir=model_dir)
            gc.collect()
            if all(c["invariant"] for c in entry[key]["comparisons"]):
                break  # invariant batched: batch_invariant true serves it the same way
        out[name] = entry
    return out


def _profile(server, texts: list[str], args: argparse.Namespace, out: Path) -> dict:
    """py-spy on ours' worker while 16 users load it."""
    import threading

    pids = _worker_pids(server.mgmt_url, "ours")
    out.parent.mkdir(parents=True, exist_ok=True)
    url = f"{server.rest_url}/predictions/ours"
    load = threading.Thread(
        target=client.run_level, args=(url, texts, 16), kwargs={"seconds": args.profile + 2, "warmup": 1.0}, daemon=True
    )
    load.start()
    time.sleep(1.5)
    try:
        pyspy.record(pids[0], args.profile, out)
    except Exception as exc:  # py-spy missing or not permitted: the bench still reports
        log.warning("py-spy failed: %s", exc)
        load.join()
        return {"error": str(exc)}
    load.join()
    summary = pyspy.summarise(out.read_text())
    summary["file"] = str(out)
    log.info("profile: %s", summary["buckets"])
    return summary


def write(results: dict, out: Path) -> str:
    """Add summaries and notes, write results.json, results.md and results.png into ``out``; returns the markdown."""
    results["summaries"] = {c["case"]: report.summarise(c) for c in results["cases"]}
    noisy = [
        lv["other_cores"]
        for c in results["cases"]
        for levels in c["runs"].values()
        for lv in levels
        if lv["other_cores"] > NOISY_CORES
    ]
    results["notes"] = (
        [
            f"Other processes used more than {NOISY_CORES} cores during {len(noisy)} level(s) "
            f"(worst {max(noisy):.2f} cores): those wall-clock figures are low and noisy; "
            "compare sentences per server CPU-second instead."
        ]
        if noisy
        else []
    )
    results["chart"] = "results.png"  # beside results.md, which links it
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    text = report.markdown(results)
    (out / "results.md").write_text(text)
    chart.draw(results, out / "results.png")
    return text


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="default case only, short levels (< 3 min)")
    parser.add_argument("--cases", help="comma-separated: default, base (default: both; quick: default)")
    parser.add_argument("--users", help="comma-separated concurrency levels (default 1,4,16,64; quick 1,16,64)")
    parser.add_argument("--seconds", type=float, help="measured seconds per level (default 20; quick 5)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per level (default 3; quick 1.5)")
    parser.add_argument("--texts", type=Path, help="a .jsonl (text field) or .txt file; default: dev set")
    parser.add_argument("--ceiling-texts", type=int, help="texts for the ceiling (default 256; quick 128)")
    parser.add_argument(
        "--ceiling-dtype", help="comma-separated formats (default: every native, gated one here; best wins)"
    )
    parser.add_argument("--variant", action="append", default=[], help="name:key=value,... (repeatable)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--skip-invariance", action="store_true", help="no in-process invariance check per pair")
    parser.add_argument(
        "--invariance-texts", type=int, help="texts for the invariance check per pair (default: all; quick 128)"
    )
    parser.add_argument("--profile", type=float, default=0, help="py-spy ours' worker for this many seconds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--render",
        type=Path,
        metavar="DIR",
        help="measure nothing: rewrite DIR's results.md and results.png from its results.json",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if args.render:
        results = json.loads((args.render / "results.json").read_text())
        print(write(results, args.render))
        return results
    args.users = [int(u) for u in (args.users or ("1,16,64" if args.quick else "1,4,16,64")).split(",")]
    args.seconds = args.seconds or (5.0 if args.quick else 20.0)
    args.warmup = args.warmup or (1.5 if args.quick else 3.0)
    args.ceiling_texts = args.ceiling_texts or (128 if args.quick else 256)
    args.invariance_texts = args.invariance_texts or (128 if args.quick else None)
    cases = (args.cases or ("default" if args.quick else "default,base")).split(",")
    args.stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    texts, source = load_texts(source=args.texts)
    modes = [Mode("ours", "ours")]
    if not args.skip_baseline:
        modes.append(Mode("baseline", "baseline", describe="batchSize 1, pad to 150, argmax"))
    modes += [parse_variant(spec) for spec in args.variant]
    results = {
        "timestamp": args.stamp,
        "quick": args.quick,
        "machine": report.machine(),
        "texts": source,
        "settings": {"users": args.users, "seconds": args.seconds, "warmup": args.warmup},
        "cases": [],
    }
    out = args.out / args.stamp
    for name in cases:
        results["cases"].append(run_case(name, modes, texts, args))
        text = write(results, out)  # after every case, so a long run keeps what it measured
    print(text)
    print(f"written: {out / 'results.json'}, {out / 'results.md'}, {out / 'results.png'}")
    return results


if __name__ == "__main__":
    main()
