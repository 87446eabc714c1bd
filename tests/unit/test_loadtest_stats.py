"""Percentiles, per-endpoint figures and the pass/fail rule of the load-test summary."""

from __future__ import annotations

import pytest

from loadtest.samples import Sample, SampleWriter, read_meta, read_samples
from loadtest.stats import figures, max_in_flight, percentile, run_duration, summarise, verdict


def _sample(start: float, ms: float, *, ok: bool = True, rtype: str = "POST", name: str = "/p [text]") -> Sample:
    return Sample(start, rtype, name, ms, 10, ok, "" if ok else "WrongAnswer: x")


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0, 1.0), (10, 1.0), (11, 2.0), (50, 5.0), (90, 9.0), (95, 10.0), (99, 10.0), (100, 10.0)],
)
def test_percentile_is_nearest_rank(q: float, expected: float) -> None:
    values = [float(v) for v in (7, 3, 10, 1, 9, 2, 8, 4, 6, 5)]  # unsorted on purpose
    assert percentile(values, q) == expected


def test_percentile_of_one_value_and_errors() -> None:
    assert percentile([42.0], 99) == 42.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_p99_of_a_hundred_values_is_the_99th() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 99) == 99.0
    assert percentile(values, 99.5) == 100.0


def test_max_in_flight_counts_overlaps_not_touching_ends() -> None:
    assert max_in_flight([_sample(0.0, 1000), _sample(0.5, 1000), _sample(0.9, 50)]) == 3
    assert max_in_flight([_sample(0.0, 1000), _sample(1.0, 1000), _sample(2.0, 1000)]) == 1
    assert max_in_flight([]) == 0


def test_figures() -> None:
    samples = [_sample(float(i), ms) for i, ms in enumerate([10.0, 20.0, 30.0, 40.0])] + [_sample(5.0, 100.0, ok=False)]
    fig = figures(samples, duration_s=10.0)
    assert (fig.requests, fig.failures) == (5, 1)
    assert fig.rps == pytest.approx(0.5)
    assert fig.mean_ms == pytest.approx(40.0)
    assert (fig.min_ms, fig.p50_ms, fig.p90_ms, fig.p99_ms, fig.max_ms) == (10.0, 30.0, 100.0, 100.0, 100.0)
    assert fig.mean_in_flight == pytest.approx(0.2 / 10.0)
    assert figures([], 1.0).requests == 0
    with pytest.raises(ValueError):
        figures(samples, 0.0)


def test_summarise_groups_by_endpoint_and_protocol() -> None:
    samples = [
        _sample(0.0, 10.0, name="/p [text]"),
        _sample(0.1, 20.0, name="/p [json]"),
        _sample(0.2, 30.0, rtype="grpc", name="Predictions [text]"),
        _sample(0.3, 40.0, rtype="grpc", name="Predictions [text]", ok=False),
    ]
    summary = summarise(samples, 2.0)
    names = [(e["protocol"], e["name"], e["requests"]) for e in summary["endpoints"]]
    assert names == [("REST", "/p [json]", 1), ("REST", "/p [text]", 1), ("gRPC", "Predictions [text]", 2)]
    assert summary["protocols"]["gRPC"]["failures"] == 1
    assert summary["protocols"]["REST"]["rps"] == 1.0
    assert summary["total"]["requests"] == 4
    assert summary["failures"] == [
        {"request_type": "grpc", "name": "Predictions [text]", "error": "WrongAnswer: x", "count": 1}
    ]


def _summary(rest: dict | None = None, grpc: dict | None = None, failures: int = 0) -> dict:
    base = {"requests": 100, "failures": 0, "rps": 50.0, "p99_ms": 200.0}
    protocols = {}
    if rest is not None:
        protocols["REST"] = {**base, **rest}
    if grpc is not None:
        protocols["gRPC"] = {**base, **grpc}
    return {"protocols": protocols, "total": {"requests": 200, "failures": failures}}


def test_verdict_passes_a_clean_run() -> None:
    assert verdict(_summary({}, {}), expected_protocols=["REST", "gRPC"], max_p99_ms=200.0, min_rps=50.0) == []


def test_verdict_fails_on_any_failure_and_on_a_silent_protocol() -> None:
    reasons = verdict(_summary({}, None, failures=1), expected_protocols=["REST", "gRPC"])
    assert reasons == ["1 of 200 requests failed", "gRPC: no requests were made"]
    assert verdict(_summary({}, {"requests": 0}), expected_protocols=["gRPC"]) == ["gRPC: no requests were made"]


def test_verdict_thresholds_per_protocol() -> None:
    summary = _summary({"p99_ms": 250.0}, {"rps": 10.0})
    reasons = verdict(summary, expected_protocols=["REST", "gRPC"], max_p99_ms=200.0, min_rps=20.0)
    assert reasons == ["REST: p99 250.0 ms > MAX_P99_MS 200", "gRPC: 10.00 requests/s < MIN_RPS 20"]
    assert verdict(summary, expected_protocols=["REST", "gRPC"]) == []  # no thresholds set


def test_run_duration_prefers_the_recorded_window() -> None:
    samples = [_sample(10.0, 500.0), _sample(11.0, 1000.0)]
    assert run_duration(samples, 9.0, 14.0) == 5.0
    assert run_duration(samples, None, None) == pytest.approx(2.0)
    assert run_duration([], None, None) > 0


def test_samples_round_trip(tmp_path) -> None:
    writer = SampleWriter(tmp_path / "samples.csv")
    writer.on_request("grpc", "Predictions [text]", 12.5, 99, exception=None)
    writer.on_request("POST", "/p, with comma", 7.0, 0, exception=ValueError("bad\nanswer"))
    writer.close({"model": "ja_ner"})
    writer.on_request("POST", "late", 1.0, 0)  # after close: ignored, no error
    samples = read_samples(tmp_path / "samples.csv")
    assert [(s.request_type, s.name, s.response_time_ms, s.ok) for s in samples] == [
        ("grpc", "Predictions [text]", 12.5, True),
        ("POST", "/p, with comma", 7.0, False),
    ]
    assert samples[1].error == "ValueError: bad\nanswer"
    meta = read_meta(tmp_path / "samples.csv")
    assert meta["model"] == "ja_ner" and meta["stopped"] >= meta["started"]
