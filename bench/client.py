"""A closed-loop load client: ``users`` threads, each sending one sentence and waiting for the answer.

Each user keeps one HTTP/1.1 connection open. Texts are taken in a fixed round-robin order
shared by all users, so every mode of one run sends the same sequence. Only requests that end
inside the measurement window count (after a warm-up), so the figures are steady-state ones.

Why not the Locust suite (``loadtest/``): the benchmark compares servers by ratios in one run on a
small machine, so the client must cost little CPU and add the same fixed, small overhead to every
mode (a thread and a kept-alive ``http.client`` connection per user, no event loop, no answer
checks, no per-request bookkeeping beyond two timestamps); Locust's gevent runtime and answer
checks cost a measurable share of a 2-core box. Percentiles come from ``loadtest.stats``.
"""

from __future__ import annotations

import http.client
import itertools
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from loadtest.stats import percentile


@dataclass(frozen=True)
class LevelResult:
    """One concurrency level of one mode."""

    users: int
    seconds: float  # measurement window
    requests: int  # completed inside the window
    errors: int  # non-200 answers or broken connections inside the window
    throughput: float  # sentences/s (one sentence per request)
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    client_cores: float  # CPU this client process used, in cores (it shares the machine)
    other_cores: float = 0.0  # CPU used by processes outside the benchmark, in cores
    cpu: dict[str, float] = field(default_factory=dict)  # cores: frontend, workers, client, others
    per_core: float | None = None  # sentences per CPU-second of the server (frontend + workers)

    def to_json(self) -> dict:
        return asdict(self)


class _User(threading.Thread):
    def __init__(
        self,
        url: str,
        texts: list[str],
        order: itertools.count,
        stop: threading.Event,
        timeout: float,
        headers: dict[str, str],
    ) -> None:
        super().__init__(daemon=True)
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.texts, self.order, self.stop, self.timeout = texts, order, stop, timeout
        self.headers = {"Content-Type": "text/plain; charset=utf-8", **headers}
        self.records: list[tuple[float, float, bool]] = []  # (start, end, ok)

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        while not self.stop.is_set():
            body = self.texts[next(self.order) % len(self.texts)].encode("utf-8")
            start = time.perf_counter()
            try:
                conn.request("POST", self.path, body=body, headers=self.headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                ok = False
            self.records.append((start, time.perf_counter(), ok))
        conn.close()


class Users:
    """``users`` closed-loop users on ``url`` while the context is open (the fault tests load with it too).

    ``records()`` is every finished request so far: ``(start, end, ok)`` in ``time.perf_counter``
    seconds, ok meaning HTTP 200.
    """

    def __init__(
        self, url: str, texts: list[str], users: int, *, timeout: float = 120.0, headers: dict[str, str] | None = None
    ) -> None:
        self._stop = threading.Event()
        order = itertools.count()
        self._threads = [_User(url, texts, order, self._stop, timeout, headers or {}) for _ in range(users)]

    def __enter__(self) -> Users:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def records(self) -> list[tuple[float, float, bool]]:
        return [r for t in self._threads for r in list(t.records)]

    def done_since(self, t0: float) -> int:
        return sum(1 for _, end, _ in self.records() if end >= t0)


def run_level(
    url: str,
    texts: list[str],
    users: int,
    *,
    seconds: float,
    warmup: float,
    timeout: float = 120.0,
    headers: dict[str, str] | None = None,
    cpu_meter: CpuMeter | None = None,
) -> LevelResult:
    """Drive ``url`` with ``users`` closed-loop users for ``warmup`` + ``seconds`` seconds.

    When fewer than ``min(2 * users, 20)`` requests end in the window, the window is stretched
    (to ``4 * seconds`` at most) so that a slow level still yields percentiles.
    """
    with Users(url, texts, users, timeout=timeout, headers=headers) as load:
        time.sleep(warmup)
        cpu0, t0 = time.process_time(), time.perf_counter()
        if cpu_meter:
            cpu_meter.start()
        time.sleep(seconds)
        # a slow server may finish nothing in the window: wait (up to 4x) for a few answers per user
        while load.done_since(t0) < min(2 * users, 20) and time.perf_counter() - t0 < 4 * seconds:
            time.sleep(0.1)
        t1 = time.perf_counter()
        cpu1 = time.process_time()
        cpu = cpu_meter.stop() if cpu_meter else {}
    records = load.records()
    window = [(end - start) * 1000 for start, end, ok in records if t0 <= end <= t1 and ok]
    errors = sum(1 for _, end, ok in records if t0 <= end <= t1 and not ok)
    span = t1 - t0
    p50, p90, p99 = (round(percentile(window, q), 1) if window else 0.0 for q in (50, 90, 99))  # 0.0: none answered
    return LevelResult(
        users=users,
        seconds=round(span, 2),
        requests=len(window),
        errors=errors,
        throughput=round(len(window) / span, 2),
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        mean_ms=round(statistics.fmean(window), 1) if window else 0.0,
        client_cores=round((cpu1 - cpu0) / span, 2),
        other_cores=cpu.get("others", 0.0),
        cpu=cpu,
        per_core=_per_core(len(window) / span, cpu),
    )


def _per_core(throughput: float, cpu: dict[str, float]) -> float | None:
    """Sentences per CPU-second the server spent: comparable across levels when the machine is shared."""
    server = cpu.get("frontend", 0.0) + cpu.get("workers", 0.0)
    return round(throughput / server, 2) if server > 0.05 else None


class CpuMeter:
    """Cores used between ``start`` and ``stop`` by: the server's frontend, its workers, this client, others.

    ``server_pid`` is TorchServe's Java process; its children are the Python workers. Everything
    else busy on the machine counts as "others" (the machine is shared: those figures are noise).
    """

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self._begin: dict[str, float] | None = None

    def _sample(self) -> dict[str, float]:
        import psutil

        total = psutil.cpu_times()
        busy = sum(getattr(total, f, 0.0) for f in ("user", "system", "nice", "irq", "softirq"))
        mine = psutil.Process().cpu_times()
        sample = {"wall": time.perf_counter(), "busy": busy, "client": mine.user + mine.system}
        sample["frontend"] = sample["workers"] = 0.0
        if self.server_pid:
            try:
                java = psutil.Process(self.server_pid)
                times = java.cpu_times()
                sample["frontend"] = times.user + times.system
                for child in java.children(recursive=True):
                    times = child.cpu_times()
                    sample["workers"] += times.user + times.system
            except psutil.Error:
                pass
        return sample

    def start(self) -> None:
        self._begin = self._sample()

    def stop(self) -> dict[str, float]:
        """Cores per part (CPU seconds / wall seconds) since ``start``."""
        assert self._begin is not None
        end = self._sample()
        wall = end["wall"] - self._begin["wall"]
        used = {k: (end[k] - self._begin[k]) / wall for k in ("busy", "client", "frontend", "workers")}
        others = used.pop("busy") - used["client"] - used["frontend"] - used["workers"]
        return {**{k: round(v, 2) for k, v in used.items()}, "others": round(max(0.0, others), 2)}
