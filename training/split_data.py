"""Download Stockmark's ``ner.json`` and split it into train/dev/test jsonl files by a hash of ``curid``.

Rule: ``bucket = int(sha1(curid as UTF-8).hexdigest(), 16) % 10``; bucket 0 -> dev, 1 -> test, 2..9 ->
train. Sentences of one Wikipedia article (one curid) always land in the same split. This is the rule
for users outside this repository; the team's copy in ``../shared/data/stockmark-ner/`` was split
earlier by another hash into train and dev, so the dev splits differ (figures in the model card are on
the shared dev). The test rule is shared: ``training.data.load_split("test")`` takes the bucket-1
sentences of the team's ``train.jsonl`` (and all of a ``test.jsonl`` written here), and training never
reads them.

Usage: ``python -m training.split_data [--url URL] [--out data]`` (needs network for the download;
``--input ner.json`` splits a local copy instead).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import urllib.request
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

NER_JSON_URL = "https://raw.githubusercontent.com/stockmarkteam/ner-wikipedia-dataset/v2.0/ner.json"
SPLITS = ("train", "dev", "test")


def bucket(curid: str | int) -> int:
    """The curid's hash bucket 0..9 (sha1 of the decimal string, as an integer, mod 10)."""
    return int(hashlib.sha1(str(curid).encode("utf-8")).hexdigest(), 16) % 10


def split_of(curid: str | int) -> str:
    """``dev`` for bucket 0, ``test`` for bucket 1, otherwise ``train``."""
    b = bucket(curid)
    return "dev" if b == 0 else "test" if b == 1 else "train"


def split_records(records: Iterable[dict]) -> dict[str, list[dict]]:
    """Group records by ``split_of(record["curid"])``, keeping their order."""
    out: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for rec in records:
        out[split_of(rec["curid"])].append(rec)
    return out


def write_splits(records: list[dict], out_dir: Path) -> dict[str, int]:
    """Write ``<split>.jsonl`` files (one JSON object a line, UTF-8); returns sentence counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, recs in split_records(records).items():
        with (out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for rec in recs:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        counts[name] = len(recs)
    return counts


def download(url: str, dest: Path) -> Path:
    """Fetch ``url`` to ``dest`` (skipped when ``dest`` exists)."""
    if dest.exists():
        logger.info("%s exists; not downloading", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 (fixed https URL)
        dest.write_bytes(resp.read())
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=NER_JSON_URL)
    parser.add_argument("--input", type=Path, default=None, help="a local ner.json (no download)")
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    src = args.input or download(args.url, args.out / "ner.json")
    records = json.loads(src.read_text(encoding="utf-8"))
    counts = write_splits(records, args.out)
    logger.info("wrote %s to %s", counts, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
