"""The models a benchmark case runs: the default model (or a random stand-in) and a base-size model.

Random weights give the same compute as trained ones; only the entities found differ. The
stand-ins use the real XLM-R tokenizer, so token counts match the served models.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "models" / "ja-ner-small"
BENCH_MODELS = REPO / "build" / "bench" / "models"

ENTITY_TYPES = ("PER", "ORG", "ORG-P", "ORG-O", "LOC", "INS", "PRD", "EVT")
IO_LABELS = ("O", *ENTITY_TYPES)
BIO_LABELS = ("O", *(f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I")))

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Case:
    """One benchmark case: a model folder and how it was obtained."""

    name: str
    model_dir: Path
    description: str


def _labels(labels: tuple[str, ...]) -> dict[str, dict]:
    return {"id2label": dict(enumerate(labels)), "label2id": {label: i for i, label in enumerate(labels)}}


def build_small_standin(out_dir: Path, seed: int = 0) -> Path:
    """A random BERT token classifier shaped like multilingual-e5-small (12 layers, hidden 384, BIO)."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    from tests.tiny_model import real_tokenizer

    torch.manual_seed(seed)
    tokenizer = real_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
        type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
        **_labels(BIO_LABELS),
    )
    return _save(BertForTokenClassification(config), tokenizer, out_dir)


def build_base(out_dir: Path, seed: int = 0) -> Path:
    """A random XLM-R-base token classifier (12 layers, hidden 768, 278M parameters, IO labels)."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

    from tests.tiny_model import real_tokenizer

    torch.manual_seed(seed)
    tokenizer = real_tokenizer()
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        **_labels(IO_LABELS),
    )
    return _save(XLMRobertaForTokenClassification(config), tokenizer, out_dir)


def _save(model, tokenizer, out_dir: Path) -> Path:
    tmp = out_dir.with_name(out_dir.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out_dir)  # a half-written folder is never mistaken for a model
    return out_dir


def resolve_case(name: str, root: Path = BENCH_MODELS) -> Case:
    """The model of case ``default`` or ``base``, building a random one on first use.

    ``default`` is models/ja-ner-small when it holds a model, else a random stand-in of its shape.
    """
    if name == "default":
        if (DEFAULT_MODEL / "config.json").is_file():
            return Case(name, DEFAULT_MODEL, "models/ja-ner-small (trained)")
        path = root / "small-standin"
        if not (path / "config.json").is_file():
            log.info("building a random e5-small-shaped stand-in in %s", path)
            build_small_standin(path)
        return Case(name, path, "random BERT 12x384 (e5-small shape; models/ja-ner-small not present)")
    if name == "base":
        path = root / "xlmr-base"
        if not (path / "config.json").is_file():
            log.info("building a random XLM-R-base model in %s", path)
            build_base(path)
        return Case(name, path, "random XLMRobertaForTokenClassification, XLM-R-base config")
    raise ValueError(f"unknown case {name!r}; expected default or base")
