"""A closed-loop load client: ``users`` threads, each sending one sentence and waiting for the answer.

Each user keeps one HTTP/1.1 connection open. Texts are taken in a fixed round-robin order
shared by all users, so every mode of one run sends the same sequence. Only requests that end
inside the measurement window count (after a warm-up), so the figures are steady-state ones.
"""

from __future__ import annotations

import http.client
import itertools
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit


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

    def to_json(self) -> dict:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


class _User(threading.Thread):
    def __init__(self, url: str, texts: list[str], order: itertools.count, stop: threading.Event,
                 timeout: float, headers: dict[str, str]) -> None:  # fmt: skip
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


def run_level(url: str, texts: list[str], users: int, *, seconds: float, warmup: float,
              timeout: float = 120.0, headers: dict[str, str] | None = None,
              other_cpu: OtherCpu | None = None) -> LevelResult:  # fmt: skip
    """Drive ``url`` with ``users`` closed-loop users for ``warmup`` + ``seconds`` seconds.

    When fewer than ``min(2 * users, 20)`` requests end in the window, the window is stretched
    (to ``4 * seconds`` at most) so that a slow level still yields percentiles.
    """
    stop = threading.Event()
    order = itertools.count()
    threads = [_User(url, texts, order, stop, timeout, headers or {}) for _ in range(users)]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    cpu0, t0 = time.process_time(), time.perf_counter()
    if other_cpu:
        other_cpu.start()
    time.sleep(seconds)
    # a slow server may finish nothing in the window: wait (up to 4x) for a few answers per user
    while _done_since(threads, t0) < min(2 * users, 20) and time.perf_counter() - t0 < 4 * seconds:
        time.sleep(0.1)
    t1 = time.perf_counter()
    cpu1 = time.process_time()
    others = other_cpu.stop() if other_cpu else 0.0
    stop.set()
    for thread in threads:
        thread.join()
    window = [(end - start) * 1000 for t in threads for start, end, ok in t.records if t0 <= end <= t1 and ok]
    errors = sum(1 for t in threads for _, end, ok in t.records if t0 <= end <= t1 and not ok)
    span = t1 - t0
    return LevelResult(
        users=users,
        seconds=round(span, 2),
        requests=len(window),
        errors=errors,
        throughput=round(len(window) / span, 2),
        p50_ms=round(percentile(window, 50), 1),
        p90_ms=round(percentile(window, 90), 1),
        p99_ms=round(percentile(window, 99), 1),
        mean_ms=round(statistics.fmean(window), 1) if window else 0.0,
        client_cores=round((cpu1 - cpu0) / span, 2),
        other_cores=round(others, 2),
    )


def _done_since(threads: list[_User], t0: float) -> int:
    return sum(1 for t in threads for _, end, _ in list(t.records) if end >= t0)


class OtherCpu:
    """CPU used by processes outside a given set of trees, between ``start`` and ``stop`` (in cores)."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self._begin: tuple[float, float, float] | None = None

    def _sample(self) -> tuple[float, float, float]:
        import psutil

        total = psutil.cpu_times()
        busy = (
            total.user
            + total.system
            + getattr(total, "nice", 0.0)
            + getattr(total, "irq", 0.0)
            + getattr(total, "softirq", 0.0)
        )
        mine = 0.0
        for pid in self.roots:
            try:
                root = psutil.Process(pid)
                for proc in [root, *root.children(recursive=True)]:
                    times = proc.cpu_times()
                    mine += times.user + times.system
            except psutil.Error:
                continue
        return time.perf_counter(), busy, mine

    def start(self) -> None:
        self._begin = self._sample()

    def stop(self) -> float:
        assert self._begin is not None
        end = self._sample()
        wall = end[0] - self._begin[0]
        return max(0.0, ((end[1] - self._begin[1]) - (end[2] - self._begin[2])) / wall)
