"""The worst accepted input, timed in process: where ``max_chars`` and ``max_request_chars`` come from.

    python -m bench.longtext                          # committed settings, every format auto may pick
    python -m bench.longtext --dtype float32 --threads 1

The worst input per character is a document of short sentences (many windows, many entities):
it is built to ``max_request_chars`` characters (one request's worth; model-config.yaml) and
answered by ``Pipeline.predict`` with one torch thread, as one auto worker runs it. In the
slowest format measured (float32: what auto picks for a model without gates on a CPU without
native bf16) such a request must take at most ``responseTimeout / SAFETY``: the script reports
the timeout that needs (``SAFETY × seconds``) and the character limit the committed timeout
allows (``chars_per_s × responseTimeout / SAFETY``); docs/performance.md, "Long texts".
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SAFETY = 4.0  # the worst request may use a quarter of responseTimeout (a loaded box runs it 2-3x slower)
SENTENCE = "鈴木は東京に行った。"  # 10 characters, two entities


def worst_text(chars: int) -> str:
    """``chars`` characters of short sentences, each with a person and a place."""
    return (SENTENCE * (chars // len(SENTENCE) + 1))[:chars]


def measure(model_dir: Path, chars: int, *, dtype: str, threads: int, token_budget: int) -> dict:
    """Seconds and characters/s of one ``chars``-long worst document (after a warm-up call)."""
    from ja_ner.pipeline import Pipeline
    from ja_ner.settings import Settings
    from ja_ner.types import Document

    pipeline = Pipeline.load(model_dir, Settings(dtype=dtype, threads=threads, token_budget=token_budget))
    pipeline.predict([Document(worst_text(200))])
    text = worst_text(chars)
    t0, cpu0 = time.perf_counter(), time.process_time()
    (outcome,), times = pipeline.predict_timed([Document(text)])
    seconds = time.perf_counter() - t0
    return {
        "dtype": pipeline.plan.dtype,
        "threads": threads,
        "chars": chars,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "chars_per_s": round(chars / seconds),
        "entities": len(outcome.entities),
        "stage_seconds": {k: round(v, 2) for k, v in times.seconds.items()},
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "ja-ner-small")
    parser.add_argument("--config", type=Path, default=REPO / "model-config.yaml")
    parser.add_argument("--dtype", help="comma-separated formats (default: auto's choice here, and float32)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = yaml.safe_load(args.config.read_text())
    handler = config.get("handler") or {}
    chars = int(handler["max_request_chars"])
    timeout = float(config["responseTimeout"])
    runs = [
        measure(args.model, chars, dtype=d, threads=args.threads, token_budget=int(handler.get("token_budget", 512)))
        for d in (args.dtype or "auto,float32").split(",")
    ]
    slowest = min(runs, key=lambda r: r["chars_per_s"])
    result = {
        "max_chars": int(handler["max_chars"]),
        "max_request_chars": chars,
        "response_timeout_s": timeout,
        "safety": SAFETY,
        "runs": runs,
        "slowest": slowest["dtype"],
        "timeout_needed_s": math.ceil(SAFETY * slowest["seconds"] / 30) * 30,  # rounded up to 30 s
        "chars_allowed_at_timeout": int(slowest["chars_per_s"] * timeout / SAFETY),
        "worst_share_of_timeout": round(slowest["seconds"] / timeout, 2),
    }
    result["committed_ok"] = result["timeout_needed_s"] <= timeout
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


if __name__ == "__main__":
    main()
