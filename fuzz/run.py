"""Hostile requests and good neighbours in the same TorchServe batches, REST and gRPC, against a real server.

    python -m fuzz.run --seconds 1200 --seed 7                  # starts its own TorchServe (tiny delay, batchSize 8)
    python -m fuzz.run --seconds 60 --handler dtype=float32      # handler settings of that server
    python -m fuzz.run --url http://127.0.0.1:8080 --grpc 127.0.0.1:7070 --mgmt http://127.0.0.1:8081

Each round sends ``hostile`` cases from ``fuzz.hostile`` and ``good`` known requests at the same
moment, so TorchServe batches them together (its batch delay must be longer than the spread of a
round: the servers started here and in the tests use batchSize 8, maxBatchDelay 50 ms). It
counts cases sent, answers per status, hostile requests answered outside what they must get,
good neighbours whose answer differs from the same request's answer alone, worker restarts
(the worker pids before and after) and health afterwards. ``make fuzz`` runs it long; a short,
seeded run is part of ``make test`` (tests/integration/test_fuzz.py). Writes
build/fuzz/<UTC timestamp>/summary.json when run from the command line; exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import requests
from google.protobuf import empty_pb2

from fuzz import hostile
from ja_ner.errors import ALL_ERRORS
from ja_ner.proto_gen import inference_pb2, inference_pb2_grpc

log = logging.getLogger("fuzz")

REPO = Path(__file__).resolve().parent.parent
OUR_TYPES = frozenset(e.type for e in ALL_ERRORS)
# Answers of TorchServe's own frontend, before the handler (docs/operations.md, "Bad input"): a form
# field its decoder reads as having no name is a 500 ErrorDataDecoderException.
FRONTEND_5XX = frozenset({"ErrorDataDecoderException"})
GRPC_OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
TIMEOUT_S = 120


@dataclass(frozen=True)
class Target:
    """Where the server listens, and its keys (None: token authorisation off)."""

    rest_url: str
    grpc_target: str
    mgmt_url: str
    model: str = "ja_ner"
    token: str | None = None
    mgmt_token: str | None = None


@dataclass(frozen=True)
class Reply:
    """One answer: an HTTP-like status (gRPC errors: ``grpc:<CODE>``), the JSON body if any."""

    status: int | str
    body: Any = None
    partials: int = 0  # gRPC StreamPredictions: messages before the last


# The good neighbours: requests that are always read, each with its answer alone measured first.
GOOD: tuple[hostile.Case, ...] = (
    hostile.Case("good", False, hostile.GOOD_TEXT.encode(), hostile.TEXT),
    hostile.Case("good", False, json.dumps({"text": hostile.GOOD_TEXT}).encode(), hostile.JSON),
    hostile.Case("good", False, json.dumps({"texts": [hostile.GOOD_TEXT, "東京都に住む"]}).encode(), hostile.JSON),
    hostile.Case("good", False, grpc={"data": hostile.GOOD_TEXT.encode()}),
    hostile.Case("good", False, grpc={"data": hostile.GOOD_TEXT.encode(), "options": b'{"aggregation": "max"}'}),
    hostile.Case("good", False, form={"data": hostile.GOOD_TEXT.encode(), "options": b'{"offsets": "utf16"}'}),
    hostile.Case("good", False, grpc={"data": hostile.GOOD_TEXT.encode(), "stream": b"true"}, stream=True),
)


class Client:
    """REST and gRPC access to one server; thread-safe (one gRPC channel, a requests call per send)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.url = f"{target.rest_url}/predictions/{target.model}"
        self.auth = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        self.metadata = (("authorization", f"Bearer {target.token}"),) if target.token else ()
        self.channel = grpc.insecure_channel(target.grpc_target, options=GRPC_OPTIONS)
        self.stub = inference_pb2_grpc.InferenceAPIsServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def send(self, case: hostile.Case) -> Reply:
        if case.grpc is not None:
            return self._grpc(case)
        if case.form is not None:
            files = {name: (None, value) for name, value in case.form.items()}
            response = requests.post(self.url, files=files, headers=self.auth, timeout=TIMEOUT_S)
        else:
            headers = dict(self.auth)
            if case.content_type is not None:
                headers["Content-Type"] = case.content_type
            response = requests.post(self.url, data=case.body, headers=headers, timeout=TIMEOUT_S)
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text[:200]
        return Reply(response.status_code, body)

    def _grpc(self, case: hostile.Case) -> Reply:
        request = inference_pb2.PredictionsRequest(model_name=self.target.model, input=case.grpc)
        try:
            if case.stream:
                messages = list(self.stub.StreamPredictions(request, timeout=TIMEOUT_S, metadata=self.metadata))
                reply, partials = messages[-1], len(messages) - 1
            else:
                reply, partials = self.stub.Predictions(request, timeout=TIMEOUT_S, metadata=self.metadata), 0
        except grpc.RpcError as err:
            return Reply(f"grpc:{err.code().name}", err.details())
        body = json.loads(reply.prediction)
        # a refused request comes back with status OK and the error JSON (docs/grpc.md)
        status = body["code"] if isinstance(body, dict) and {"code", "type"} <= set(body) else 200
        return Reply(status, body, partials)

    def healthy(self) -> bool:
        ping = requests.get(f"{self.target.rest_url}/ping", headers=self.auth, timeout=10)
        health = self.stub.Ping(empty_pb2.Empty(), timeout=10, metadata=self.metadata)
        return ping.status_code == 200 and ping.json().get("status") == "Healthy" and "Healthy" in health.health

    def worker_pids(self) -> list[int]:
        token = self.target.mgmt_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = requests.get(f"{self.target.mgmt_url}/models/{self.target.model}", headers=headers, timeout=10)
        response.raise_for_status()
        return sorted(w["pid"] for m in response.json() for w in m["workers"])


