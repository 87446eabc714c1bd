"""Soak test: the Locust suite (loadtest/run.py) for a long time, plus worker memory samples.

    python tools/soak.py --duration 10m                    # starts its own TorchServe (config.properties)
    python tools/soak.py --duration 3m --model-dir DIR     # archive DIR first (e.g. a tiny test model)
    python tools/soak.py --duration 10m --url http://127.0.0.1:8080 --grpc 127.0.0.1:7070 \\
        --mgmt http://127.0.0.1:8081 --key-file key_file.json   # an already running server (same host)

The load is the project's one load test (Locust, REST and gRPC users, closed loop, the load-test
corpus): this script adds what a long run needs on top of it, from Locust's per-request samples
and a psutil sampler of the workers: p99 per minute and its drift, worker RSS growth, restarts.
Writes build/soak/<UTC timestamp>/summary.json (and memory.json; the Locust run's own files under
locust/) and prints the summary. Goals (issue 7): no failed request, worker RSS growth under 10%
between the end of warm-up and the end. The exit status is 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
import requests  # noqa: E402

from handler.server import Server, port_overrides, read_key, start, stop  # noqa: E402
from loadtest import run as loadtest_run  # noqa: E402
from loadtest.samples import Sample, read_samples  # noqa: E402
from loadtest.stats import percentile, protocol_of  # noqa: E402

log = logging.getLogger("soak")
RSS_GOAL_PCT = 10.0


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``10m`` or ``1h``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"duration like 90s, 10m or 1h, got {text!r}")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


class MemorySampler:
    """Every ``every`` seconds: the model's worker pids (management API) and their summed RSS."""

    def __init__(self, mgmt_url: str, model: str, key_file: Path | None, every: float = 5.0) -> None:
        self.mgmt_url, self.model, self.key_file, self.every = mgmt_url, model, key_file, every
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.time()

    def worker_pids(self) -> list[int]:
        token = read_key(self.key_file, "management") if self.key_file else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = requests.get(f"{self.mgmt_url}/models/{self.model}", headers=headers, timeout=10)
        resp.raise_for_status()
        return sorted(w["pid"] for m in resp.json() for w in m["workers"] if w.get("pid"))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                pids = self.worker_pids()
                rss = sum(psutil.Process(pid).memory_info().rss for pid in pids)
            except (requests.RequestException, psutil.Error) as exc:
                log.warning("memory sample failed: %s", exc)
                continue
            self.samples.append({"t": round(time.time() - self.t0, 1), "pids": pids, "rss_mb": rss / 2**20})

    def __enter__(self) -> MemorySampler:
        self.t0 = time.time()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _p(values: Sequence[float], q: float) -> float | None:
    return round(percentile(values, q), 1) if values else None


def summarise(
    samples: Sequence[Sample], memory: list[dict[str, Any]], *, t0: float, duration: float, warmup: float
) -> dict[str, Any]:
    """Failures, per-minute latency after warm-up, p99 drift, RSS growth and restarts.

    Args:
        samples: Locust's per-request samples (``start`` in epoch seconds).
        memory: the sampler's rows (``t`` in seconds since ``t0``, the start of the load).
    """
    rel = [(s.start - t0, s) for s in samples]
    warm = [(t, s) for t, s in rel if t >= warmup]
    minutes: list[dict[str, Any]] = []
    start = warmup
    while start + 30.0 <= duration:  # a trailing part shorter than 30 s is not reported
        part = [s for t, s in warm if start <= t < start + 60.0]
        row: dict[str, Any] = {"from_s": round(start), "requests": len(part), "failed": sum(not s.ok for s in part)}
        for protocol in ("REST", "gRPC"):
            ms = [s.response_time_ms for s in part if s.ok and protocol_of(s.request_type) == protocol]
            row[f"{protocol.lower()}_p50_ms"] = _p(ms, 50)
            row[f"{protocol.lower()}_p99_ms"] = _p(ms, 99)
        row["p99_ms"] = _p([s.response_time_ms for s in part if s.ok], 99)
        minutes.append(row)
        start += 60.0
    p99s = [m["p99_ms"] for m in minutes if m["p99_ms"] is not None]
    drift = round(100.0 * (p99s[-1] - p99s[0]) / p99s[0], 1) if len(p99s) >= 2 and p99s[0] else None
    errors = Counter(s.error for s in samples if not s.ok)
    after = [m for m in memory if m["t"] >= warmup]
    rss_warm = after[0]["rss_mb"] if after else None
    rss_end = memory[-1]["rss_mb"] if memory else None
    growth = round(100.0 * (rss_end - rss_warm) / rss_warm, 2) if rss_warm and rss_end else None
    restarts = len({tuple(m["pids"]) for m in memory}) - 1 if memory else None
    failed = sum(not s.ok for s in samples)
    ok_ms = [s.response_time_ms for _, s in warm if s.ok]
    return {
        "duration_s": round(duration),
        "warmup_s": round(warmup),
        "requests": len(samples),
        "requests_per_s": round(len(samples) / duration, 1) if duration else None,
        "by_protocol": dict(Counter(protocol_of(s.request_type) for s in samples)),
        "failed": failed,
        "errors": dict(errors.most_common(10)),
        "p50_ms_overall": _p(ok_ms, 50),
        "p99_ms_overall": _p(ok_ms, 99),
        "per_minute": minutes,
        "p99_drift_pct": drift,  # last full minute vs first minute after warm-up
        "worker_rss_mb_after_warmup": round(rss_warm, 1) if rss_warm else None,
        "worker_rss_mb_end": round(rss_end, 1) if rss_end else None,
        "worker_rss_mb_max": round(max(m["rss_mb"] for m in memory), 1) if memory else None,
        "worker_rss_growth_pct": growth,
        "workers": len(memory[-1]["pids"]) if memory else None,
        "worker_restarts": restarts,
        "goals": {
            "no_failures": failed == 0 and len(samples) > 0,
            f"rss_growth_under_{RSS_GOAL_PCT:g}pct": growth is not None and growth < RSS_GOAL_PCT,
        },
    }


