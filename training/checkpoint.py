"""What training, evaluation, averaging and untrimming share: checkpoint folders and in-process decoding.

A checkpoint folder is an fp16 safetensors token classifier (its config asks for fp32 on load) plus
``TOKENIZER_FILES`` copied from the folder it was trained from. ``predict_spans`` decodes with the
model alone (argmax labels read by the core's ``LabelCodec.runs``, lenient; none of the pipeline's
windows, voting, word edges or threshold). torch is imported when called.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from training.align import IGNORE, decode_spans
from training.data import Example

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
SUMMARY_FILE = "training_summary.json"


def summary_of(model_dir: Path) -> dict:
    """A checkpoint's training_summary.json (provenance: recipe, test_split_excluded, dev_trained_on); {} if none."""
    path = Path(model_dir) / SUMMARY_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def predict_spans(model, tokenizer, examples: list[Example], *, batch_size: int = 64, bf16: bool = False):
    """In-process decoding: predicted entity spans per example (argmax labels, lenient, any scheme)."""
    import torch

    id2label = {int(k): v for k, v in model.config.id2label.items()}
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].text))
    result: list = [None] * len(examples)
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        texts = [examples[i].text for i in idx]
        enc = tokenizer(
            texts,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            truncation=True,
            max_length=512,
            padding=True,
            return_tensors="pt",
        )
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        pred = logits.float().argmax(-1)
        for row, i in enumerate(idx):
            n = int(enc["attention_mask"][row].sum())
            offsets = [tuple(o) for o in enc["offset_mapping"][row][:n].tolist()]
            special = enc["special_tokens_mask"][row][:n].tolist()
            ids = enc["input_ids"][row][:n].tolist()
            tokens = tokenizer.convert_ids_to_tokens(ids)
            labels = [
                IGNORE if s or t == "\u2581" else int(p)
                for s, t, p in zip(special, tokens, pred[row][:n].tolist(), strict=True)
            ]
            result[i] = decode_spans(examples[i].text, offsets, labels, id2label)
    return result


def save_fp16(model, tokenizer_dir: Path, out: Path) -> None:
    """Write the model as fp16 safetensors (config asks for fp32 on load) plus the tokenizer files."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    model.save_pretrained(out, state_dict=state, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if name == "tokenizer.json" or (tokenizer_dir / name).exists():  # transformers 5 writes no special_tokens_map
            shutil.copyfile(tokenizer_dir / name, out / name)
