"""Accuracy gate of a runtime/format pair: dev entity F1 of the torch fp32 pipeline vs. the same pipeline on that pair.

    python -m bench.parity --model models/ja-ner-small --dtype int8 --record
    python -m bench.parity --model models/ja-ner-small --dtype bfloat16 --record
    python -m bench.parity --model models/ja-ner-small --runtime onnxruntime --record

Scores come from the model helper's eval code (``training.evaluate.evaluate``: exact character
spans and types, micro-averaged) on the dev split, with the core pipeline in process, as
``make eval`` runs it; only the second pipeline's ``dtype`` or ``runtime`` differs (int8:
``ja_ner.forward``'s dynamic int8 Linear layers, head in float; onnxruntime: the graph exported by
``ja_ner.forward.export_onnx``). The gate passes when F1 drops by at most 0.5 points. ``--record``
writes the result into the model's config.json (``ner_format_gates``, keyed ``int8``, ``bfloat16``,
``onnxruntime/float32``), where ``ja_ner.plan`` reads it: the gate is measured, never assumed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

MAX_F1_DROP = 0.005  # 0.5 points


def predictor(model_dir: Path, *, dtype: str, threads: int, runtime: str = "torch"):
    """A ``training.evaluate`` predictor over a pipeline in number format ``dtype`` on ``runtime``.

    For ONNX Runtime the model is served from a folder of links to it plus its exported graph.
    """
    import tempfile

    from ja_ner.forward import linked_with_onnx
    from ja_ner.pipeline import Pipeline
    from ja_ner.plan import ONNX_FILE
    from ja_ner.settings import Settings
    from training.evaluate import predictor_of

    if runtime == "onnxruntime" and not (model_dir / ONNX_FILE).is_file():
        model_dir = linked_with_onnx(model_dir, Path(tempfile.mkdtemp(prefix="parity-")) / "model")
    return predictor_of(Pipeline.load(model_dir, Settings(dtype=dtype, threads=threads, runtime=runtime)))


def record(model_dir: Path, result: dict) -> None:
    """Store the gate result under config.json ``ner_format_gates[<format>]`` (other keys kept as they are)."""
    path = model_dir / "config.json"
    config = json.loads(path.read_text())
    gates = config.setdefault("ner_format_gates", {})
    gates[result["lever"]] = {
        "passed": result["kept"],
        "f1_fp32": result["f1_fp32"],
        "f1": result["f1_lever"],
        "f1_drop_points": result["f1_drop_points"],
        "max_drop_points": MAX_F1_DROP * 100,
        "sentences_differing": result["sentences_differing"],
        "data": result["data"],
        "measured": time.strftime("%Y-%m-%d", time.gmtime()),
        "command": f"python -m bench.parity --model {model_dir} {result['flags']} --record",
    }
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> dict:
    from training.data import DATA_DIR, load_jsonl
    from training.evaluate import disagreements, evaluate, format_report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/ja-ner-small"))
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16", "int8"))
    parser.add_argument("--runtime", default="torch", choices=("torch", "onnxruntime"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--record", action="store_true", help="store the result in the model's config.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    dev = DATA_DIR / "dev.jsonl"
    if not dev.is_file():
        raise SystemExit(f"{dev}: no dev split; run `make data` or set JA_NER_DATA")
    examples = load_jsonl(dev)
    if (args.runtime, args.dtype) == ("torch", "float32"):
        raise SystemExit("torch float32 is the reference; name another --dtype or --runtime")
    lever = args.dtype if args.runtime == "torch" else f"{args.runtime}/{args.dtype}"
    runs = {}
    for name, runtime, dtype in (("fp32", "torch", "float32"), (lever, args.runtime, args.dtype)):
        run = predictor(args.model, dtype=dtype, threads=args.threads, runtime=runtime)
        scores, pred, seconds = evaluate(examples, run)
        print(format_report(name, scores, examples, pred, seconds))
        runs[name] = (scores, pred, seconds)
    (base, base_pred, base_s), (other, other_pred, other_s) = runs.values()
    drop = base.micro.f1 - other.micro.f1
    result = {
        "model": str(args.model),
        "lever": lever,
        "flags": f"--dtype {args.dtype}" + (f" --runtime {args.runtime}" if args.runtime != "torch" else ""),
        "f1_fp32": round(base.micro.f1, 4),
        "f1_lever": round(other.micro.f1, 4),
        "f1_drop_points": round(drop * 100, 2),
        "sentences_differing": len(disagreements(base_pred, other_pred)),
        "seconds_fp32": round(base_s, 1),
        "seconds_lever": round(other_s, 1),
        "kept": drop <= MAX_F1_DROP,
        "data": f"{dev.name} ({len(examples)} sentences)",
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.record:
        record(args.model, result)
    return result


if __name__ == "__main__":
    main()
