"""TorchServe adapter: translates TorchServe requests to the core pipeline and back.

Everything about text, models and entities lives in ``ja_ner``; this module only knows how
TorchServe 0.12 hands requests over (see docs/architecture.md) and how answers go back:
per-request status codes, content type, gRPC streaming and metrics.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from http import HTTPStatus
from pathlib import Path
from typing import Any

from ts.metrics.dimension import Dimension
from ts.metrics.metric_type_enum import MetricTypes

from handler import streaming
from ja_ner import hardware
from ja_ner import plan as planning
from ja_ner.errors import Busy, NerError
from ja_ner.forward import device_for
from ja_ner.pipeline import Pipeline, StageTimes
from ja_ner.request import ParsedRequest, admit, parse_request, render_response, render_result
from ja_ner.settings import Settings
from ja_ner.types import DocumentResult, Outcome

log = logging.getLogger(__name__)

# The model files sit in this folder of the unpacked .mar (see handler/archive.py).
MODEL_SUBDIR = "model"
# Seconds a worker may spend loading before it logs its stacks (a load takes 2-20 s; see initialize).
INIT_STACK_DUMP_S = 120


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _body_type(context: Any, idx: int) -> str | None:
    """The media type TorchServe recorded for request ``idx``'s REST body (None over gRPC)."""
    header = context.get_request_header(idx, "body")
    return header.get("content-type") if isinstance(header, dict) else None


def worker_count(model_config: dict[str, Any], environ: Mapping[str, str]) -> tuple[int, str]:
    """The workers TorchServe starts for this model, and where that number comes from.

    In TorchServe's own order: model-config.yaml's ``minWorkers``; else ``default_workers_per_model``,
    which an operator may set through the environment (``TS_DEFAULT_WORKERS_PER_MODEL``, read by
    TorchServe with ``enable_envvars_config``, and the worker inherits it) and ``handler/server.py``
    sets from the same rule as ``ja_ner.hardware.workers``; else that rule.
    """
    if model_config.get("minWorkers"):
        return int(model_config["minWorkers"]), "minWorkers in model-config.yaml"
    env = environ.get("TS_DEFAULT_WORKERS_PER_MODEL", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env), "TS_DEFAULT_WORKERS_PER_MODEL"
    return int(hardware.workers(hardware.detect()).value), "auto workers"


