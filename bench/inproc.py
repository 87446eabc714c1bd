"""In-process lever measurements: the pipeline the handler runs, with no TorchServe around it.

    python -m bench.inproc [--model DIR | --case default|base] [--rounds 3] [--device cpu|cuda:0]

For each configuration it times, on the same texts, interleaved round by round (so a drift
in the machine's load hits every configuration alike):

- ``single``: ``Pipeline.predict([doc])`` per text (what one lone request costs the worker) and the
  raw forward of the same tokens (batch of one); their difference is the per-request Python cost;
- ``batch``: ``Pipeline.predict`` over groups of ``--batch`` documents (a TorchServe batch) and the
  raw forward of the same groups, sorted and padded alike; plus the pipeline's per-stage seconds.

Configurations change only settings (dtype incl. ``int8``, threads, token budget) or, for the
old every-Linear int8 (kept to show why it was dropped), quantise a copy of the loaded model in
place: no project code is edited to measure a lever.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger("bench.inproc")


@dataclass(frozen=True)
class Config:
    """One lever setting: pipeline settings plus an optional in-place model transform."""

    name: str
    settings: dict
    int8: bool = False


DEFAULT_CONFIGS = (
    Config("auto (model-config.yaml default), 1 thread", {"token_budget": 512, "threads": 1}),
    Config("fp32, all cores", {"dtype": "float32"}),
    Config("fp32, 1 thread", {"dtype": "float32", "threads": 1, "token_budget": 512}),
    Config("bf16, 1 thread", {"dtype": "bfloat16", "threads": 1, "token_budget": 512}),
    Config("int8 (attention), 1 thread", {"dtype": "int8", "threads": 1, "token_budget": 512}),
    Config("int8 every Linear, 1 thread", {"dtype": "float32", "threads": 1, "token_budget": 512}, int8=True),
    Config("fp32, token_budget=1024, 1 thread", {"dtype": "float32", "token_budget": 1024, "threads": 1}),
)


def _load(model_dir: Path, config: Config, device: str):
    import torch

    from ja_ner.pipeline import Pipeline
    from ja_ner.settings import Settings

    settings = replace(Settings.from_mapping(config.settings), device=device)
    pipeline = Pipeline.load(model_dir, settings)
    if config.int8:
        pipeline.forward.model = torch.ao.quantization.quantize_dynamic(
            pipeline.forward.model, {torch.nn.Linear}, dtype=torch.qint8
        )
    return pipeline


def _raw(pipeline, ids: list[list[int]]) -> None:
    """The model alone on rows of ids padded to the longest (what the ceiling measures)."""
    from ja_ner.batch import from_rows

    pipeline.forward(from_rows(ids, pipeline.special.pad))


def measure(
    model_dir: Path,
    texts: list[str],
    configs: tuple[Config, ...],
    *,
    rounds: int,
    batch: int,
    singles: int,
    device: str = "cpu",
) -> dict:
    """Median over ``rounds`` of each configuration's single and batch figures (see module doc)."""
    import torch

    from ja_ner.types import Document

    default_threads = torch.get_num_threads()
    pipelines = {c.name: _load(model_dir, c, device) for c in configs}
    tokenizer = next(iter(pipelines.values())).tokenizer
    docs = [Document(t) for t in texts]
    ids = tokenizer(texts, truncation=True, max_length=256)["input_ids"]
    # groups in arrival order, as TorchServe hands a batch over (the pipeline sorts inside it)
    groups = [list(range(i, min(i + batch, len(texts)))) for i in range(0, len(texts), batch)]
    step = max(1, len(texts) // singles)
    single_idx = list(range(0, len(texts), step))[:singles]
    samples: dict[str, dict[str, list[float]]] = {c.name: {} for c in configs}
    stages: dict[str, dict[str, float]] = {c.name: {} for c in configs}
    for r in range(rounds):
        for config in configs:
            torch.set_num_threads(config.settings.get("threads") or default_threads)
            p = pipelines[config.name]
            p.predict(docs[:4])  # warm
            lat, raw = [], []
            for i in single_idx:
                t = time.perf_counter()
                p.predict([docs[i]])
                lat.append(time.perf_counter() - t)
                t = time.perf_counter()
                _raw(p, [ids[i]])
                raw.append(time.perf_counter() - t)
            t, cpu = time.perf_counter(), time.process_time()
            for g in groups:
                _, times = p.predict_timed([docs[i] for i in g])
                for stage, seconds in times.seconds.items():
                    stages[config.name][stage] = stages[config.name].get(stage, 0.0) + seconds
            pipe_tp = len(texts) / (time.perf_counter() - t)
            pipe_per_cpu = len(texts) / max(time.process_time() - cpu, 1e-9)
            t = time.perf_counter()
            for g in groups:
                _raw(p, sorted((ids[i] for i in g), key=len))
            raw_tp = len(texts) / (time.perf_counter() - t)
            s = samples[config.name]
            for key, value in (
                ("single_ms", statistics.median(lat) * 1000),
                ("raw_single_ms", statistics.median(raw) * 1000),
                ("batch_sent_s", pipe_tp),
                ("batch_sent_per_cpu_s", pipe_per_cpu),
                ("raw_batch_sent_s", raw_tp),
            ):
                s.setdefault(key, []).append(value)
            log.info("round %d %s: %s", r, config.name, {k: round(v[-1], 1) for k, v in s.items()})
    torch.set_num_threads(default_threads)
    out = {}
    for config in configs:
        med = {k: round(statistics.median(v), 2) for k, v in samples[config.name].items()}
        med["overhead_single_ms"] = round(med["single_ms"] - med["raw_single_ms"], 2)
        med["batch_vs_raw"] = round(med["batch_sent_s"] / med["raw_batch_sent_s"], 2)
        total = sum(stages[config.name].values())
        med["stage_share"] = {k: round(v / total, 3) for k, v in stages[config.name].items()}
        out[config.name] = med
    return out


def markdown(results: dict, context: str) -> str:
    lines = [
        context,
        "",
        "| config | single p50 ms | raw single ms | per-request overhead ms | batch sent/s | raw batch sent/s "
        "| pipeline/raw | batch sent per CPU-s | forward share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['single_ms']:.1f} | {r['raw_single_ms']:.1f} | {r['overhead_single_ms']:.1f} | "
            f"{r['batch_sent_s']:.1f} | {r['raw_batch_sent_s']:.1f} | {r['batch_vs_raw']:.2f} | "
            f"{r['batch_sent_per_cpu_s']:.1f} | "
            f"{r['stage_share'].get('forward', 0):.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    from bench.models import resolve_case
    from bench.report import machine
    from bench.texts import load_texts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--case", default="default")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="documents per predict (a TorchServe batch)")
    parser.add_argument("--singles", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", help="|-separated parts of config names, e.g. 'fp32|int8' (default: all)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    model_dir = args.model or resolve_case(args.case).model_dir
    texts, source = load_texts(args.texts)
    wanted = args.only.split("|") if args.only else [""]
    configs = tuple(c for c in DEFAULT_CONFIGS if any(w in c.name for w in wanted))
    if args.device != "cpu":
        cpu_only = [c for c in configs if c.int8 or c.settings.get("dtype") == "int8"]
        configs = tuple(c for c in configs if c not in cpu_only) + (Config("fp16", {"dtype": "float16"}),)
    results = measure(
        model_dir, texts, configs, rounds=args.rounds, batch=args.batch, singles=args.singles, device=args.device
    )
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    info = machine()
    context = (
        f"In-process levers, {model_dir.name} on {args.device} ({info['cores']} cores, {info['cpu']}), "
        f"{source}, batch {args.batch}, median of {args.rounds} interleaved rounds."
    )
    text = markdown(results, context)
    out = args.out / f"{stamp}-inproc"
    out.mkdir(parents=True, exist_ok=True)
    (out / "inproc.json").write_text(
        json.dumps({"machine": info, "model": str(model_dir), "results": results}, indent=2) + "\n"
    )
    (out / "inproc.md").write_text(text)
    print(text)
    return results


if __name__ == "__main__":
    main()
