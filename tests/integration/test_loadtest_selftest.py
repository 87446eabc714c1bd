"""The load-test tooling through real Locust against a stand-in server (loadtest/fake_server.py).

No model is needed, so these pin what must hold for any server: gRPC calls overlap under load
(grpc's gevent support works), wrong answers are failures, thresholds and a dead host set the
exit status.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from handler.server import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _fake(delay_ms: float, wrong_every: int = 0) -> Iterator[dict[str, str]]:
    rest, grpc = free_port(), free_port()
    cmd = [
        sys.executable,
        "-m",
        "loadtest.fake_server",
        "--rest-port",
        str(rest),
        "--grpc-port",
        str(grpc),
        "--delay-ms",
        str(delay_ms),
        "--wrong-every",
        str(wrong_every),
    ]
    proc = subprocess.Popen(cmd, cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", rest), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield {
            "--host": f"http://127.0.0.1:{rest}",
            "--grpc-target": f"127.0.0.1:{grpc}",
            "--metrics-url": f"http://127.0.0.1:{rest}/metrics",
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def slow_fake() -> Iterator[dict[str, str]]:
    yield from _fake(delay_ms=100)


@pytest.fixture(scope="module")
def lying_fake() -> Iterator[dict[str, str]]:
    yield from _fake(delay_ms=5, wrong_every=3)


def run_loadtest(target: dict[str, str], out: Path, *args: str) -> tuple[int, dict]:
    """Run loadtest/run.py as `make loadtest` does; returns (exit status, summary.json or {})."""
    cmd = [sys.executable, "loadtest/run.py", "--out", str(out), *(x for kv in target.items() for x in kv), *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=180)
    summary = out / "summary.json"
    return proc.returncode, json.loads(summary.read_text()) if summary.exists() else {}


def test_grpc_calls_overlap_under_load(slow_fake: dict[str, str], tmp_path: Path) -> None:
    """16 gRPC users against a 100 ms server: calls must overlap (one at a time caps at 10 req/s)."""
    code, summary = run_loadtest(slow_fake, tmp_path, "--protocol", "grpc", "--users", "16", "--run-time", "4s")
    assert code == 0, summary.get("reasons")
    grpc = summary["client"]["protocols"]["gRPC"]
    assert grpc["failures"] == 0
    assert grpc["max_in_flight"] >= 12
    assert grpc["mean_in_flight"] > 6
    assert grpc["rps"] > 40


def test_both_protocols_report_every_endpoint(slow_fake: dict[str, str], tmp_path: Path) -> None:
    code, summary = run_loadtest(
        slow_fake, tmp_path, "--users", "3", "--run-time", "3s", "--weights", "text=1,json=1,batch=1"
    )
    assert code == 0, summary.get("reasons")
    names = {(e["protocol"], e["name"]): e for e in summary["client"]["endpoints"]}
    kinds = ("text", "json", "batch")
    assert set(names) == {("REST", f"/predictions/ja_ner [{k}]") for k in kinds} | {
        ("gRPC", f"Predictions [{k}]") for k in kinds
    }
    assert all(e["requests"] > 0 and e["failures"] == 0 for e in names.values())
    assert summary["server"]["available"] and summary["server"]["requests"] > 0
    for name in ("report.html", "locust_stats.csv", "locust_stats_history.csv", "samples.csv", "summary.md"):
        assert (tmp_path / name).stat().st_size > 0


def test_wrong_answers_are_failures(lying_fake: dict[str, str], tmp_path: Path) -> None:
    code, summary = run_loadtest(lying_fake, tmp_path, "--users", "2", "--run-time", "3s", "--mix", "short")
    assert code == 1
    total = summary["client"]["total"]
    assert 0 < total["failures"] < total["requests"]
    assert all(f["error"].startswith("WrongAnswer: ") for f in summary["client"]["failures"])
    assert summary["passed"] is False and "requests failed" in summary["reasons"][0]


def test_missed_thresholds_fail_the_run(slow_fake: dict[str, str], tmp_path: Path) -> None:
    code, summary = run_loadtest(
        slow_fake,
        tmp_path,
        "--protocol",
        "rest",
        "--users",
        "2",
        "--run-time",
        "2s",
        "--max-p99-ms",
        "1",
        "--min-rps",
        "100000",
    )
    assert code == 1
    assert summary["client"]["total"]["failures"] == 0
    assert [r.split(":")[0] for r in summary["reasons"]] == ["REST", "REST"]
    assert "MAX_P99_MS" in summary["reasons"][0] and "MIN_RPS" in summary["reasons"][1]


def test_a_given_host_that_is_down_is_a_setup_error(tmp_path: Path) -> None:
    port = free_port()
    code, summary = run_loadtest({"--host": f"http://127.0.0.1:{port}"}, tmp_path, "--run-time", "1s")
    assert code == 2 and summary == {}


def test_without_host_a_local_server_is_started_and_stopped(tmp_path: Path) -> None:
    """No --host and nothing listening: --serve-cmd starts it, the run uses it, --stop-cmd stops it."""
    rest, grpc = free_port(), free_port()
    pid = tmp_path / "fake.pid"
    serve = (
        f"{sys.executable} -m loadtest.fake_server --rest-port {rest} --grpc-port {grpc} --delay-ms 5"
        f" >/dev/null 2>&1 & echo $! > {pid}"
    )
    target = {"--local-url": f"http://127.0.0.1:{rest}", "--grpc-target": f"127.0.0.1:{grpc}"}
    code, summary = run_loadtest(
        target,
        tmp_path / "out",
        "--users",
        "1",
        "--run-time",
        "2s",
        "--serve-cmd",
        f"sh -c '{serve}'",
        "--stop-cmd",
        f"sh -c 'kill $(cat {pid})'",
        "--ready-timeout",
        "30",
    )
    assert code == 0, summary.get("reasons")
    assert summary["run"]["server_started_here"] is True
    assert summary["client"]["total"]["requests"] > 0
    time.sleep(0.5)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", rest), timeout=1).close()
