"""The texts a load test sends: the bundled corpus (by length mix) or a user's file.

The bundled files under ``loadtest/corpus/`` were written for this project:
``short.txt`` (search-box queries), ``news.txt`` (news-like sentences) and ``long.jsonl``
(multi-paragraph articles). Full-width and half-width variants of the same names appear in
all three.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"

# Share of requests drawn from each bundled file, per mix.
MIXES: dict[str, dict[str, float]] = {
    "short": {"short.txt": 1.0},
    "mixed": {"short.txt": 0.3, "news.txt": 0.6, "long.jsonl": 0.1},
    "long": {"long.jsonl": 1.0},
}


@dataclass(frozen=True)
class Corpus:
    """Texts grouped in pools, each drawn with a weight (its share of requests)."""

    pools: tuple[tuple[str, ...], ...]
    weights: tuple[float, ...]
    source: str

    def sample(self, rng: random.Random) -> str:
        """One text: a pool by weight, then a text of that pool uniformly."""
        (pool,) = rng.choices(self.pools, weights=self.weights)
        return rng.choice(pool)

    @property
    def size(self) -> int:
        return sum(len(p) for p in self.pools)


def read_texts(path: Path) -> tuple[str, ...]:
    """Texts of one file: JSON lines with a ``"text"`` field, else one text per line.

    A file is read as JSON lines when its first non-empty line starts with ``{``. Empty lines
    are skipped.

    Raises:
        ValueError: a JSON line without a string ``"text"``, or a file with no text.
    """
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if lines and lines[0].lstrip().startswith("{"):
        texts = []
        for number, line in enumerate(lines, 1):
            obj = json.loads(line)
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise ValueError(f'{path}:{number}: JSON line without a string "text"')
            texts.append(obj["text"])
    else:
        texts = lines
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError(f"{path}: no texts")
    return tuple(texts)


def load_corpus(mix: str = "mixed", path: Path | None = None) -> Corpus:
    """The bundled corpus for ``mix`` (short|mixed|long), or every text of ``path`` if given.

    Raises:
        ValueError: an unknown mix (the message lists the known ones), or an unreadable file.
    """
    if path is not None:
        return Corpus((read_texts(Path(path)),), (1.0,), str(path))
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r}; known: {', '.join(MIXES)}")
    names = list(MIXES[mix])
    pools = tuple(read_texts(CORPUS_DIR / name) for name in names)
    return Corpus(pools, tuple(MIXES[mix][n] for n in names), f"bundled:{mix}")
