"""A short real Locust run (both protocols) against the shared TorchServe (issue 5)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run_loadtest(torchserve, out: Path, *args: str) -> tuple[int, dict, str]:
    """loadtest/run.py against the fixture's server; (exit status, summary.json, output)."""
    cmd = [
        sys.executable,
        "loadtest/run.py",
        "--out",
        str(out),
        "--host",
        torchserve.rest_url,
        "--grpc-target",
        torchserve.grpc_target,
        "--metrics-url",
        f"{torchserve.metrics_url}/metrics",
        "--model",
        torchserve.model_name,
        *args,
    ]
    env = {"PATH": str(Path(sys.executable).parent), "LOADTEST_TOKEN": torchserve.token() or ""}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    summary = out / "summary.json"
    return proc.returncode, json.loads(summary.read_text()) if summary.exists() else {}, proc.stdout + proc.stderr


def test_short_run_on_both_protocols(torchserve, tmp_path: Path) -> None:
    """Three users per protocol with equal weights: each user's first request is another kind, and
    requests open at the end are let finish, so all six endpoints are hit even on a busy machine."""
    code, summary, output = run_loadtest(
        torchserve,
        tmp_path,
        "--protocol",
        "both",
        "--users",
        "3",
        "--run-time",
        "5s",
        "--weights",
        "text=1,json=1,batch=1",
    )
    assert code == 0, output[-3000:]
    assert summary["passed"] and summary["client"]["total"]["failures"] == 0
    endpoints = {(e["protocol"], e["name"]): e for e in summary["client"]["endpoints"]}
    kinds = ("text", "json", "batch")
    expected = {("REST", f"/predictions/{torchserve.model_name} [{k}]") for k in kinds}
    expected |= {("gRPC", f"Predictions [{k}]") for k in kinds}
    assert set(endpoints) == expected
    assert all(e["requests"] > 0 and e["failures"] == 0 for e in endpoints.values())
    server = summary["server"]
    assert server["available"] and server["requests"] > 0
    assert server["mean_queue_latency_ms"] is not None and server["mean_inference_latency_ms"] > 0
    assert server["batching"]["batches"] > 0 and server["batching"]["mean_requests_per_batch"] >= 1
    assert (tmp_path / "report.html").exists() and (tmp_path / "locust_stats.csv").exists()


def test_a_wrong_answer_is_a_failure(torchserve, tmp_path: Path) -> None:
    """The checker is pointed at rotated texts (--ja-corrupt-check): the server's right answers
    no longer match, and real Locust must count them as failures and the run must fail."""
    code, summary, output = run_loadtest(
        torchserve,
        tmp_path,
        "--protocol",
        "both",
        "--users",
        "1",
        "--run-time",
        "3s",
        "--mix",
        "mixed",
        "--locust-arg=--ja-corrupt-check",
    )
    assert code == 1, output[-3000:]
    assert summary["run"]["corrupt_check"] is True
    for protocol in ("REST", "gRPC"):
        assert summary["client"]["protocols"][protocol]["failures"] > 0
    assert any("WrongAnswer: " in f["error"] and "entity text" in f["error"] for f in summary["client"]["failures"])