def _own_server(args: argparse.Namespace, out: Path) -> Server:
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
    return start(args.config, store, out / "work", {**port_overrides(), "load_models": f"ja_ner={mar.name}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=parse_duration, default=parse_duration("10m"))
    parser.add_argument("--warmup", type=parse_duration, default=None, help="default: 20%% of duration, at most 60s")
    parser.add_argument("--users", type=int, default=2, help="Locust users per protocol (REST and gRPC)")
    parser.add_argument("--mix", default="mixed", choices=["short", "mixed", "long"], help="load-test corpus mix")
    parser.add_argument("--mar", type=Path, default=REPO / "model_store" / "ja_ner.mar")
    parser.add_argument("--model-dir", type=Path, help="archive this model folder instead of using --mar")
    parser.add_argument("--config", type=Path, default=REPO / "config.properties")
    parser.add_argument("--url", help="REST base URL of a running server (skips starting one)")
    parser.add_argument("--grpc", help="gRPC inference host:port of the running server")
    parser.add_argument("--mgmt", help="management URL of the running server (worker pids for RSS)")
    parser.add_argument("--metrics", help="Prometheus URL of the running server (default: host:8082/metrics)")
    parser.add_argument("--key-file", type=Path, help="key_file.json of the running server (token auth on)")
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
        rest, grpc_target, mgmt, key_file = args.url.rstrip("/"), args.grpc, args.mgmt.rstrip("/"), args.key_file
        metrics = args.metrics or ""
    else:
        server = _own_server(args, out)
        rest, grpc_target, mgmt = server.rest_url, server.grpc_target, server.mgmt_url
        key_file, metrics = server.workdir / "key_file.json", server.metrics_url + "/metrics"
    token = (read_key(key_file) if key_file else None) or ""
    locust_args = ["--host", rest, "--grpc-target", grpc_target, "--protocol", "both", "--users", str(args.users)]
    locust_args += ["--run-time", f"{args.duration:.0f}s", "--mix", args.mix, "--model", args.model]
    locust_args += ["--out", str(out / "locust"), "--token", token] + (["--metrics-url", metrics] if metrics else [])
    log.info("soak for %.0fs (warm-up %.0fs) against %s and %s", args.duration, warmup, rest, grpc_target)
    try:
        with MemorySampler(mgmt, args.model, key_file) as sampler:
            t0 = time.time()
            code = loadtest_run.main(locust_args)
    finally:
        if server is not None:
            stop(server)
    samples_csv = out / "locust" / "samples.csv"
    if code not in (0, 1) or not samples_csv.exists():
        log.error("the Locust run failed (exit %s); see %s", code, out / "locust")
        return 2
    summary = {
        "target": {"rest": rest, "grpc": grpc_target},
        "load": f"Locust, {args.users} REST + {args.users} gRPC users, closed loop, mix {args.mix}",
        **summarise(read_samples(samples_csv), sampler.samples, t0=t0, duration=args.duration, warmup=warmup),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    (out / "memory.json").write_text(json.dumps(sampler.samples))
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"written: {out / 'summary.json'}")
    return 0 if all(summary["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