class JaNerHandler:
    """One TorchServe worker's handler: loads the pipeline once, answers batches."""

    def __init__(self) -> None:
        self.pipeline: Pipeline | None = None
        self.model_info: dict[str, str] = {}
        self.initialized = False

    def initialize(self, context: Any) -> None:
        """Build settings from the ``handler:`` section of model-config.yaml and load the model."""
        # A worker that has not loaded after this long writes every thread's stack to its log (the
        # model log): a load that hangs then says where, instead of only timing out in the frontend.
        faulthandler.dump_traceback_later(INIT_STACK_DUMP_S, exit=False, file=sys.stderr)
        try:
            self._initialize(context)
        finally:
            faulthandler.cancel_dump_traceback_later()

    def _initialize(self, context: Any) -> None:
        props = context.system_properties
        model_config = context.model_yaml_config or {}
        settings = Settings.from_mapping(dict(model_config.get("handler") or {}))
        settings = replace(settings, device=device_for(props.get("gpu_id")))
        model_dir = Path(props["model_dir"]) / MODEL_SUBDIR
        workers, why = worker_count(model_config, os.environ)
        plan = planning.resolve(settings, model_dir, workers=workers, workers_why=why)
        log.info("plan: %s", plan.describe())
        self.pipeline = Pipeline.load(model_dir, settings, plan)
        manifest = getattr(context, "manifest", None) or {}
        model = manifest.get("model", {})
        self.model_info = {
            "model": context.model_name,  # the registered name clients call, not the file name
            "model_version": str(model.get("modelVersion", "")),
        }
        self.initialized = True
        log.info("ja_ner handler ready: %s on %s", self.model_info, settings.device)

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[bytes]:
        """Answer every request of a TorchServe batch; one bad request never fails the others."""
        assert self.pipeline is not None
        parsed = self._admit([self._parse(row, _body_type(context, idx)) for idx, row in enumerate(data)])
        for idx in range(len(data)):
            context.set_response_content_type(idx, "application/json")
        ok = {i: p for i, p in enumerate(parsed) if isinstance(p, ParsedRequest)}
        stream = {i for i in ok if streaming.is_stream_request(context, i)}
        docs = [d for i, p in ok.items() if i not in stream for d in p.documents]
        outcomes, times = self.pipeline.predict_timed(docs)
        results = iter(outcomes)
        answered = list(outcomes)  # every document's outcome, streamed ones too (metrics)
        bodies = []
        for idx, request in enumerate(parsed):
            if isinstance(request, NerError):
                bodies.append(self._error(context, idx, request))
            elif idx in stream:
                body, finals = self._stream(context, idx, request)
                bodies.append(body)
                answered += finals
            else:
                mine = [next(results) for _ in request.documents]
                status, body = render_response(request, mine, self.model_info)
                if status != 200:
                    self._set_status(context, idx, status)
                bodies.append(_dumps(body))
        for idx in range(len(data)):
            streaming.mark_final(context, idx)
        self._metrics(context, len(data), answered, times)
        return bodies

    def _admit(self, parsed: list[ParsedRequest | NerError]) -> list[ParsedRequest | NerError]:
        """Refuse (503 Busy) the requests that would take the batch past ``max_batch_chars``.

        The limit keeps the worst batch well inside responseTimeout (docs/performance.md, "Long
        texts"), where TorchServe would kill the worker and fail every request in it.
        """
        assert self.pipeline is not None
        budget = self.pipeline.settings.max_batch_chars
        ok = [i for i, p in enumerate(parsed) if isinstance(p, ParsedRequest)]
        sizes = [parsed[i].chars for i in ok]  # type: ignore[union-attr]
        out = list(parsed)
        for i, size, fits in zip(ok, sizes, admit(sizes, budget), strict=True):
            if not fits:
                out[i] = Busy(f"this server batch is full ({budget} characters in all); retry the request ({size})")
        return out

    def _parse(self, row: dict[str, Any], content_type: str | None) -> ParsedRequest | NerError:
        assert self.pipeline is not None
        try:
            settings = self.pipeline.settings
            return parse_request(
                row,
                max_texts=settings.max_texts,
                max_request_chars=settings.max_request_chars,
                content_type=content_type,
            )
        except NerError as err:
            return err

    def _stream(self, context: Any, idx: int, request: ParsedRequest) -> tuple[bytes, list[Outcome]]:
        """Send one message per window of a single document; the final answer and its outcomes."""
        assert self.pipeline is not None
        if request.batch or len(request.documents) != 1:
            outcomes = self.pipeline.predict(request.documents)
            return _dumps(render_response(request, outcomes, self.model_info)[1]), outcomes
        doc = request.documents[0]
        window = 0
        for final, outcome in self.pipeline.predict_stream(doc):
            if final:
                return _dumps(render_response(request, [outcome], self.model_info)[1]), [outcome]
            if isinstance(outcome, NerError):
                continue
            partial = {**self.model_info, "partial": True, "window": window, **render_result(doc, outcome)}
            streaming.send_partial(context, idx, _dumps(partial))
            window += 1
        raise AssertionError("predict_stream ends with a final outcome")

    @staticmethod
    def _set_status(context: Any, idx: int, status: int) -> None:
        context.set_response_status(status, HTTPStatus(status).phrase, idx)

    def _error(self, context: Any, idx: int, error: NerError) -> bytes:
        self._set_status(context, idx, error.code)
        return _dumps(error.to_json())

    @staticmethod
    def _metrics(context: Any, requests: int, outcomes: list[Outcome], times: StageTimes) -> None:
        """Counters per ``handle`` call, stage seconds as histograms, entities found per type.

        TorchServe's frontend turns a HISTOGRAM line into a Prometheus histogram with the Prometheus
        client's default buckets (5 ms to 10 s), hence seconds. Names are declared to Prometheus by
        ``model_metrics_auto_detect=true`` (config.properties).
        """
        metrics = context.metrics
        if metrics is None:
            return
        metrics.add_counter("NerBatches", 1)
        metrics.add_counter("NerBatchRequests", requests)
        metrics.add_counter("NerDocuments", len(outcomes))
        metrics.add_counter("NerForwardPasses", len(times.batches))
        for stage, seconds in times.seconds.items():
            metrics.add_time(
                "NerStageSeconds", seconds, unit="s", dimensions=[Dimension("Stage", stage)],
                metric_type=MetricTypes.HISTOGRAM,
            )  # fmt: skip
        found = Counter(e.type for o in outcomes if isinstance(o, DocumentResult) for e in o.entities)
        for entity_type, count in sorted(found.items()):
            metrics.add_counter("NerEntities", count, dimensions=[Dimension("EntityType", entity_type)])
