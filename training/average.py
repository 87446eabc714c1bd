"""Average the weights of fine-tuned checkpoints of one run (a weight-space ensemble).

Checkpoints that share their starting point sit in one basin; their mean often generalises better than
each of them, at no cost at inference. All inputs must have the same architecture, labels and
vocabulary; the first folder's config and tokenizer are kept.

Usage: ``python -m training.average --out build/ja-ner-avg build/ja-ner-stage3 build/ja-ner-stage4``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.checkpoint import save_fp16, summary_of


def average(model_dirs: list[Path], out: Path) -> None:
    """Write the element-wise mean of the models' weights (fp16, like ``train``) to ``out``."""
    import torch
    from transformers import AutoModelForTokenClassification

    models = [AutoModelForTokenClassification.from_pretrained(d, dtype=torch.float32) for d in model_dirs]
    first = models[0]
    states = [m.state_dict() for m in models]
    if any(s.keys() != states[0].keys() for s in states) or any(
        m.config.id2label != first.config.id2label for m in models
    ):
        raise ValueError("checkpoints differ in architecture or labels")
    mean = {k: torch.stack([s[k].float() for s in states]).mean(0) for k in states[0]}
    first.load_state_dict(mean)
    save_fp16(first, model_dirs[0], out)
    summary = {"final_model": f"uniform average of the weights of {len(model_dirs)} checkpoints (training.average)"}
    summary["checkpoints"] = [str(d) for d in model_dirs]
    summaries = [summary_of(d) for d in model_dirs]  # missing: counts as not held out
    summary["test_split_excluded"] = all(s.get("test_split_excluded") is True for s in summaries)
    summary["dev_trained_on"] = any(s.get("dev_trained_on") is True for s in summaries)
    summary["stages"] = [  # each checkpoint's own stage, without its per-epoch history
        {k: v for k, v in s.items() if k in ("recipe", "train_sentences", "best_epoch", "wall_seconds")}
        for s in summaries
    ]
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    average(args.models, args.out)
    print(f"wrote the mean of {len(args.models)} checkpoints to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
