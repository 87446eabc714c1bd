"""Calibrate a trained model's entity score threshold on dev and record it in the model folder.

A small model proposes many low-confidence entities (spurious PRD, LOC, ORG on dev). Entities whose
score (mean probability of their type) falls below a threshold are dropped when served. The threshold
is picked on dev over a grid, on F1 smoothed over neighbouring grid points so a lone spike does not
win, and written to ``config.json`` as ``ner_min_score``: it belongs to these weights, and
``ja_ner.pipeline`` reads it unless the service or the request sets ``min_score`` itself.
The sweep is added to ``training_summary.json`` under ``calibration``.

``--fixed T`` writes a threshold chosen elsewhere: the shipped model trains on dev (``make train``), so
dev cannot choose its threshold; it takes the one the selection run (``make train-select``, same recipe
on the train split alone) calibrated on dev. The dev sweep is still recorded, marked as seen text.

Usage: ``python -m training.calibrate --model models/ja-ner-small``
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from training.data import DATA_DIR, TYPES, Example, Span, load_jsonl
from training.evaluate import pipeline_entities
from training.metrics import score

GRID = tuple(round(0.05 * i, 2) for i in range(0, 20))  # 0.00 .. 0.95


def scored_predictions(model_dir: Path, texts: Sequence[str], threads: int = 0) -> list[list[tuple[Span, float]]]:
    """Every entity the served pipeline finds with no threshold, with its score."""
    from ja_ner.pipeline import Pipeline
    from ja_ner.settings import Settings

    pipe = Pipeline.load(model_dir, Settings(min_score=0.0, threads=threads))
    return [[(Span(e.start, e.end, e.type), e.score) for e in ents] for ents in pipeline_entities(pipe, texts)]


def sweep(examples: Sequence[Example], predicted: list[list[tuple[Span, float]]], grid=GRID) -> list[dict]:
    """Micro P/R/F1 at each threshold of ``grid``."""
    gold = [ex.spans for ex in examples]
    rows = []
    for threshold in grid:
        kept = [[span for span, s in doc if s >= threshold] for doc in predicted]
        micro = score(gold, kept, TYPES).micro
        rows.append({"threshold": threshold, "precision": micro.precision, "recall": micro.recall, "f1": micro.f1})
    return rows


def choose(rows: list[dict]) -> dict:
    """The interior row whose F1, averaged with its two grid neighbours, is best (ties: the lower threshold).

    Edge rows are never chosen: their shorter window would favour them.
    """

    def smoothed(i: int) -> float:
        return sum(r["f1"] for r in rows[i - 1 : i + 2]) / 3

    if len(rows) < 3:
        return max(rows, key=lambda r: r["f1"])
    best = max(range(1, len(rows) - 1), key=lambda i: (round(smoothed(i), 6), -i))
    return rows[best]


def calibrate(model_dir: Path, examples: Sequence[Example], threads: int = 0, fixed: float | None = None) -> dict:
    """Sweep, choose (or take ``fixed``), and write ``ner_min_score`` (config.json) and the sweep
    (training_summary.json)."""
    rows = sweep(examples, scored_predictions(model_dir, [ex.text for ex in examples], threads))
    if fixed is None:
        chosen = choose(rows)
    else:
        if not 0.0 <= fixed < 1.0:
            raise ValueError(f"a fixed threshold must be in [0, 1), not {fixed}")
        chosen = {"threshold": fixed, "fixed_beforehand": True, "dev_seen_in_training": True}
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["ner_min_score"] = chosen["threshold"]
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    summary_path = model_dir / "training_summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        summary["calibration"] = {"chosen": chosen, "sweep": rows}
        summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return {"chosen": chosen, "sweep": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/ja-ner-small"))
    parser.add_argument("--dev", type=Path, default=DATA_DIR / "dev.jsonl")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--fixed", type=float, default=None, help="write this threshold (chosen by a selection run)")
    args = parser.parse_args(argv)
    result = calibrate(args.model, load_jsonl(args.dev), args.threads, args.fixed)
    if args.fixed is not None:
        print("dev was seen in training: the sweep below is for the record, the threshold is fixed")
    for row in result["sweep"]:
        mark = "  <- chosen" if row is result["chosen"] else ""
        print(
            f"min_score {row['threshold']:.2f}  P {row['precision']:.4f} R {row['recall']:.4f} F1 {row['f1']:.4f}{mark}"
        )
    print(f"wrote ner_min_score={result['chosen']['threshold']} to {args.model / 'config.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
