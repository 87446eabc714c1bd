"""Run one headless Locust load test and write its report (what ``make loadtest`` calls).

    python loadtest/run.py --protocol both --users 16 --run-time 60s --mix mixed

Without ``--host`` it targets http://127.0.0.1:8080 and, when nothing answers there, starts the
server with ``make serve`` and stops it with ``make stop`` afterwards. Writes into
``loadtest/results/<UTC timestamp>/``: Locust's CSV stats (``locust_*.csv``), its HTML report
(``report.html``), ``samples.csv`` (one line per request), the Prometheus scrapes before and after
(``metrics_before.prom``, ``metrics_after.prom``), ``summary.json`` and ``summary.md``.

Exit status: 0 passed; 1 a request failed, a protocol made no request, or a threshold
(``--max-p99-ms``, ``--min-rps``) was missed; 2 the run could not be made (no server, Locust crashed).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from handler.server import DEFAULT_WORKDIR, read_key  # noqa: E402
from loadtest import prom, stats  # noqa: E402
from loadtest.check import parse_weights  # noqa: E402
from loadtest.corpus import load_corpus  # noqa: E402
from loadtest.samples import read_meta, read_samples  # noqa: E402

LOCUSTFILE = REPO / "loadtest" / "locustfile.py"
USER_CLASSES = {"rest": ("RestUser", "REST"), "grpc": ("GrpcUser", "gRPC")}
DEFAULT_HOST = "http://127.0.0.1:8080"


class SetupError(Exception):
    """The load test could not be run (exit status 2)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=["rest", "grpc", "both"], default="both")
    parser.add_argument("--users", type=int, default=16, help="concurrent users PER PROTOCOL")
    parser.add_argument("--spawn-rate", type=float, default=16.0, help="users started per second, per protocol")
    parser.add_argument("--run-time", default="60s", help="Locust duration: 30s, 5m, 1h30m")
    parser.add_argument("--mix", choices=["short", "mixed", "long"], default="mixed")
    parser.add_argument("--corpus", default="", help="your texts: one per line or JSON lines with 'text'")
    parser.add_argument("--weights", default="text=5,json=4,batch=1", help="payload kinds: text, json, batch")
    parser.add_argument("--batch-size", type=int, default=4, help="texts per client-batch request")
    parser.add_argument("--host", default="", help="REST base URL; empty: --local-url, started if down")
    parser.add_argument("--local-url", default=DEFAULT_HOST, help="where the server --serve-cmd starts listens")
    parser.add_argument("--grpc-target", default="", help="gRPC host:port (default: host name, port 7070)")
    parser.add_argument("--metrics-url", default="", help="Prometheus URL (default: host name, :8082/metrics)")
    parser.add_argument("--model", default="ja_ner", help="model name")
    parser.add_argument("--token", default=env("LOADTEST_TOKEN", ""), help="inference key (token auth)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--max-p99-ms", type=float, default=None, help="fail if a protocol's p99 is above")
    parser.add_argument("--min-rps", type=float, default=None, help="fail if a protocol's requests/s is below")
    parser.add_argument("--results-dir", type=Path, default=REPO / "loadtest" / "results")
    parser.add_argument("--out", type=Path, default=None, help="exact output folder (default: timestamped)")
    parser.add_argument("--serve-cmd", default="make -s serve", help="starts a local server (run in the repo)")
    parser.add_argument("--stop-cmd", default="make -s stop", help="stops the server --serve-cmd started")
    parser.add_argument("--ready-timeout", type=float, default=600.0, help="seconds to wait for a started server")
    parser.add_argument("--locust-arg", action="append", default=[], help="extra argument passed to locust")
    args = parser.parse_args(argv)
    if args.users < 1 or args.spawn_rate <= 0:
        parser.error("--users must be >= 1 and --spawn-rate > 0")
    return args


def normalise_host(host: str) -> str:
    """``host``, ``host:port`` or a URL -> ``http(s)://host:port`` without a trailing slash (port 8080)."""
    if "://" not in host:
        host = f"http://{host}"
    url = urlparse(host)
    port = url.port or (443 if url.scheme == "https" else 8080)
    return f"{url.scheme}://{url.hostname}:{port}"


