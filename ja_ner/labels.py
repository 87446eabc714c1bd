"""The one label codec: parses ``config.id2label`` once into a tagging scheme.

Nothing else in the project splits label strings. The codec also owns the scheme's grammar: which
label may follow which (``allowed``), the best legal label path through per-unit probabilities
(``viterbi``), and the entity runs of a label path (``runs``), which serving (``ja_ner.aggregate``)
and training's raw figure (``training.align``) both decode through.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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


class Decoding(StrEnum):
    """How units' probabilities become entities (setting ``decoding``, see ``ja_ner.aggregate``)."""

    GROUP = "group"  # per-unit argmax, runs opened by B/S and continued by any I/E, the type voted on
    VITERBI = "viterbi"  # the most probable label path the scheme allows; an entity's type is its B's


_FLOOR = 1e-12  # log of a zero probability: legal paths stay comparable, illegal ones are -inf


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

    @cached_property
    def allowed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The scheme's grammar: ``(start, step, end)`` 0/1 arrays, ``start[j]``: label j may open a text,
        ``step[i, j]``: j may follow i, ``end[i]``: i may close a text.

        IO allows everything (Viterbi is then the per-unit argmax). BIO (IOB2): ``I-T`` only after
        ``B-T`` or ``I-T``. BIOES also: ``B-T``/``I-T`` only before ``I-T``/``E-T``, ``E-T`` only after
        them, and no text ends inside an entity.
        """
        n = len(self.tags)
        if self.scheme is Scheme.IO:
            return np.ones(n, bool), np.ones((n, n), bool), np.ones(n, bool)
        inside = ("I", "E")  # positions that continue an entity
        opened = ("B", "I")  # positions an entity may go on from (in BIOES: must)
        start = np.array([t.position not in inside for t in self.tags])
        step = np.zeros((n, n), bool)
        for i, prev in enumerate(self.tags):
            for j, nxt in enumerate(self.tags):
                continues = prev.position in opened and prev.type == nxt.type
                if nxt.position in inside:
                    step[i, j] = continues
                elif self.scheme is Scheme.BIOES:
                    step[i, j] = prev.position not in opened  # B-/I- must go on with I-/E-
                else:
                    step[i, j] = True
        end = np.array([self.scheme is Scheme.BIO or t.position not in opened for t in self.tags])
        return start, step, end

    def viterbi(self, probs: np.ndarray) -> np.ndarray:
        """The label path of largest probability product the scheme allows, one label id per row of
        ``probs`` ([units, labels]). Ties go to the lower label id, as ``argmax`` does."""
        if len(probs) == 0 or self.scheme is Scheme.IO:
            return probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
        start, step, end = self.allowed
        logp = np.log(np.maximum(probs.astype(np.float64), _FLOOR))
        penalty = np.where(step, 0.0, -np.inf)  # [prev, next]
        best = np.where(start, logp[0], -np.inf)
        back = np.zeros(probs.shape, dtype=np.int64)
        for t in range(1, len(probs)):
            total = best[:, None] + penalty  # [prev, next]
            back[t] = total.argmax(axis=0)
            best = total[back[t], np.arange(len(best))] + logp[t]
        path = np.zeros(len(probs), dtype=np.int64)
        path[-1] = int(np.where(end, best, -np.inf).argmax())
        for t in range(len(probs) - 1, 0, -1):
            path[t - 1] = back[t, path[t]]
        return path

    def runs(self, label_ids: Sequence[int]) -> list[tuple[int, int, str]]:
        """The entities of a label path as ``(first, last + 1, type)`` unit indices.

        IO: consecutive units of one type. BIO/BIOES: B/S opens an entity; I/E of the same type continues
        it; an I/E of another type, or with nothing open, opens one (lenient, for a raw argmax path);
        E/S closes it; O ends it. A legal path (``viterbi``) reads the same under any leniency.
        """
        out: list[tuple[int, int, str]] = []
        open_type = ""  # type of the entity still open, '' if none
        for i, label in enumerate(label_ids):
            tag = self.tags[int(label)]
            if tag.position == "O":
                open_type = ""
                continue
            if open_type == tag.type and (self.scheme is Scheme.IO or tag.position in ("I", "E")):
                first, _, kind = out[-1]
                out[-1] = (first, i + 1, kind)
            else:
                out.append((i, i + 1, tag.type))
            open_type = "" if tag.position in ("E", "S") else tag.type
        return out