def verdict(case: hostile.Case, reply: Reply) -> str:
    """``ok``, ``frontend`` (TorchServe's own documented answer) or what is wrong with a hostile case's answer."""
    status, body = reply.status, reply.body
    ours = isinstance(body, dict) and body.get("type") in OUR_TYPES and body.get("code") == status
    if status == 200:
        return "accepted a request it cannot read" if case.refused else "ok"
    if isinstance(status, int) and 400 <= status < 500:
        return "ok" if ours or not isinstance(body, dict) or body.get("type") not in OUR_TYPES else "bad error JSON"
    if isinstance(body, dict) and body.get("type") in FRONTEND_5XX:
        return "frontend"
    return f"answered {status}"


@dataclass
class Report:
    """What a run sent and got; ``goals_met`` is the verdict."""

    seed: int
    seconds: float
    rounds: int = 0
    hostile: int = 0
    good: int = 0
    kinds: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)  # "rest 400", "grpc 413", "grpc grpc:CANCELLED"...
    frontend: Counter = field(default_factory=Counter)  # TorchServe's own documented answers, by type
    hostile_failures: list[dict[str, Any]] = field(default_factory=list)
    failure_kinds: Counter = field(default_factory=Counter)  # (kind, verdict) of each hostile failure
    good_failures: list[dict[str, Any]] = field(default_factory=list)
    restarts: int = 0
    healthy_after: bool = False
    largest_bytes: int = 0

    @property
    def goals_met(self) -> bool:
        return not self.hostile_failures and not self.good_failures and self.restarts == 0 and self.healthy_after

    def summary(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "seconds": round(self.seconds, 1),
            "rounds": self.rounds,
            "hostile_sent": self.hostile,
            "good_sent": self.good,
            "kinds": dict(sorted(self.kinds.items())),
            "statuses": dict(sorted(self.statuses.items())),
            "frontend_answers": dict(self.frontend),
            "hostile_failures": len(self.hostile_failures),
            "hostile_failure_kinds": {f"{k} / {v}": n for (k, v), n in sorted(self.failure_kinds.items())},
            "hostile_failure_samples": self.hostile_failures[:10],
            "good_neighbour_failures": len(self.good_failures),
            "good_failure_samples": self.good_failures[:10],
            "worker_restarts": self.restarts,
            "healthy_after": self.healthy_after,
            "largest_request_bytes": self.largest_bytes,
            "goals_met": self.goals_met,
        }


def _together(calls: list[Callable[[], Reply]], pool: ThreadPoolExecutor) -> list[Reply | BaseException]:
    """Start every call at the same moment (so TorchServe batches them); each reply or its exception."""
    barrier = threading.Barrier(len(calls))

    def go(call: Callable[[], Reply]) -> Reply:
        barrier.wait(timeout=30)
        return call()

    futures = [pool.submit(go, call) for call in calls]
    out: list[Reply | BaseException] = []
    for future in futures:
        try:
            out.append(future.result())
        except Exception as exc:  # a transport failure counts against the case, it does not stop the run
            out.append(exc)
    return out


