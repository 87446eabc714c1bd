"""The models a benchmark case runs: the default model (or a random stand-in) and a base-size model.

Random weights give the same compute as trained ones; only the entities found differ. The
stand-ins (``training.standins``) use the real XLM-R tokenizer, so token counts match the served models.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from handler.archive import DEFAULT_MODEL, REPO
from training import standins

BENCH_MODELS = REPO / "build" / "bench" / "models"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Case:
    """One benchmark case: a model folder and how it was obtained."""

    name: str
    model_dir: Path
    description: str


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
            standins.build(path, standins.E5_SMALL)
        return Case(name, path, "random BERT 12x384 (e5-small shape; models/ja-ner-small not present)")
    if name == "base":
        path = root / "xlmr-base"
        if not (path / "config.json").is_file():
            log.info("building a random XLM-R-base model in %s", path)
            standins.build(path, standins.XLMR_BASE)
        return Case(name, path, "random XLMRobertaForTokenClassification, XLM-R-base config")
    raise ValueError(f"unknown case {name!r}; expected default or base")
