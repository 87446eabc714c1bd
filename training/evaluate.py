"""Entity-level evaluation on a data split: offline (core pipeline in process) or through a running server.

``--split dev`` (default; dev chose the epochs, averaging and threshold, so its score is optimistic) or
``--split test`` (the held-out split of ``training.data``: the final, report-only figure); ``--data FILE``
scores any jsonl file instead.

Scores are exact (start, end, type) matches on character spans, micro-averaged and per type, computed by
``training.metrics`` (no seqeval). Engines:

- ``pipeline`` (default): ``ja_ner.pipeline.Pipeline`` in process, as the handler runs it;
- ``inprocess``: the training loop's raw decoding (argmax read by the core's label codec, lenient, no
  Viterbi, no type voting, no word edges, no score threshold), beside the pipeline rather than through
  it: the pipeline's score minus this one is what serving-side decoding adds;
- ``--url http://127.0.0.1:8080``: POST /predictions/ja_ner with ``{"texts": [...]}`` in chunks.

``--compare`` runs the pipeline AND the URL (or the in-process decoder when no URL is given) and counts
the sentences whose entity sets differ: pipeline and server must agree (exit status 1 otherwise); the
raw decoder differs by design.

Usage: ``python -m training.evaluate [--model models/ja-ner-small] [--split dev|test] [--url URL] [--compare]
[--setting KEY=VALUE] [--json out]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from training.checkpoint import predict_spans
from training.data import DATA_DIR, SPLITS, TYPES, Example, Span, load_jsonl, load_split
from training.metrics import Scores, classify_errors, score

logger = logging.getLogger(__name__)

Predictor = Callable[[Sequence[str]], list[list[Span]]]
REST_CHUNK = 32


REFERENCE_DTYPE = "float32"


def pipeline_predictor(
    model_dir: Path, *, threads: int = 0, dtype: str = REFERENCE_DTYPE, settings: dict[str, str] | None = None
) -> Predictor:
    """Predict with the core pipeline in process (``Pipeline.load(model_dir, Settings(...))``).

    ``dtype`` is float32 by default, so a committed figure is the same on every machine; ``auto`` scores
    what this machine would serve (bf16 where native: ``bench/parity.py`` records that difference).
    ``settings``: other ``ja_ner.settings.Settings`` fields as a config file writes them (``decoding``,
    ``news_edges``, ...), to score a serving choice before it becomes the default.
    """
    from ja_ner.pipeline import Pipeline
    from ja_ner.settings import Settings

    raw = {**(settings or {}), "threads": threads, "dtype": dtype}
    return predictor_of(Pipeline.load(model_dir, Settings.from_mapping(raw)))


def setting_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` command-line pairs (``--setting``) as a mapping for ``Settings.from_mapping``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"--setting wants KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def pipeline_entities(pipe: object, texts: Sequence[str]) -> list[tuple]:
    """The entities (``ja_ner.types.Entity``) a loaded ``Pipeline`` finds in each text; an error raises."""
    from ja_ner.errors import NerError
    from ja_ner.types import Document

    out = []
    for res in pipe.predict([Document(t) for t in texts]):  # type: ignore[attr-defined]
        if isinstance(res, NerError):
            raise RuntimeError(f"pipeline error: {res}")
        out.append(res.entities)
    return out


def predictor_of(pipe: object) -> Predictor:
    """Wrap a loaded ``ja_ner.pipeline.Pipeline``: texts in, entity spans out (a document error raises)."""

    def predict(texts: Sequence[str]) -> list[list[Span]]:
        return [[Span(e.start, e.end, e.type) for e in ents] for ents in pipeline_entities(pipe, texts)]

    return predict


def inprocess_predictor(model_dir: Path, *, threads: int = 0) -> Predictor:
    """Predict with the training loop's decoder (``training.checkpoint.predict_spans``, not the pipeline)."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForTokenClassification.from_pretrained(model_dir, dtype=torch.float32).eval()

    def predict(texts: Sequence[str]) -> list[list[Span]]:
        exs = [Example("", t, ()) for t in texts]
        return predict_spans(model, tok, exs)

    return predict


def rest_predictor(url: str, *, model_name: str = "ja_ner", token: str | None = None) -> Predictor:
    """Predict through a running TorchServe: POST {url}/predictions/{model_name}, ``texts`` in chunks of 32."""
    import requests

    endpoint = f"{url.rstrip('/')}/predictions/{model_name}"
    headers = {"authorization": f"Bearer {token}"} if token else {}

    def predict(texts: Sequence[str]) -> list[list[Span]]:
        out: list[list[Span]] = []
        with requests.Session() as session:
            for i in range(0, len(texts), REST_CHUNK):
                chunk = list(texts[i : i + REST_CHUNK])
                resp = session.post(endpoint, json={"texts": chunk}, headers=headers, timeout=300)
                resp.raise_for_status()
                body = resp.json()
                results = body["results"]
                if len(results) != len(chunk):
                    raise RuntimeError(f"server answered {len(results)} results for {len(chunk)} texts")
                for res in results:
                    if "code" in res:
                        raise RuntimeError(f"server error: {res}")
                    out.append([Span(e["start"], e["end"], e["type"]) for e in res["entities"]])
        return out

    return predict


