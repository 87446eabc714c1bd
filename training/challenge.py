"""The challenge set (issue 12): news, business and social-media sentences for known failure classes.

Source: ``tests/data/challenge/sentences.txt``, one sentence a line with inline markup ``[surface|TYPE]``
(TYPE: PER ORG ORG-P ORG-O LOC INS PRD EVT), grouped by ``@class NAME`` lines; ``;;`` lines are comments.
``build`` derives the character spans from the markup and writes ``challenge.jsonl`` beside it (the
Stockmark record shape plus a ``class`` key), so offsets are computed, never typed. ``eval`` scores a
model on it per class (micro P/R/F1 over the class's sentences, exact span and type, ``training.metrics``)
and overall, offline with the core pipeline or through a running server (``--url``), with the predictors
of ``training.evaluate``. Label rules: ``tests/data/challenge/README.md``.

Usage: ``python -m training.challenge build`` | ``python -m training.challenge eval [--model DIR]
[--url URL] [--setting KEY=VALUE] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.data import TYPE_MAP, TYPES, Example, Span, parse_record
from training.evaluate import Predictor, format_scores, pipeline_predictor, rest_predictor, setting_pairs
from training.metrics import Scores, score

logger = logging.getLogger(__name__)

CHALLENGE_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "challenge"
SOURCE = CHALLENGE_DIR / "sentences.txt"
JSONL = CHALLENGE_DIR / "challenge.jsonl"
OVERALL = "overall"
# What issue 12 asks each class to cover (tests/unit/test_challenge.py checks every one is used).
ISSUE_AFFIXES = (
    "県警", "沖", "内", "中部", "氏", "さん", "容疑者", "被告",
    "首相", "社長", "知事", "刊", "製", "産", "系", "発",
)  # fmt: skip
ISSUE_TITLES = ("横綱", "大統領", "首相", "元", "故")
ISSUE_COUNTRIES = "米英中韓露独仏"

_ENTITY = re.compile(r"\[([^\[\]|]+)\|([A-Z-]+)\]")
_JA_NAME = {short: ja for ja, short in TYPE_MAP.items()}


@dataclass(frozen=True)
class Item:
    """One challenge sentence: its class and the sentence with gold spans."""

    cls: str
    example: Example


def parse_markup(line: str) -> tuple[str, tuple[Span, ...]]:
    """The plain text of one marked-up line and its entity spans (code points of the plain text).

    Raises ValueError on an unknown type or a stray ``[``, ``]`` or ``|`` outside well-formed markup.
    """
    parts: list[str] = []
    spans: list[Span] = []
    pos = 0
    length = 0
    for m in _ENTITY.finditer(line):
        before = line[pos : m.start()]
        _check_plain(before, line)
        parts.append(before)
        length += len(before)
        surface, kind = m.group(1), m.group(2)
        if kind not in TYPES:
            raise ValueError(f"unknown type {kind!r} in {line!r}")
        spans.append(Span(length, length + len(surface), kind))
        parts.append(surface)
        length += len(surface)
        pos = m.end()
    _check_plain(line[pos:], line)
    parts.append(line[pos:])
    return "".join(parts), tuple(spans)


def _check_plain(text: str, line: str) -> None:
    if any(ch in text for ch in "[]|"):
        raise ValueError(f"stray markup character in {line!r}")


def parse_source(text: str) -> list[tuple[str, str, tuple[Span, ...]]]:
    """(class, plain text, spans) for every sentence line of a source file's text."""
    out = []
    cls = ""
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(";;"):
            continue
        if line.startswith("@class "):
            cls = line.removeprefix("@class ").strip()
            continue
        if not cls:
            raise ValueError(f"line {lineno}: sentence before the first @class line")
        plain, spans = parse_markup(line)
        out.append((cls, plain, spans))
    return out


def records(source: Path = SOURCE) -> list[dict]:
    """The jsonl records built from ``source``: Stockmark's shape (``curid``, ``text``, ``entities`` with
    Japanese type names) plus ``class``; curids are ``challenge-<class>-<n>``."""
    out = []
    counts: dict[str, int] = {}
    for cls, text, spans in parse_source(source.read_text(encoding="utf-8")):
        counts[cls] = counts.get(cls, 0) + 1
        entities = [{"name": text[s.start : s.end], "span": [s.start, s.end], "type": _JA_NAME[s.type]} for s in spans]
        out.append({"curid": f"challenge-{cls}-{counts[cls]}", "class": cls, "text": text, "entities": entities})
    return out


def build(source: Path = SOURCE, out: Path = JSONL) -> int:
    """Write ``out`` from ``source``; returns the number of sentences."""
    recs = records(source)
    with out.open("w", encoding="utf-8") as fh:
        for rec in recs:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return len(recs)


