"""Stockmark NER data: reading the jsonl split files, the held-out test split, the Japanese type names.

Splits (``load_split``): ``dev`` is ``dev.jsonl``; ``test`` is every sentence of ``train.jsonl`` (and of
``test.jsonl`` where ``make data`` wrote one) whose ``curid`` falls in the test bucket of
``training.split_data.split_of`` (``sha1(curid) % 10 == 1``, about 10 %); ``train`` is the rest of
``train.jsonl``. Training reads ``train`` only (``training_examples`` drops the test bucket from any file it
is given); dev chooses epochs, averaging and the threshold; test is only ever reported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ja_ner.labels import ENTITY_TYPES
from training.split_data import split_of

# The team's splits live beside the repository (never inside it); JA_NER_DATA points elsewhere.
DATA_DIR = Path(
    os.environ.get("JA_NER_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "stockmark-ner")
)

# Stockmark's Japanese type names -> the model's type names (the seed model's names).
TYPE_MAP: dict[str, str] = {
    "人名": "PER",
    "法人名": "ORG",
    "政治的組織名": "ORG-P",
    "その他の組織名": "ORG-O",
    "地名": "LOC",
    "施設名": "INS",
    "製品名": "PRD",
    "イベント名": "EVT",
}
TYPES: tuple[str, ...] = ENTITY_TYPES
assert tuple(TYPE_MAP.values()) == TYPES, "TYPE_MAP must name ja_ner.labels.ENTITY_TYPES in order"


@dataclass(frozen=True)
class Span:
    """An entity as a half-open range of code points ``[start, end)`` of its sentence, with its type."""

    start: int
    end: int
    type: str


@dataclass(frozen=True)
class Example:
    """One sentence with its gold entities (types already mapped to PER, ORG, ...)."""

    curid: str
    text: str
    spans: tuple[Span, ...]


def parse_record(record: dict) -> Example:
    """Build an ``Example`` from one Stockmark record; raises ValueError on an unknown type or bad span."""
    text = record["text"]
    spans = []
    for ent in record.get("entities", []):
        start, end = ent["span"]
        if ent["type"] not in TYPE_MAP:
            raise ValueError(f"unknown entity type {ent['type']!r}")
        if not 0 <= start < end <= len(text):
            raise ValueError(f"span {start}-{end} outside text of length {len(text)}")
        spans.append(Span(start, end, TYPE_MAP[ent["type"]]))
    return Example(str(record["curid"]), text, tuple(sorted(spans, key=lambda s: (s.start, s.end))))


def load_jsonl(path: Path) -> list[Example]:
    """Read a split file (one JSON record a line)."""
    with path.open(encoding="utf-8") as fh:
        return [parse_record(json.loads(line)) for line in fh if line.strip()]


SPLITS: tuple[str, ...] = ("train", "dev", "test")


def is_test(curid: str) -> bool:
    """True when the sentence's article (``curid``) belongs to the held-out test split."""
    return split_of(curid) == "test"


def training_examples(path: Path) -> list[Example]:
    """The sentences of ``path`` that training may see: every one whose curid is not in the test split."""
    return [ex for ex in load_jsonl(path) if not is_test(ex.curid)]


def load_split(name: str, data_dir: Path = DATA_DIR) -> list[Example]:
    """One split of the data in ``data_dir`` (rules in the module docstring).

    Raises ValueError on an unknown name, FileNotFoundError (saying where data comes from) without data.
    """
    if not (data_dir / "train.jsonl").exists() or not (data_dir / "dev.jsonl").exists():
        raise FileNotFoundError(
            f"no train.jsonl/dev.jsonl in {data_dir}: set JA_NER_DATA to the Stockmark split folder "
            "(the team's is ../shared/data/stockmark-ner) or run make data and set JA_NER_DATA=data"
        )
    if name == "train":
        return training_examples(data_dir / "train.jsonl")
    if name == "dev":
        return load_jsonl(data_dir / "dev.jsonl")
    if name == "test":
        files = [data_dir / "train.jsonl", data_dir / "test.jsonl"]
        return [ex for f in files if f.exists() for ex in load_jsonl(f) if is_test(ex.curid)]
    raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
