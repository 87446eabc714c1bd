"""tools/soak.py's summary of a Locust run: per-minute p99, drift, RSS growth, restarts, goals."""

import importlib.util
from pathlib import Path

from loadtest.samples import Sample

_spec = importlib.util.spec_from_file_location("soak", Path(__file__).resolve().parents[2] / "tools" / "soak.py")
soak = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soak)

T0 = 1_000_000.0


def _samples(ms_by_minute, rtype="POST", ok=True):
    return [
        Sample(T0 + 60 * m + i * 0.5, rtype, "text", ms, 10, ok)
        for m, ms in enumerate(ms_by_minute)
        for i in range(100)
    ]


def test_drift_growth_and_goals():
    samples = _samples([100.0, 100.0, 120.0]) + _samples([90.0, 90.0, 90.0], rtype="grpc")
    memory = [{"t": t, "pids": [1, 2], "rss_mb": rss} for t, rss in ((5, 400.0), (65, 500.0), (170, 520.0))]
    summary = soak.summarise(samples, memory, t0=T0, duration=180, warmup=60)
    assert [m["from_s"] for m in summary["per_minute"]] == [60, 120]
    assert summary["per_minute"][0]["rest_p99_ms"] == 100.0 and summary["per_minute"][0]["grpc_p99_ms"] == 90.0
    assert summary["p99_drift_pct"] == 20.0  # 100 -> 120 ms
    assert summary["worker_rss_growth_pct"] == 4.0  # 500 -> 520 MB after warm-up, not from 400
    assert summary["by_protocol"] == {"REST": 300, "gRPC": 300} and summary["worker_restarts"] == 0
    assert all(summary["goals"].values())


def test_a_failure_or_a_restart_is_reported():
    samples = _samples([100.0, 100.0]) + [Sample(T0 + 70, "grpc", "text", 5.0, 0, False, "UNAVAILABLE")]
    memory = [{"t": 65, "pids": [1], "rss_mb": 500.0}, {"t": 110, "pids": [3], "rss_mb": 600.0}]
    summary = soak.summarise(samples, memory, t0=T0, duration=120, warmup=60)
    assert summary["failed"] == 1 and summary["errors"] == {"UNAVAILABLE": 1}
    assert summary["worker_restarts"] == 1 and summary["worker_rss_growth_pct"] == 20.0
    assert summary["goals"] == {"no_failures": False, "rss_growth_under_10pct": False}