def run(target: Target, *, seconds: float, seed: int, hostile_per_round: int = 4, good_per_round: int = 4) -> Report:
    """Fuzz ``target`` for ``seconds`` with cases drawn from ``random.Random(seed)``."""
    rng = random.Random(seed)
    client = Client(target)
    report = Report(seed, seconds)
    try:
        alone = [client.send(g) for g in GOOD]  # each good request's answer on its own
        for g, reply in zip(GOOD, alone, strict=True):
            if reply.status != 200:
                raise RuntimeError(f"a good request failed alone: {g} -> {reply}")
        pids = client.worker_pids()
        started = time.monotonic()
        with ThreadPoolExecutor(hostile_per_round + good_per_round) as pool:
            while time.monotonic() - started < seconds:
                cases = [hostile.case(rng) for _ in range(hostile_per_round)]
                goods = [rng.randrange(len(GOOD)) for _ in range(good_per_round)]
                calls = [lambda c=c: client.send(c) for c in cases] + [lambda i=i: client.send(GOOD[i]) for i in goods]
                replies = _together(calls, pool)
                _score(report, cases, goods, alone, replies)
                report.rounds += 1
                if report.rounds % 50 == 0:
                    failed = len(report.hostile_failures), len(report.good_failures)
                    log.info("%d rounds, %d hostile, %d good; failures: %s hostile, %s good", report.rounds,
                             report.hostile, report.good, *failed)  # fmt: skip
        report.seconds = time.monotonic() - started
        report.restarts = len(set(pids) - set(client.worker_pids()))
        report.healthy_after = client.healthy() and all(
            client.send(g).body == a.body for g, a in zip(GOOD, alone, strict=True)
        )
    finally:
        client.close()
    return report


def _score(
    report: Report,
    cases: list[hostile.Case],
    goods: list[int],
    alone: list[Reply],
    replies: list[Reply | BaseException],
) -> None:
    for case, reply in zip(cases, replies[: len(cases)], strict=True):
        report.hostile += 1
        report.kinds[case.kind] += 1
        report.largest_bytes = max(report.largest_bytes, case.size)
        if isinstance(reply, BaseException):
            report.statuses[f"{case.transport} exception"] += 1
            report.hostile_failures.append({**_describe(case), "error": repr(reply)[:300]})
            report.failure_kinds[(case.kind, "exception")] += 1
            continue
        report.statuses[f"{case.transport} {reply.status}"] += 1
        found = verdict(case, reply)
        if found == "frontend":
            report.frontend[reply.body.get("type")] += 1
        elif found != "ok":
            report.hostile_failures.append({**_describe(case), "verdict": found, "answer": str(reply.body)[:300]})
            report.failure_kinds[(case.kind, found)] += 1
    for index, reply in zip(goods, replies[len(cases) :], strict=True):
        report.good += 1
        if isinstance(reply, BaseException) or reply.status != 200 or reply.body != alone[index].body:
            got = repr(reply)[:300] if isinstance(reply, BaseException) else f"{reply.status} {str(reply.body)[:300]}"
            report.good_failures.append({"good": index, "got": got, "alone": str(alone[index].body)[:300],
                                         "batched_with": [c.kind for c in cases]})  # fmt: skip


def _describe(case: hostile.Case) -> dict[str, Any]:
    sizes = {key: len(value) for key, value in (case.form or case.grpc or {}).items()}
    parts = case.body if case.body is not None else json.dumps(sizes)
    head = parts[:120] if isinstance(parts, str) else parts[:120].decode("utf-8", "backslashreplace")
    return {"kind": case.kind, "transport": case.transport, "content_type": case.content_type, "bytes": case.size,
            "refused": case.refused, "head": head}  # fmt: skip


# -- command line: a server of its own, or a running one ------------------------------------------------


def _own_server(workdir: Path, handler: dict[str, str]) -> Any:
    from handler.archive import DEFAULT_MODEL, build_mar
    from handler.server import start_on_free_ports

    store = workdir / "model_store"
    extra = {"handler": handler} if handler else {}
    build_mar(DEFAULT_MODEL, store, "ja_ner", batchSize=8, maxBatchDelay=50, **extra)
    overrides = {"load_models": "ja_ner=ja_ner.mar", "default_workers_per_model": "1"}
    return start_on_free_ports(overrides, store, workdir / "work")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--url", help="a running server's inference URL (default: start one here)")
    parser.add_argument("--grpc", help="its gRPC inference target, host:port")
    parser.add_argument("--mgmt", help="its management URL")
    parser.add_argument("--model", default="ja_ner")
    parser.add_argument("--handler", action="append", default=[], metavar="KEY=VALUE",
                        help="a handler setting of the server started here (model-config.yaml handler:)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="summary.json (default build/fuzz/<timestamp>/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = args.out or REPO / "build" / "fuzz" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") / "summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    server = None
    if args.url:
        target = Target(args.url, args.grpc or "127.0.0.1:7070", args.mgmt or "http://127.0.0.1:8081", args.model)
    else:
        from handler.server import stop

        handler = dict(item.split("=", 1) for item in args.handler)
        server = _own_server(out.parent / "server", handler)
        target = Target(server.rest_url, server.grpc_target, server.mgmt_url, "ja_ner",
                        server.token(), server.token("management"))  # fmt: skip
    try:
        log.info("fuzzing %s for %.0f s, seed %d", target.rest_url, args.seconds, args.seed)
        report = run(target, seconds=args.seconds, seed=args.seed)
    finally:
        if server is not None:
            stop(server)
    summary = report.summary()
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"summary: {out}")
    return 0 if report.goals_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
