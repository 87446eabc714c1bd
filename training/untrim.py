"""Measure what vocabulary trimming costs: put a trained, trimmed model back on the full vocabulary.

The trimmed model's embedding rows go back to their original ids; the pieces trimming dropped get the
untrained base encoder's rows. Evaluated with the FULL tokenizer (``python -m training.evaluate --model
<out>``), the difference to the trimmed model's score is what trimming costs on that data: only the
sentences whose tokenisation changed can score differently. A measuring tool; its output is never served.

Usage: ``python -m training.untrim --model models/ja-ner-small --full build/e5-small-hf
--plan build/e5-small-ja/trim_plan.json --out build/ja-ner-small-fullvocab``
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from training.checkpoint import TOKENIZER_FILES


def untrim(model_dir: Path, full_dir: Path, kept: list[int], out: Path) -> None:
    """Write ``model_dir`` with its embeddings spread back over ``full_dir``'s vocabulary to ``out``."""
    import torch
    from transformers import AutoModel, AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(model_dir, dtype=torch.float32)
    base = AutoModel.from_pretrained(full_dir, dtype=torch.float32)
    full = base.get_input_embeddings().weight.detach().clone()
    trimmed = model.get_input_embeddings().weight.detach()
    if trimmed.shape[0] != len(kept):
        raise ValueError(f"model has {trimmed.shape[0]} pieces, the plan keeps {len(kept)}")
    full[torch.tensor(kept, dtype=torch.long)] = trimmed
    emb = torch.nn.Embedding(full.shape[0], full.shape[1])
    emb.weight.data.copy_(full)
    model.set_input_embeddings(emb)
    for key in ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(model.config, key, getattr(base.config, key))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (full_dir / name).exists():
            shutil.copyfile(full_dir / name, out / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/ja-ner-small"))
    parser.add_argument("--full", type=Path, default=Path("build/e5-small-hf"))
    parser.add_argument("--plan", type=Path, default=Path("build/e5-small-ja/trim_plan.json"))
    parser.add_argument("--out", type=Path, default=Path("build/ja-ner-small-fullvocab"))
    args = parser.parse_args(argv)
    kept = json.loads(args.plan.read_text())["kept"]
    untrim(args.model, args.full, kept, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