def evaluate(examples: Sequence[Example], predict: Predictor) -> tuple[Scores, list[list[Span]], float]:
    """Run ``predict`` on the texts; returns scores, the predictions and the elapsed seconds."""
    t = time.perf_counter()
    pred = predict([ex.text for ex in examples])
    elapsed = time.perf_counter() - t
    return score([ex.spans for ex in examples], pred, TYPES), pred, elapsed


def format_report(name: str, scores: Scores, examples: Sequence[Example], pred, elapsed: float) -> str:
    """A header line with the speed, then ``format_scores``."""
    head = f"== {name}: {len(examples)} sentences in {elapsed:.1f}s ({len(examples) / elapsed:.1f} sent/s)"
    return head + "\n" + format_scores(scores, examples, pred)


def format_scores(scores: Scores, examples: Sequence[Example], pred) -> str:
    """A plain-text table: micro and per-type P/R/F1, then the most frequent error kinds."""
    lines = [f"{'type':8} {'P':>7} {'R':>7} {'F1':>7} {'support':>8}"]
    rows = [("micro", scores.micro), *scores.per_type.items()]
    for t, s in rows:
        lines.append(f"{t:8} {s.precision:7.4f} {s.recall:7.4f} {s.f1:7.4f} {s.tp + s.fn:8d}")
    errors = classify_errors([ex.spans for ex in examples], pred)
    lines.append(f"errors ({sum(errors.values())} in all), most frequent:")
    for kind, n in errors.most_common(15):
        lines.append(f"  {n:4d}  {kind}")
    return "\n".join(lines)


def disagreements(a: list[list[Span]], b: list[list[Span]]) -> list[int]:
    """Indices of sentences whose predicted entity sets differ."""
    return [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if set(x) != set(y)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/ja-ner-small"))
    parser.add_argument("--split", choices=SPLITS, default="dev", help=f"a split of {DATA_DIR} (default: dev)")
    parser.add_argument("--data", type=Path, default=None, help="a jsonl file to score instead of --split")
    parser.add_argument("--engine", choices=("pipeline", "inprocess"), default="pipeline")
    parser.add_argument("--url", default="", help="evaluate through a running server instead")
    parser.add_argument("--model-name", default="ja_ner")
    parser.add_argument("--token", default=os.environ.get("JA_NER_TOKEN", ""), help="bearer token (REST)")
    parser.add_argument("--compare", action="store_true", help="run two modes and count disagreements")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--dtype", default=REFERENCE_DTYPE, help="pipeline number format (auto: as served here)")
    parser.add_argument(
        "--setting", action="append", default=[], metavar="KEY=VALUE", help="a pipeline setting (decoding=viterbi)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the scores here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    examples = load_jsonl(args.data) if args.data else load_split(args.split)
    logger.info("%d sentences from %s", len(examples), args.data or f"the {args.split} split of {DATA_DIR}")

    def make(kind: str) -> Predictor:
        if kind == "rest":
            return rest_predictor(args.url, model_name=args.model_name, token=args.token or None)
        if kind == "pipeline":
            return pipeline_predictor(
                args.model, threads=args.threads, dtype=args.dtype, settings=setting_pairs(args.setting)
            )
        return inprocess_predictor(args.model, threads=args.threads)

    first = "rest" if args.url and not args.compare else args.engine
    runs = [first]
    if args.compare:
        runs = ["pipeline", "rest" if args.url else "inprocess"]
    results = {}
    for kind in runs:
        scores, pred, elapsed = evaluate(examples, make(kind))
        print(format_report(kind if kind != "rest" else f"rest {args.url}", scores, examples, pred, elapsed))
        results[kind] = (scores, pred, elapsed)
    report: dict = {k: {**v[0].as_dict(), "seconds": round(v[2], 2)} for k, v in results.items()}
    status = 0
    if len(runs) == 2:
        diff = disagreements(results[runs[0]][1], results[runs[1]][1])
        print(f"== {runs[0]} vs {runs[1]}: {len(diff)} of {len(examples)} sentences differ")
        for i in diff[:5]:
            print(f"  {examples[i].text}")
            for kind in runs:
                print(f"    {kind}: {results[kind][1][i]}")
        report["disagreements"] = len(diff)
        status = 1 if diff and "rest" in runs else 0
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
