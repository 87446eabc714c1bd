"""Client-side figures of a run: per endpoint, per protocol and in total, plus the pass/fail rule."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from loadtest.samples import Sample

PERCENTILES = (50, 90, 95, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile: the smallest value with at least q% of values <= it.

    The project's one percentile (load tests, the benchmark client, the soak run).

    ``values`` need not be sorted. q=0 gives the minimum, q=100 the maximum.

    Raises:
        ValueError: no values, or q outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside [0, 100]")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def protocol_of(request_type: str) -> str:
    """``"gRPC"`` for the gRPC user's events (request_type ``grpc``), else ``"REST"``."""
    return "gRPC" if request_type.lower() == "grpc" else "REST"


def max_in_flight(samples: Iterable[Sample]) -> int:
    """Most requests open at one instant (an end at the same instant as a start closes first)."""
    edges = sorted(e for s in samples for e in ((s.start, 1), (s.end, -1)))
    # sorted() puts (t, -1) before (t, 1): a request ending at t does not overlap one starting at t.
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


@dataclass(frozen=True)
class Figures:
    """Latency and throughput of one group of requests; times in milliseconds."""

    requests: int
    failures: int
    rps: float
    mean_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    max_in_flight: int
    mean_in_flight: float  # Little's law: sum of response times / duration

    def as_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def figures(samples: Sequence[Sample], duration_s: float) -> Figures:
    """Figures over ``samples`` (failed requests included in the latencies, as Locust does).

    Raises:
        ValueError: ``duration_s`` is not positive.
    """
    if duration_s <= 0:
        raise ValueError(f"duration must be positive, got {duration_s}")
    times = [s.response_time_ms for s in samples]
    if not times:
        return Figures(0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0)
    p50, p90, p95, p99 = (percentile(times, q) for q in PERCENTILES)
    return Figures(
        requests=len(times),
        failures=sum(not s.ok for s in samples),
        rps=len(times) / duration_s,
        mean_ms=sum(times) / len(times),
        min_ms=min(times),
        p50_ms=p50,
        p90_ms=p90,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=max(times),
        max_in_flight=max_in_flight(samples),
        mean_in_flight=sum(times) / 1000.0 / duration_s,
    )


def run_duration(samples: Sequence[Sample], started: float | None, stopped: float | None) -> float:
    """Seconds the run lasted: the recorded window, else first start to last end (at least 1 ms)."""
    if started is not None and stopped is not None and stopped > started:
        return stopped - started
    if not samples:
        return 1e-3
    return max(1e-3, max(s.end for s in samples) - min(s.start for s in samples))


def summarise(samples: Sequence[Sample], duration_s: float) -> dict[str, object]:
    """Per endpoint (request_type + name), per protocol and total figures, and the top failures."""
    by_endpoint: dict[tuple[str, str], list[Sample]] = {}
    by_protocol: dict[str, list[Sample]] = {}
    for sample in samples:
        by_endpoint.setdefault((sample.request_type, sample.name), []).append(sample)
        by_protocol.setdefault(protocol_of(sample.request_type), []).append(sample)
    endpoints = [
        {"protocol": protocol_of(rtype), "request_type": rtype, "name": name, **figures(group, duration_s).as_dict()}
        for (rtype, name), group in sorted(by_endpoint.items(), key=lambda kv: (protocol_of(kv[0][0]), kv[0][1]))
    ]
    errors = Counter((s.request_type, s.name, s.error) for s in samples if not s.ok)
    return {
        "duration_s": round(duration_s, 3),
        "endpoints": endpoints,
        "protocols": {p: figures(group, duration_s).as_dict() for p, group in sorted(by_protocol.items())},
        "total": figures(samples, duration_s).as_dict(),
        "failures": [
            {"request_type": rtype, "name": name, "error": error, "count": count}
            for (rtype, name, error), count in errors.most_common(20)
        ],
    }


def verdict(
    summary: dict[str, object],
    *,
    expected_protocols: Iterable[str],
    max_p99_ms: float | None = None,
    min_rps: float | None = None,
) -> list[str]:
    """Reasons the run fails; empty when it passes.

    A run fails on any failed request, on an expected protocol with no requests, and, per
    protocol, on a p99 above ``max_p99_ms`` or a throughput below ``min_rps`` (None: not checked).
    """
    reasons = []
    protocols: dict[str, dict[str, float]] = summary["protocols"]  # type: ignore[assignment]
    total: dict[str, float] = summary["total"]  # type: ignore[assignment]
    if total["failures"]:
        reasons.append(f"{total['failures']} of {total['requests']} requests failed")
    for protocol in expected_protocols:
        fig = protocols.get(protocol)
        if not fig or not fig["requests"]:
            reasons.append(f"{protocol}: no requests were made")
            continue
        if max_p99_ms is not None and fig["p99_ms"] > max_p99_ms:
            reasons.append(f"{protocol}: p99 {fig['p99_ms']:.1f} ms > MAX_P99_MS {max_p99_ms:g}")
        if min_rps is not None and fig["rps"] < min_rps:
            reasons.append(f"{protocol}: {fig['rps']:.2f} requests/s < MIN_RPS {min_rps:g}")
    return reasons