def ping(host: str, token: str = "", timeout: float = 3.0) -> bool:
    """True when ``<host>/ping`` answers 200."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{host}/ping", headers=headers), timeout=timeout) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _local_token() -> str:
    return read_key(DEFAULT_WORKDIR / "key_file.json") or ""


def start_local_server(args: argparse.Namespace, host: str) -> None:
    """Run ``--serve-cmd`` and wait for /ping. Raises SetupError when it fails or times out."""
    print(f"loadtest: nothing answers at {host}; starting it: {args.serve_cmd}", flush=True)
    result = subprocess.run(shlex.split(args.serve_cmd), cwd=REPO)
    if result.returncode != 0:
        raise SetupError(f"{args.serve_cmd!r} exited with {result.returncode}")
    deadline = time.monotonic() + args.ready_timeout
    while time.monotonic() < deadline:
        if ping(host, args.token or _local_token()):
            return
        time.sleep(1.0)
    raise SetupError(f"server started by {args.serve_cmd!r} did not answer {host}/ping in {args.ready_timeout:.0f}s")


def locust_command(args: argparse.Namespace, host: str, grpc_target: str, out: Path) -> list[str]:
    """The headless Locust command line; users and spawn rate are scaled by the number of protocols."""
    protocols = ["rest", "grpc"] if args.protocol == "both" else [args.protocol]
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--users",
        str(args.users * len(protocols)),
        "--spawn-rate",
        f"{args.spawn_rate * len(protocols):g}",
        "--run-time",
        args.run_time,
        "--stop-timeout",
        f"{args.timeout:g}s",
        "--host",
        host,
        "--csv",
        str(out / "locust"),
        "--html",
        str(out / "report.html"),
        "--ja-model",
        args.model,
        "--ja-grpc-target",
        grpc_target,
        "--ja-mix",
        args.mix,
        "--ja-weights",
        args.weights,
        "--ja-batch-size",
        str(args.batch_size),
        "--ja-timeout",
        f"{args.timeout:g}",
        "--ja-samples",
        str(out / "samples.csv"),
    ]
    if args.corpus:
        cmd += ["--ja-corpus", str(Path(args.corpus).resolve())]
    cmd += args.locust_arg
    return cmd + [USER_CLASSES[p][0] for p in protocols]


def run_locust(cmd: list[str], token: str, log: Path) -> int:
    """Run Locust, echoing its output and keeping it in ``log``; returns its exit status."""
    env = {**os.environ, "LOADTEST_TOKEN": token}  # the token stays off the command line
    with log.open("w", encoding="utf-8") as sink:
        sink.write(" ".join(shlex.quote(c) for c in cmd) + "\n")
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sink.write(line)
        return proc.wait()


def markdown_table(summary: dict) -> str:
    """The per-endpoint table of a summary (times in ms), as in docs/loadtest.md."""
    rows = [
        "| endpoint | requests | failures | req/s | p50 | p90 | p95 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    named = [(f"{e['protocol']} {e['name']}", e) for e in summary["client"]["endpoints"]]
    named += [(f"**{p} total**", f) for p, f in summary["client"]["protocols"].items()]
    named.append(("**all**", summary["client"]["total"]))
    for name, f in named:
        rows.append(
            f"| {name} | {f['requests']} | {f['failures']} | {f['rps']:.1f} | {f['p50_ms']:.0f} | "
            f"{f['p90_ms']:.0f} | {f['p95_ms']:.0f} | {f['p99_ms']:.0f} | {f['max_ms']:.0f} |"
        )
    return "\n".join(rows) + "\n"


def build_summary(args: argparse.Namespace, out: Path, run: dict, before: str | None, after: str | None) -> dict:
    """summary.json's content from the samples, the metrics scrapes and the thresholds."""
    samples = read_samples(out / "samples.csv") if (out / "samples.csv").exists() else []
    meta = read_meta(out / "samples.csv")
    duration = stats.run_duration(samples, meta.get("started"), meta.get("stopped"))
    protocols = ["REST", "gRPC"] if args.protocol == "both" else [USER_CLASSES[args.protocol][1]]
    client = stats.summarise(samples, duration)
    reasons = stats.verdict(client, expected_protocols=protocols, max_p99_ms=args.max_p99_ms, min_rps=args.min_rps)
    return {
        "run": {
            **run,
            **{k: v for k, v in meta.items() if k not in ("started", "stopped")},
            "started_utc": _utc(meta.get("started")),
            "duration_s": round(duration, 3),
        },
        "client": client,
        "server": prom.server_view(before, after, args.model, rest_requests=_rest_requests(client)),
        "thresholds": {"max_p99_ms": args.max_p99_ms, "min_rps": args.min_rps},
        "passed": not reasons,
        "reasons": reasons,
    }


