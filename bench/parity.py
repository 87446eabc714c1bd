"""Accuracy parity of a speed lever: dev entity F1 of the fp32 pipeline vs. the same pipeline changed.

    python -m bench.parity --model models/ja-ner-small --int8
    python -m bench.parity --model models/ja-ner-small --dtype bfloat16

Scores come from the model helper's eval code (``training.evaluate.evaluate``: exact character
spans and types, micro-averaged) on the dev split, with the core pipeline in process, as
``make eval`` runs it; the lever is applied to a second pipeline only (settings, or int8 dynamic
quantisation of its Linear layers). A lever is kept only if F1 stays within 0.5 points.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

MAX_F1_DROP = 0.005  # 0.5 points


def predictor(model_dir: Path, *, dtype: str, int8: bool, threads: int):
    """A ``training.evaluate`` predictor over a pipeline with the given lever applied."""
    import torch

    from ja_ner.pipeline import Pipeline
    from ja_ner.settings import Settings
    from training.evaluate import predictor_of

    pipe = Pipeline.load(model_dir, Settings(dtype=dtype, threads=threads))
    if int8:
        pipe.forward.model = torch.ao.quantization.quantize_dynamic(
            pipe.forward.model, {torch.nn.Linear}, dtype=torch.qint8
        )

    return predictor_of(pipe)


def main(argv: list[str] | None = None) -> dict:
    from training.data import DATA_DIR, load_jsonl
    from training.evaluate import disagreements, evaluate, format_report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/ja-ner-small"))
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    examples = load_jsonl(DATA_DIR / "dev.jsonl")
    lever = f"{args.dtype}{' + int8 dynamic' if args.int8 else ''}"
    runs = {}
    for name, kwargs in (
        ("fp32", {"dtype": "float32", "int8": False}),
        (lever, {"dtype": args.dtype, "int8": args.int8}),
    ):
        scores, pred, seconds = evaluate(examples, predictor(args.model, threads=args.threads, **kwargs))
        print(format_report(name, scores, examples, pred, seconds))
        runs[name] = (scores, pred, seconds)
    (base, base_pred, base_s), (other, other_pred, other_s) = runs.values()
    drop = base.micro.f1 - other.micro.f1
    result = {
        "model": str(args.model),
        "lever": lever,
        "f1_fp32": round(base.micro.f1, 4),
        "f1_lever": round(other.micro.f1, 4),
        "f1_drop_points": round(drop * 100, 2),
        "sentences_differing": len(disagreements(base_pred, other_pred)),
        "seconds_fp32": round(base_s, 1),
        "seconds_lever": round(other_s, 1),
        "kept": drop <= MAX_F1_DROP,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
