"""The fixed texts every part of one benchmark run sends.

The Stockmark dev sentences are read at run time from ../shared (they are never copied into
the repository); without them the bundled load-test news sentences are used.
"""

from __future__ import annotations

import json
from pathlib import Path

from training.data import DATA_DIR

REPO = Path(__file__).resolve().parent.parent
DEV_JSONL = DATA_DIR / "dev.jsonl"
FALLBACK = REPO / "loadtest" / "corpus" / "news.txt"


def load_texts(limit: int | None = None, source: Path | None = None) -> tuple[list[str], str]:
    """Non-empty texts in file order, at most ``limit``; returns (texts, description of the source).

    A ``.jsonl`` source is read as objects with a ``text`` field; anything else as one text a line.

    Raises:
        FileNotFoundError: neither the given source nor a default exists.
    """
    path = source or (DEV_JSONL if DEV_JSONL.is_file() else FALLBACK)
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    if path.suffix == ".jsonl":
        texts = [json.loads(line)["text"] for line in lines if line]
    else:
        texts = [line for line in lines if line and not line.startswith("#")]
    texts = [t for t in texts if t.strip()][:limit]
    if not texts:
        raise ValueError(f"{path}: no texts")
    return texts, f"{path.name} ({len(texts)} texts, {sum(map(len, texts)) / len(texts):.0f} chars mean)"