def load(path: Path = JSONL) -> list[Item]:
    """The challenge items of a built jsonl file, in file order."""
    with path.open(encoding="utf-8") as fh:
        return [Item(rec["class"], parse_record(rec)) for rec in map(json.loads, fh) if rec]


def classes(items: Sequence[Item]) -> list[str]:
    """The class names in order of first appearance."""
    return list(dict.fromkeys(item.cls for item in items))


def score_by_class(items: Sequence[Item], pred: Sequence[Sequence[Span]]) -> dict[str, Scores]:
    """Scores per class (the micro average over that class's sentences, per type inside) and ``overall``."""
    gold = [item.example.spans for item in items]
    out = {OVERALL: score(gold, pred, TYPES)}
    for cls in classes(items):
        idx = [i for i, item in enumerate(items) if item.cls == cls]
        out[cls] = score([gold[i] for i in idx], [pred[i] for i in idx], TYPES)
    return out


def evaluate_challenge(items: Sequence[Item], predict: Predictor) -> tuple[dict[str, Scores], list[list[Span]]]:
    """Predict every challenge sentence once; scores by class and the predictions."""
    pred = predict([item.example.text for item in items])
    return score_by_class(items, pred), pred


def report_dict(by_class: dict[str, Scores], items: Sequence[Item]) -> dict:
    """JSON form: per class micro P/R/F1 with counts and sentence numbers; ``overall`` adds per type."""
    sentences = {cls: sum(item.cls == cls for item in items) for cls in classes(items)}
    sentences[OVERALL] = len(items)
    out = {}
    for cls, scores in by_class.items():
        out[cls] = {**scores.micro.as_dict(), "sentences": sentences[cls]}
    out[OVERALL]["per_type"] = {t: s.as_dict() for t, s in by_class[OVERALL].per_type.items() if s.tp + s.fn + s.fp}
    return out


def format_classes(name: str, by_class: dict[str, Scores], items: Sequence[Item]) -> str:
    """A plain-text table: one row per class, then ``overall``."""
    lines = [f"== {name}: challenge set, {len(items)} sentences (micro over each class's sentences)"]
    lines.append(f"{'class':14} {'P':>7} {'R':>7} {'F1':>7} {'support':>8} {'sentences':>10}")
    for cls in [*classes(items), OVERALL]:
        s = by_class[cls].micro
        n = len(items) if cls == OVERALL else sum(item.cls == cls for item in items)
        lines.append(f"{cls:14} {s.precision:7.4f} {s.recall:7.4f} {s.f1:7.4f} {s.tp + s.fn:8d} {n:10d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write challenge.jsonl from sentences.txt")
    b.add_argument("--source", type=Path, default=SOURCE)
    b.add_argument("--out", type=Path, default=JSONL)
    e = sub.add_parser("eval", help="P/R/F1 per class, offline or through a server (--url)")
    e.add_argument("--model", type=Path, default=Path("models/ja-ner-small"))
    e.add_argument("--data", type=Path, default=JSONL)
    e.add_argument("--url", default="", help="evaluate through a running server instead")
    e.add_argument("--model-name", default="ja_ner")
    e.add_argument("--token", default=os.environ.get("JA_NER_TOKEN", ""), help="bearer token (REST)")
    e.add_argument("--threads", type=int, default=0)
    e.add_argument("--errors", action="store_true", help="also print every sentence the model gets wrong")
    e.add_argument(
        "--setting", action="append", default=[], metavar="KEY=VALUE", help="a pipeline setting (decoding=viterbi)"
    )
    e.add_argument("--json", type=Path, default=None, help="write the scores here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "build":
        print(f"wrote {build(args.source, args.out)} sentences to {args.out}")
        return 0
    items = load(args.data)
    if args.url:
        predict = rest_predictor(args.url, model_name=args.model_name, token=args.token or None)
        name = f"rest {args.url}"
    else:
        predict = pipeline_predictor(args.model, threads=args.threads, settings=setting_pairs(args.setting))
        name = f"pipeline {args.model}"
    by_class, pred = evaluate_challenge(items, predict)
    examples = [item.example for item in items]
    print(format_classes(name, by_class, items))
    print("per type, all classes:")
    print(format_scores(by_class[OVERALL], examples, pred))
    if args.errors:
        for item, p in zip(items, pred, strict=True):
            if set(item.example.spans) != set(p):
                text = item.example.text
                print(f"[{item.cls}] {text}")
                print(f"    gold: {[(text[s.start : s.end], s.type) for s in item.example.spans]}")
                print(f"    pred: {[(text[s.start : s.end], s.type) for s in p]}")
    if args.json:
        args.json.write_text(json.dumps(report_dict(by_class, items), indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
