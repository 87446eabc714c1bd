"""The server side of a run, from TorchServe's Prometheus metrics scraped before and after it.

TorchServe 0.12 (``metrics_mode=prometheus``, port 8082 ``/metrics``) exposes, among others:

- counters ``ts_inference_requests_total`` (REST and gRPC), ``ts_inference_latency_microseconds``
  (arrival to response) and ``ts_queue_latency_microseconds`` (time in the job queue), labelled
  ``model_name``. The two latency counters are updated by REST jobs only (``RestJob``; 0.12's
  ``GRPCJob`` records just the ``QueueTime`` gauge), so their means are taken over REST requests;
- gauges ``QueueTime``, ``WorkerThreadTime`` (frontend) and ``HandlerTime``, ``PredictionTime``
  (backend), in ms: the last request's value only, recorded as such;
- the handler's counters (``NerBatches`` +1 per ``handle()`` call, ``NerBatchRequests`` +requests
  in it, ``NerDocuments``, ``NerForwardPasses``, ``NerEntities{EntityType}``) and the histogram
  ``NerStageSeconds{Stage}`` (seconds per ``handle()`` call and stage): the mean batch size TorchServe
  formed is ``ΔNerBatchRequests / ΔNerBatches``, a stage's mean time per batch
  ``ΔNerStageSeconds_sum / ΔNerBatches``.

The exposition text is read by ``prometheus_client``'s parser.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

GAUGES_MS = ("QueueTime", "WorkerThreadTime", "HandlerTime", "PredictionTime")
BATCHES, BATCH_REQUESTS, DOCUMENTS, FORWARDS = "NerBatches", "NerBatchRequests", "NerDocuments", "NerForwardPasses"
STAGE_SECONDS, STAGE_LABEL = "NerStageSeconds", "Stage"
MODEL_LABELS = ("model_name", "ModelName")


@dataclass(frozen=True)
class Sample:
    """One line of the exposition format."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


def parse(text: str) -> list[Sample]:
    """Samples of a Prometheus text exposition (histograms as their ``_bucket``/``_sum``/``_count``).

    An unreadable line is skipped rather than failing the whole report: the text is parsed in one
    go and, only if that fails, line by line.
    """
    try:
        return _samples(text)
    except ValueError:
        return [s for line in text.splitlines() for s in _samples_or_none(line)]


def _samples(text: str) -> list[Sample]:
    return [
        Sample(s.name, tuple(sorted(s.labels.items())), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _samples_or_none(line: str) -> list[Sample]:
    try:
        return _samples(line + "\n")
    except ValueError:
        return []


def scrape(url: str, timeout: float = 10.0) -> str | None:
    """The metrics text at ``url``, or None when it cannot be read (the run goes on without it)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError):
        return None


def _for_model(samples: list[Sample], model: str) -> list[Sample]:
    """Samples of ``model`` (or with no model label at all)."""
    keep = []
    for s in samples:
        owner = next((s.label(k) for k in MODEL_LABELS if s.label(k) is not None), None)
        if owner is None or owner == model:
            keep.append(s)
    return keep


def total(samples: list[Sample], name: str) -> float | None:
    """Sum of every series named ``name`` (or ``name_total``); None if there is none."""
    values = [s.value for s in samples if s.name in (name, f"{name}_total")]
    return sum(values) if values else None


def server_view(
    before: str | None, after: str | None, model: str, rest_requests: int | None = None
) -> dict[str, object]:
    """What the server did during the run, from two scrapes; ``available`` False without them.

    Means are per REST request (frontend latencies; ``rest_requests`` is the number the client sent,
    None: every request counted by the server is taken to be REST) or per ``handle()`` call
    (handler); times in ms.
    """
    if after is None:
        return {"available": False, "reason": "metrics endpoint not readable"}
    old = _for_model(parse(before or ""), model)
    new = _for_model(parse(after), model)

    def delta(name: str) -> float | None:
        end = total(new, name)
        if end is None:
            return None
        return end - (total(old, name) or 0.0)

    requests = delta("ts_inference_requests_total")
    view: dict[str, object] = {"available": True, "requests": requests}
    rest = requests if rest_requests is None else rest_requests
    view["latency_over_rest_requests"] = rest
    for key, name in (
        ("inference_latency", "ts_inference_latency_microseconds"),
        ("queue_latency", "ts_queue_latency_microseconds"),
    ):
        micros = delta(name)
        view[f"mean_{key}_ms"] = None if micros is None or not rest else round(micros / rest / 1000.0, 3)
    view["last_gauges_ms"] = {g: total(new, g) for g in GAUGES_MS if total(new, g) is not None}
    batches = delta(BATCHES)
    batch: dict[str, object] = {"batches": batches}
    if batches:
        for key, name in (
            ("mean_requests_per_batch", BATCH_REQUESTS),
            ("mean_documents_per_batch", DOCUMENTS),
            ("mean_forward_passes_per_batch", FORWARDS),
        ):
            value = delta(name)
            batch[key] = None if value is None else round(value / batches, 3)
        stage_sum = f"{STAGE_SECONDS}_sum"

        def stage_seconds(samples: list[Sample], stage: str) -> float:
            return sum(s.value for s in samples if s.name == stage_sum and s.label(STAGE_LABEL) == stage)

        stages = sorted({str(s.label(STAGE_LABEL)) for s in new if s.name == stage_sum})
        batch["mean_stage_ms_per_batch"] = {
            stage: round((stage_seconds(new, stage) - stage_seconds(old, stage)) * 1000.0 / batches, 3)
            for stage in stages
        }
    else:
        batch["note"] = f"no {BATCHES} counter change: the handler's batch metrics are missing or nothing ran"
    view["batching"] = batch
    return view
