"""The one label codec: parses ``config.id2label`` once into a tagging scheme.

Nothing else in the project splits label strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

import numpy as np

from ja_ner.errors import ConfigError

_PREFIXED = re.compile(r"^([BIES])-(.+)$")

# The eight entity types of the Stockmark data, the seed model and the default model (in the seed
# model's label order). The codec itself reads whatever types a model's id2label names.
ENTITY_TYPES: tuple[str, ...] = ("PER", "ORG", "ORG-P", "ORG-O", "LOC", "INS", "PRD", "EVT")
IO_LABELS: tuple[str, ...] = ("O", *ENTITY_TYPES)  # the seed model's label set
BIO_LABELS: tuple[str, ...] = ("O", *(f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I")))  # the default model's


class Scheme(StrEnum):
    """Tagging schemes the aggregator understands."""

    IO = "IO"  # bare type names (the seed model): touching entities of one type merge
    BIO = "BIO"  # B-/I- prefixes (IOB2)
    BIOES = "BIOES"  # B-/I-/E-/S- prefixes


@dataclass(frozen=True)
class Tag:
    """A decoded label: ``position`` is one of O B I E S; ``type`` is '' for O."""

    position: str
    type: str


OUTSIDE = Tag("O", "")


@dataclass(frozen=True)
class LabelCodec:
    """Decodes label ids for one model."""

    scheme: Scheme
    tags: tuple[Tag, ...]  # indexed by label id

    @property
    def types(self) -> tuple[str, ...]:
        """Entity types in first-seen order."""
        return tuple(dict.fromkeys(t.type for t in self.tags if t.type))

    @cached_property
    def type_matrix(self) -> np.ndarray:
        """[labels, types] 0/1 matrix: ``probs @ m`` gives each entity type's total probability."""
        types = self.types
        m = np.zeros((len(self.tags), len(types)), dtype=np.float32)
        for label, tag in enumerate(self.tags):
            if tag.type:
                m[label, types.index(tag.type)] = 1.0
        return m

    @classmethod
    def from_id2label(cls, id2label: dict[int, str] | dict[str, str]) -> LabelCodec:
        """Detect the scheme and decode every label.

        A model is prefixed (BIO/BIOES) when every non-O label matches ``[BIES]-<type>``; the type
        is everything after the first hyphen, so ``B-ORG-P`` has type ``ORG-P``. Otherwise every
        non-O label is a bare type (IO), so ``ORG-O`` stays ``ORG-O``.

        Raises:
            ConfigError: ids are not 0..n-1 or no label is "O" (a model that cannot be served).
        """
        labels = {int(k): v for k, v in id2label.items()}
        if sorted(labels) != list(range(len(labels))):
            raise ConfigError(f"id2label ids must be 0..{len(labels) - 1}")
        names = [labels[i] for i in range(len(labels))]
        if "O" not in names:
            raise ConfigError("id2label has no 'O' label")
        entity_names = [n for n in names if n != "O"]
        matches = [_PREFIXED.match(n) for n in entity_names]
        if entity_names and all(matches):
            positions = {m.group(1) for m in matches if m}
            scheme = Scheme.BIOES if positions & {"E", "S"} else Scheme.BIO
            decoded = {n: Tag(m.group(1), m.group(2)) for n, m in zip(entity_names, matches, strict=True) if m}
        else:
            scheme = Scheme.IO
            decoded = {n: Tag("I", n) for n in entity_names}
        return cls(scheme, tuple(decoded.get(n, OUTSIDE) for n in names))
