"""One line per request, written by the locustfile and read back by the summary.

Locust's own CSV percentiles are rounded (two significant digits above 100 ms); the summary
computes exact ones from these samples. Columns: ``start`` (epoch seconds), ``request_type``,
``name``, ``response_time_ms``, ``response_length``, ``ok`` (1/0), ``error``.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

COLUMNS = ("start", "request_type", "name", "response_time_ms", "response_length", "ok", "error")


@dataclass(frozen=True)
class Sample:
    """One finished request as Locust saw it."""

    start: float  # epoch seconds
    request_type: str  # "POST" (REST) or "grpc"
    name: str
    response_time_ms: float
    response_length: int
    ok: bool
    error: str = ""

    @property
    def end(self) -> float:
        return self.start + self.response_time_ms / 1000.0


class SampleWriter:
    """Appends samples to a CSV file; also keeps the run window for the summary's RPS."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(COLUMNS)
        self.started = time.time()
        self.stopped: float | None = None

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        """Locust ``request`` event listener (requests ending after ``close`` are not recorded)."""
        if self._file.closed:
            return
        now = time.time()
        error = "" if exception is None else f"{type(exception).__name__}: {exception}"[:300]
        self._csv.writerow(
            (
                f"{now - response_time / 1000.0:.6f}",
                request_type,
                name,
                f"{response_time:.3f}",
                int(response_length or 0),
                0 if exception else 1,
                error,
            )
        )

    def close(self, meta: dict[str, Any] | None = None) -> None:
        """Flush the samples and write ``<name>.meta.json`` with the run window."""
        self.stopped = time.time()
        self._file.close()
        info = {"started": self.started, "stopped": self.stopped, **(meta or {})}
        meta_path(self.path).write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")


def meta_path(path: Path) -> Path:
    return Path(path).with_suffix(".meta.json")


def read_samples(path: Path) -> list[Sample]:
    """Samples of a file written by ``SampleWriter`` (a partly written last line is skipped)."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return list(_parse(csv.DictReader(handle)))


def _parse(rows: Iterable[dict[str, str]]) -> Iterable[Sample]:
    for row in rows:
        try:
            yield Sample(
                float(row["start"]),
                row["request_type"],
                row["name"],
                float(row["response_time_ms"]),
                int(row["response_length"]),
                row["ok"] == "1",
                row.get("error") or "",
            )
        except (KeyError, TypeError, ValueError):
            continue


def read_meta(path: Path) -> dict[str, Any]:
    """The run window written next to the samples; empty when the run did not finish cleanly."""
    meta = meta_path(path)
    return json.loads(meta.read_text(encoding="utf-8")) if meta.exists() else {}
