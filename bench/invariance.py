"""Batch invariance of one runtime/format: does a text's answer depend on what it is batched with?

    python -m bench.invariance --dtype float32                      # in process, the dev split
    python -m bench.invariance --dtype int8 --batch-invariant false # int8 served batched
    python -m bench.invariance --url http://127.0.0.1:8080/predictions/ja_ner   # a running server

Every text is answered alone first. In process it is then answered inside client batches of
``--batch`` texts with random neighbours (``Pipeline.predict`` on the list, so micro-batches mix
lengths and padding) and streamed (``predict_stream``'s final answer, for long texts). Through a
server it is sent alone, inside ``{"texts": [...]}`` client batches with random neighbours, and
alone again by ``--users`` concurrent clients (so TorchServe batches it with other users' texts).
A comparison counts as changed when the entities (type, start, end) differ, and separately when
any score differs at the 4 decimals the API prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

Answer = tuple[tuple[tuple[str, int, int], ...], tuple[float, ...]]


@dataclass(frozen=True)
class Comparison:
    """One way of sending the texts against sending each alone."""

    name: str
    compared: int
    entity_changes: int  # texts whose (type, start, end) set changed
    score_changes: int  # texts whose entities match but a score changed at 4 decimals

    @property
    def invariant(self) -> bool:
        return self.entity_changes == 0 and self.score_changes == 0


def answer_of(entities: Sequence[dict]) -> Answer:
    """The comparable part of one text's entities (JSON dicts)."""
    spans = tuple((e["type"], int(e["start"]), int(e["end"])) for e in entities)
    return spans, tuple(round(float(e["score"]), 4) for e in entities)


def compare(name: str, alone: Sequence[Answer], other: Sequence[Answer]) -> Comparison:
    entity = sum(a[0] != b[0] for a, b in zip(alone, other, strict=True))
    score = sum(a[0] == b[0] and a[1] != b[1] for a, b in zip(alone, other, strict=True))
    return Comparison(name, len(alone), entity, score)


def shuffled_batches(n: int, size: int, seed: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i : i + size] for i in range(0, n, size)]


def in_process(texts: list[str], settings: dict, *, batch: int, seed: int, model_dir: Path) -> dict:
    """Alone vs client batches vs streamed, with the core pipeline in this process."""
    from ja_ner.pipeline import Pipeline
    from ja_ner.request import render_result
    from ja_ner.settings import Settings
    from ja_ner.types import Document, DocumentResult

    pipeline = Pipeline.load(model_dir, Settings.from_mapping(settings))
    docs = [Document(t) for t in texts]

    def answers(outcomes: Sequence) -> list[Answer]:
        return [
            answer_of(render_result(d, o)["entities"]) if isinstance(o, DocumentResult) else ((), ())
            for d, o in zip(docs, outcomes, strict=True)
        ]

    alone = answers([pipeline.predict([d])[0] for d in docs])
    batched: list = [None] * len(docs)
    for group in shuffled_batches(len(docs), batch, seed):
        for i, outcome in zip(group, pipeline.predict([docs[i] for i in group]), strict=True):
            batched[i] = outcome
    streamed = [[o for final, o in pipeline.predict_stream(d) if final][0] for d in docs]
    results = [
        compare(f"client batches of {batch}", alone, answers(batched)),
        compare("streamed (final answer)", alone, answers(streamed)),
    ]
    return {"plan": pipeline.plan.describe(), "comparisons": [asdict(r) | {"invariant": r.invariant} for r in results]}


def through_server(texts: list[str], url: str, *, batch: int, users: int, seed: int, token: str | None) -> dict:
    """Alone vs client batches vs concurrent users, against a running server's REST endpoint."""
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    session = requests.Session()

    def post(body: dict) -> dict:
        response = session.post(url, json=body, headers=headers, timeout=120)
        response.raise_for_status()
        return response.json()

    def one(text: str) -> Answer:
        with requests.post(url, json={"text": text}, headers=headers, timeout=120) as response:
            response.raise_for_status()
            return answer_of(response.json()["entities"])

    alone = [answer_of(post({"text": t})["entities"]) for t in texts]
    batched: list = [None] * len(texts)
    for group in shuffled_batches(len(texts), batch, seed):
        for i, result in zip(group, post({"texts": [texts[i] for i in group]})["results"], strict=True):
            batched[i] = answer_of(result["entities"])
    order = [i for group in shuffled_batches(len(texts), len(texts), seed + 1) for i in group]
    with ThreadPoolExecutor(users) as pool:
        concurrent = dict(zip(order, pool.map(one, [texts[i] for i in order]), strict=True))
    results = [
        compare(f"client batches of {batch}", alone, batched),
        compare(f"{users} concurrent users", alone, [concurrent[i] for i in range(len(texts))]),
    ]
    return {"url": url, "comparisons": [asdict(r) | {"invariant": r.invariant} for r in results]}


def dev_texts(limit: int | None) -> list[str]:
    """The dev split's texts (``JA_NER_DATA`` / ../shared), else the challenge set's."""
    from training.challenge import load as load_challenge
    from training.data import load_split

    try:
        texts = [e.text for e in load_split("dev")]
    except FileNotFoundError:
        texts = [item.example.text for item in load_challenge()]
    return texts[:limit] if limit else texts


def main(argv: list[str] | None = None, *, texts_of: Callable[[int | None], list[str]] = dev_texts) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/ja-ner-small"))
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--threads", default="auto")
    parser.add_argument("--batch-invariant", default="true")
    parser.add_argument("--url", help="a running server's /predictions/<model> URL (else in process)")
    parser.add_argument("--token", help="inference token for --url")
    parser.add_argument("--batch", type=int, default=32, help="texts per client batch")
    parser.add_argument("--users", type=int, default=16, help="concurrent users (--url)")
    parser.add_argument("--limit", type=int, help="only the first N texts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    texts = texts_of(args.limit)
    if args.url:
        result = through_server(texts, args.url, batch=args.batch, users=args.users, seed=args.seed, token=args.token)
    else:
        settings = {
            "dtype": args.dtype,
            "runtime": args.runtime,
            "threads": args.threads,
            "batch_invariant": args.batch_invariant,
        }
        result = in_process(texts, settings, batch=args.batch, seed=args.seed, model_dir=args.model)
    result["texts"] = len(texts)
    text = json.dumps(result, ensure_ascii=False, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    sys.exit(0 if all(c["invariant"] for c in main()["comparisons"]) else 1)