def _rest_requests(client: dict) -> int:
    """REST requests the client sent (TorchServe's latency counters cover only these)."""
    rest = client["protocols"].get("REST")
    return int(rest["requests"]) if rest else 0


def _utc(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def output_dir(args: argparse.Namespace) -> Path:
    if args.out is not None:
        out = args.out
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = args.results_dir / stamp
        suffix = 1
        while out.exists():
            suffix += 1
            out = args.results_dir / f"{stamp}-{suffix}"
    out.mkdir(parents=True, exist_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host = normalise_host(args.host or args.local_url)
    name = urlparse(host).hostname
    grpc_target = args.grpc_target or f"{name}:7070"
    metrics_url = args.metrics_url or f"http://{name}:8082/metrics"
    started_server = False
    try:
        try:  # refuse a bad corpus or weights before any server is started
            load_corpus(args.mix, Path(args.corpus) if args.corpus else None)
            parse_weights(args.weights)
        except (OSError, ValueError) as exc:
            raise SetupError(str(exc)) from None
        if not args.token and not args.host:
            args.token = _local_token()
        if not ping(host, args.token):
            if args.host:
                raise SetupError(f"{host}/ping does not answer (HOST was given, so nothing is started)")
            start_local_server(args, host)
            started_server = True
            args.token = args.token or _local_token()
        out = output_dir(args)
        load_before = os.getloadavg()[0]  # other work on this machine skews the figures: recorded
        before = prom.scrape(metrics_url)
        (out / "metrics_before.prom").write_text(before or "", encoding="utf-8")
        cmd = locust_command(args, host, grpc_target, out)
        code = run_locust(cmd, args.token, out / "locust.log")
        time.sleep(1.0)  # TorchServe updates its counters after the response is sent
        after = prom.scrape(metrics_url)
        (out / "metrics_after.prom").write_text(after or "", encoding="utf-8")
        if not (out / "samples.csv").exists() or code not in (0, 1):
            raise SetupError(f"locust exited with {code} and left no samples; see {out / 'locust.log'}")
        run = {
            "protocol": args.protocol,
            "users_per_protocol": args.users,
            "spawn_rate_per_protocol": args.spawn_rate,
            "run_time": args.run_time,
            "mix": args.mix,
            "metrics_url": metrics_url,
            "locust": version("locust"),
            "cpu_count": os.cpu_count(),
            "load_average_1m_before": round(load_before, 2),
            "server_started_here": started_server,
        }
        summary = build_summary(args, out, run, before, after)
        (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (out / "summary.md").write_text(markdown_table(summary), encoding="utf-8")
    except SetupError as exc:
        print(f"loadtest: ERROR: {exc}", file=sys.stderr)
        return 2
    finally:
        if started_server:
            print(f"loadtest: stopping the server: {args.stop_cmd}", flush=True)
            subprocess.run(shlex.split(args.stop_cmd), cwd=REPO)
    print()
    print(markdown_table(summary))
    server = summary["server"]
    if server.get("available"):
        print(f"server: {json.dumps({k: v for k, v in server.items() if k != 'available'}, ensure_ascii=False)}")
    print(f"report: {out}/summary.json, {out}/report.html")
    if summary["passed"]:
        print("loadtest: PASSED")
        return 0
    for reason in summary["reasons"]:
        print(f"loadtest: FAILED: {reason}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
