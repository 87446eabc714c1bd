"""Soak test: sustained REST + gRPC load for a long time; failures, p99 drift and worker RSS growth.

    python tools/soak.py --duration 10m                    # starts its own TorchServe (config.properties)
    python tools/soak.py --duration 3m --model-dir DIR     # archive DIR first (e.g. a tiny test model)
    python tools/soak.py --duration 10m --url http://127.0.0.1:8080 --grpc 127.0.0.1:7070 \\
        --mgmt http://127.0.0.1:8081 --key-file key_file.json   # an already running server (same host)
    (add --tls-ca server.crt for config.prod.properties: https REST and TLS gRPC)

Writes build/soak/<UTC timestamp>/summary.json (and samples.csv) and prints the summary. Goals
(issue 7): no failed request, worker RSS growth under 10% between the end of warm-up and the end.
The exit status is 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
import re
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import grpc  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

from handler.server import Server, free_port, start, stop  # noqa: E402
from ja_ner.proto_gen import inference_pb2, inference_pb2_grpc  # noqa: E402

log = logging.getLogger("soak")
RSS_GOAL_PCT = 10.0
FALLBACK_TEXTS = (
    "鈴木は熊本県の阿蘇山に登った",
    "トヨタ自動車は愛知県豊田市に本社を置く",
    "日本銀行の植田和男総裁は東京都内で会見した",
)


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``10m`` or ``1h``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"duration like 90s, 10m or 1h, got {text!r}")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def load_texts() -> list[str]:
    """News-like and short texts of the load-test corpus (fallback: three sentences)."""
    texts: list[str] = []
    for name in ("news.txt", "short.txt"):
        path = REPO / "loadtest" / "corpus" / name
        if path.exists():
            texts += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return texts or list(FALLBACK_TEXTS)


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the start of the run (request start)
    protocol: str  # rest | grpc
    ms: float
    ok: bool
    error: str


@dataclass(frozen=True)
class Target:
    rest_url: str  # http(s)://host:port
    grpc_target: str  # host:port
    mgmt_url: str
    model: str
    key_file: Path | None
    tls_ca: Path | None = None  # PEM to trust for https REST and TLS gRPC

    def key(self, kind: str) -> str | None:
        if self.key_file is None or not self.key_file.exists():
            return None
        return json.loads(self.key_file.read_text())[kind]["key"]


class Soak:
    """Closed-loop load threads plus a sampler of the worker's memory."""

    def __init__(self, target: Target, rest_threads: int, grpc_threads: int, texts: list[str]) -> None:
        self.target = target
        self.texts = texts
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self.samples: list[Sample] = []
        self.memory: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._rest, args=(i,), daemon=True) for i in range(rest_threads)]
        self.threads += [threading.Thread(target=self._grpc, args=(i,), daemon=True) for i in range(grpc_threads)]
        self.threads.append(threading.Thread(target=self._sample_memory, daemon=True))

    def _add(self, start: float, protocol: str, ok: bool, error: str = "") -> None:
        now = time.monotonic()
        with self.lock:
            self.samples.append(Sample(start - self.t0, protocol, (now - start) * 1000.0, ok, error))

    def _rest(self, seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        # per request: a Session.verify is overridden by REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
        verify: str | bool = str(self.target.tls_ca) if self.target.tls_ca else True
        url = f"{self.target.rest_url}/predictions/{self.target.model}"
        while not self.stop.is_set():
            token = self.target.key("inference")
            headers = {"Content-Type": "text/plain; charset=utf-8"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            start = time.monotonic()
            try:
                text = rng.choice(self.texts).encode()
                resp = session.post(url, data=text, headers=headers, timeout=60, verify=verify)
                ok = resp.status_code == 200 and "entities" in resp.json()
                self._add(start, "rest", ok, "" if ok else f"HTTP {resp.status_code} {resp.text[:80]}")
            except (requests.RequestException, ValueError) as exc:
                self._add(start, "rest", False, type(exc).__name__)

    def _grpc(self, seed: int) -> None:
        rng = random.Random(1000 + seed)
        with self._channel() as channel:
            stub = inference_pb2_grpc.InferenceAPIsServiceStub(channel)
            while not self.stop.is_set():
                token = self.target.key("inference")
                metadata = (("authorization", f"Bearer {token}"),) if token else ()
                request = inference_pb2.PredictionsRequest(
                    model_name=self.target.model, input={"data": rng.choice(self.texts).encode()}
                )
                start = time.monotonic()
                try:
                    body = json.loads(stub.Predictions(request, timeout=60, metadata=metadata).prediction)
                    ok = "entities" in body
                    self._add(start, "grpc", ok, "" if ok else f"error body {str(body)[:80]}")
                except grpc.RpcError as exc:
                    self._add(start, "grpc", False, f"{exc.code().name} {(exc.details() or '')[:80]}")
                except ValueError as exc:
                    self._add(start, "grpc", False, type(exc).__name__)

    def _channel(self) -> grpc.Channel:
        if self.target.tls_ca is None:
            return grpc.insecure_channel(self.target.grpc_target)
        creds = grpc.ssl_channel_credentials(root_certificates=self.target.tls_ca.read_bytes())
        # the certificate names localhost; the target is usually an IP address
        options = [("grpc.ssl_target_name_override", "localhost")]
        return grpc.secure_channel(self.target.grpc_target, creds, options=options)

    def worker_pids(self) -> list[int]:
        token = self.target.key("management")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = requests.get(f"{self.target.mgmt_url}/models/{self.target.model}", headers=headers, timeout=10)
        resp.raise_for_status()
        return sorted(w["pid"] for m in resp.json() for w in m["workers"] if w.get("pid"))

    def _sample_memory(self) -> None:
        while not self.stop.wait(5.0):
            try:
                pids = self.worker_pids()
                rss = sum(psutil.Process(pid).memory_info().rss for pid in pids)
            except (requests.RequestException, psutil.Error) as exc:
                log.warning("memory sample failed: %s", exc)
                continue
            with self.lock:
                self.memory.append({"t": round(time.monotonic() - self.t0, 1), "pids": pids, "rss_mb": rss / 2**20})

    def run(self, duration: float) -> None:
        self.t0 = time.monotonic()
        for thread in self.threads:
            thread.start()
        next_note = 60.0
        while (elapsed := time.monotonic() - self.t0) < duration:
            time.sleep(min(1.0, duration - elapsed))
            if elapsed >= next_note:
                with self.lock:
                    done, failed = len(self.samples), sum(not s.ok for s in self.samples)
                log.info("%4.0fs: %d requests, %d failed", elapsed, done, failed)
                next_note += 60.0
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=65)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return round(ordered[rank - 1], 1)


def summarise(soak: Soak, duration: float, warmup: float) -> dict[str, Any]:
    """Failures, per-minute latency (after warm-up), p99 drift and RSS growth."""
    samples = [s for s in soak.samples if s.t >= warmup]
    minutes: list[dict[str, Any]] = []
    start = warmup
    while start + 30.0 <= duration:  # a trailing part shorter than 30 s is not reported
        part = [s for s in samples if start <= s.t < start + 60.0]
        row: dict[str, Any] = {"from_s": round(start), "requests": len(part), "failed": sum(not s.ok for s in part)}
        for protocol in ("rest", "grpc"):
            ms = [s.ms for s in part if s.protocol == protocol and s.ok]
            row[f"{protocol}_p50_ms"] = percentile(ms, 50)
            row[f"{protocol}_p99_ms"] = percentile(ms, 99)
        row["p99_ms"] = percentile([s.ms for s in part if s.ok], 99)
        minutes.append(row)
        start += 60.0
    p99s = [m["p99_ms"] for m in minutes if m["p99_ms"] is not None]
    drift = round(100.0 * (p99s[-1] - p99s[0]) / p99s[0], 1) if len(p99s) >= 2 and p99s[0] else None
    errors: dict[str, int] = {}
    for s in soak.samples:
        if not s.ok:
            errors[s.error] = errors.get(s.error, 0) + 1
    memory = soak.memory
    after = [m for m in memory if m["t"] >= warmup]
    rss_warm = after[0]["rss_mb"] if after else None
    rss_end = memory[-1]["rss_mb"] if memory else None
    growth = round(100.0 * (rss_end - rss_warm) / rss_warm, 2) if rss_warm and rss_end else None
    restarts = len({tuple(m["pids"]) for m in memory}) - 1 if memory else None
    total = len(soak.samples)
    failed = sum(not s.ok for s in soak.samples)
    return {
        "duration_s": round(duration),
        "warmup_s": round(warmup),
        "requests": total,
        "requests_per_s": round(total / duration, 1) if duration else None,
        "by_protocol": {p: sum(s.protocol == p for s in soak.samples) for p in ("rest", "grpc")},
        "failed": failed,
        "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:10]),
        "p99_ms_overall": percentile([s.ms for s in samples if s.ok], 99),
        "p50_ms_overall": percentile([s.ms for s in samples if s.ok], 50),
        "per_minute": minutes,
        "p99_drift_pct": drift,  # last full minute vs first minute after warm-up
        "worker_rss_mb_after_warmup": round(rss_warm, 1) if rss_warm else None,
        "worker_rss_mb_end": round(rss_end, 1) if rss_end else None,
        "worker_rss_mb_max": round(max(m["rss_mb"] for m in memory), 1) if memory else None,
        "worker_rss_growth_pct": growth,
        "worker_restarts": restarts,
        "goals": {
            "no_failures": failed == 0,
            f"rss_growth_under_{RSS_GOAL_PCT:g}pct": growth is not None and growth < RSS_GOAL_PCT,
        },
    }


def _own_server(args: argparse.Namespace, out: Path) -> tuple[Server, Target]:
    """Start TorchServe (config.properties, free loopback ports) serving the chosen archive."""
    store = out / "model_store"
    store.mkdir(parents=True)
    if args.model_dir:
        from handler import archive

        mar = archive.build(str(args.model_dir), "ja_ner", "1.0", store, REPO / "model-config.yaml")
    else:
        mar = store / "ja_ner.mar"
        if not args.mar.exists():
            raise SystemExit(f"{args.mar} not found: run `make archive` (or pass --model-dir)")
        mar.symlink_to(args.mar.resolve())
    overrides = {
        "inference_address": f"http://127.0.0.1:{free_port()}",
        "management_address": f"http://127.0.0.1:{free_port()}",
        "metrics_address": f"http://127.0.0.1:{free_port()}",
        "grpc_inference_port": str(free_port()),
        "grpc_management_port": str(free_port()),
        "initial_worker_port": str(free_port()),  # worker sockets live in /tmp whatever TMPDIR says
        "load_models": f"ja_ner={mar.name}",
    }
    server = start(args.config, store, out / "work", overrides)
    return server, Target(
        server.rest_url, server.grpc_target, server.mgmt_url, "ja_ner", out / "work" / "key_file.json"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=parse_duration, default=parse_duration("10m"))
    parser.add_argument("--warmup", type=parse_duration, default=None, help="default: 20%% of duration, at most 60s")
    parser.add_argument("--rest-threads", type=int, default=2)
    parser.add_argument("--grpc-threads", type=int, default=2)
    parser.add_argument("--mar", type=Path, default=REPO / "model_store" / "ja_ner.mar")
    parser.add_argument("--model-dir", type=Path, help="archive this model folder instead of using --mar")
    parser.add_argument("--config", type=Path, default=REPO / "config.properties")
    parser.add_argument("--url", help="REST inference URL of a running server (skips starting one)")
    parser.add_argument("--grpc", help="gRPC inference host:port of the running server")
    parser.add_argument("--mgmt", help="management URL of the running server (worker pids for RSS)")
    parser.add_argument("--key-file", type=Path, help="key_file.json of the running server (token auth on)")
    parser.add_argument("--tls-ca", type=Path, help="PEM certificate to trust (https REST, TLS gRPC)")
    parser.add_argument("--model", default="ja_ner")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "soak")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    warmup = args.warmup if args.warmup is not None else min(60.0, 0.2 * args.duration)
    out = args.out / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True)
    server = None
    if args.url:
        if not (args.grpc and args.mgmt):
            parser.error("--url needs --grpc and --mgmt too")
        target = Target(args.url.rstrip("/"), args.grpc, args.mgmt.rstrip("/"), args.model, args.key_file, args.tls_ca)
    else:
        server, target = _own_server(args, out)
    try:
        soak = Soak(target, args.rest_threads, args.grpc_threads, load_texts())
        log.info(
            "soak for %.0fs (warm-up %.0fs) against %s and %s",
            args.duration,
            warmup,
            target.rest_url,
            target.grpc_target,
        )
        soak.run(args.duration)
    finally:
        if server is not None:
            stop(server)
    summary = {
        "target": {"rest": target.rest_url, "grpc": target.grpc_target},
        **summarise(soak, args.duration, warmup),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    with open(out / "samples.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["t_s", "protocol", "ms", "ok", "error"])
        writer.writerows([round(s.t, 3), s.protocol, round(s.ms, 2), int(s.ok), s.error] for s in soak.samples)
    (out / "memory.json").write_text(json.dumps(soak.memory))
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"written: {out / 'summary.json'}")
    return 0 if all(summary["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
