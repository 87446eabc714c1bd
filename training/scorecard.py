"""The scores committed with a model: dev, the held-out test split and the challenge set, in one file.

Loads the model once with the core pipeline (as ``training.evaluate`` does), scores the dev split, the test
split (``training.data.load_split``) and the challenge set per class (``training.challenge``), and writes
``eval_scores.json`` into the model folder. ``test_is_held_out`` comes from the model's
``training_summary.json`` (``test_split_excluded``, written by ``training.train`` and ``training.average``):
a model trained before the split existed has seen the test sentences, and the file says so.
``dev_is_held_out`` likewise (``dev_trained_on``): the shipped model trains on dev too (``make train``).
``tests/unit/test_challenge.py`` keeps every challenge class of the committed model within a few points
of this file.

Usage: ``python -m training.scorecard [--model models/ja-ner-small] [--out FILE] [--threads N]``
(needs the data: ``JA_NER_DATA`` or ``../shared/data/stockmark-ner``)
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ja_ner.settings import Settings
from training import challenge
from training.checkpoint import summary_of
from training.data import DATA_DIR, load_split
from training.evaluate import REFERENCE_DTYPE, evaluate, pipeline_predictor

logger = logging.getLogger(__name__)

FILE_NAME = "eval_scores.json"
COMMANDS = {
    "dev": "make eval",
    "test": "make eval SPLIT=test",
    "challenge": "make eval-challenge",
    "this file": "make eval-scores",
}


def held_out(model_dir: Path) -> bool:
    """Whether the model's training summary says no stage or checkpoint saw the test split (missing: no)."""
    return summary_of(model_dir).get("test_split_excluded") is True


def dev_held_out(model_dir: Path) -> bool:
    """Whether no stage or checkpoint trained on dev (``--with-dev``; a summary without the flag predates it)."""
    return summary_of(model_dir).get("dev_trained_on") is not True


def scorecard(model_dir: Path, *, threads: int = 0, data_dir: Path = DATA_DIR) -> dict:
    """Dev, test and challenge scores of ``model_dir`` as served (the core pipeline in process)."""
    predict = pipeline_predictor(model_dir, threads=threads)
    out: dict = {
        "model": str(model_dir),
        "engine": "ja_ner.pipeline.Pipeline in process, default settings, the model's own min_score (as served)",
        "dtype": REFERENCE_DTYPE,
        "decoding": Settings().decoding,
        "commands": COMMANDS,
        "test_is_held_out": held_out(model_dir),
    }
    out["dev_is_held_out"] = dev_held_out(model_dir)
    if not out["dev_is_held_out"]:
        out["dev_note"] = (
            "the model was trained on dev (make train: train + dev with a recipe fixed beforehand): its dev "
            "figure is not a held-out score; the selection run's (make train-select) is"
        )
    if not out["test_is_held_out"]:
        out["test_note"] = (
            "the model was trained without excluding the test split (it has seen those sentences): "
            "its test figure is not a held-out score"
        )
    for split in ("dev", "test"):
        examples = load_split(split, data_dir)
        scores, _, seconds = evaluate(examples, predict)
        out[split] = {"sentences": len(examples), **scores.as_dict()}
        logger.info("%s: %d sentences, micro F1 %.4f (%.0fs)", split, len(examples), scores.micro.f1, seconds)
    items = challenge.load()
    by_class, _ = challenge.evaluate_challenge(items, predict)
    out["challenge"] = challenge.report_dict(by_class, items)
    logger.info("challenge: overall F1 %.4f", by_class[challenge.OVERALL].micro.f1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/ja-ner-small"))
    parser.add_argument("--out", type=Path, default=None, help=f"default: <model>/{FILE_NAME}")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    card = scorecard(args.model, threads=args.threads)
    out = args.out or args.model / FILE_NAME
    out.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
