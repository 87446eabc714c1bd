"""TorchServe adapter: translates TorchServe requests to the core pipeline and back.

Everything about text, models and entities lives in ``ja_ner``; this module only knows how
TorchServe 0.12 hands requests over (see docs/architecture.md) and how answers go back:
per-request status codes, content type, gRPC streaming and metrics.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any

from ts.metrics.dimension import Dimension
from ts.metrics.metric_type_enum import MetricTypes

from handler import streaming
from ja_ner import hardware
from ja_ner import plan as planning
from ja_ner.dataplane import Incoming, Report, answer_batch
from ja_ner.errors import InvalidInput
from ja_ner.forward import device_for
from ja_ner.pipeline import Pipeline
from ja_ner.settings import Settings
from ja_ner.types import DocumentResult

log = logging.getLogger(__name__)

# The model files sit in this folder of the unpacked .mar (see handler/archive.py).
MODEL_SUBDIR = "model"
# Seconds a worker may spend loading before it logs its stacks (a load takes 2-20 s; see initialize).
INIT_STACK_DUMP_S = 120


# TorchServe puts a REST body under "body"; its gRPC client and multipart forms use "data". A gRPC
# input key or form field "options" holds JSON options.
PAYLOAD_KEYS = ("body", "data")
OPTIONS_KEY = "options"
# Read by TorchServe's worker for every request (ts/protocol/otf_message_handler.py): "false" hands
# every body over as the bytes received, so the core parses each JSON body once, under its own
# parse-time limits (TorchServe would json.loads an application/json body first, without any).
DECODE_ENV = "TS_DECODE_INPUT_REQUEST"


def _incoming(row: dict[str, Any], context: Any, idx: int) -> Incoming:
    """Request ``idx`` of a batch as the core reads it: its body, the body's media type, options, streaming.

    Raises:
        InvalidInput: the row has no body (a form or gRPC input map without ``data``).
    """
    key = next((k for k in PAYLOAD_KEYS if k in row), None)
    if key is None:
        raise InvalidInput(f"no request body; send text or JSON (input key one of {', '.join(PAYLOAD_KEYS)})")
    header = context.get_request_header(idx, key) if key == "body" else None  # REST: {"content-type": ...}
    content_type = header.get("content-type") if isinstance(header, dict) else None
    stream = streaming.is_stream_request(context, idx)
    return Incoming(row[key], content_type, row.get(OPTIONS_KEY), stream=stream)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


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
        os.environ[DECODE_ENV] = "false"  # this worker's own TorchServe code reads it per request
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
        """Answer every request of a TorchServe batch; one request's failure never fails the others.

        Everything per request happens in ``ja_ner.dataplane.answer_batch``, this adapter's row reading
        (``_incoming``) included; here only the answers are translated (status, content type, final mark).
        """
        assert self.pipeline is not None
        answers = answer_batch(
            self.pipeline,
            self.model_info,
            [partial(_incoming, row, context, idx) for idx, row in enumerate(data)],
            send_partial=partial(streaming.send_partial, context),
            record=partial(self._metrics, context),
        )
        for idx, answer in enumerate(answers):
            context.set_response_content_type(idx, "application/json")
            if answer.status != 200:
                context.set_response_status(answer.status, _phrase(answer.status), idx)
            streaming.mark_final(context, idx)
        return [answer.body for answer in answers]

    @staticmethod
    def _metrics(context: Any, report: Report) -> None:
        """Counters per ``handle`` call, stage seconds as histograms, entities found per type.

        TorchServe's frontend turns a HISTOGRAM line into a Prometheus histogram with the Prometheus
        client's default buckets (5 ms to 10 s), hence seconds. Names are declared to Prometheus by
        ``model_metrics_auto_detect=true`` (config.properties).
        """
        metrics = context.metrics
        if metrics is None:
            return
        metrics.add_counter("NerBatches", 1)
        metrics.add_counter("NerBatchRequests", report.requests)
        metrics.add_counter("NerDocuments", len(report.outcomes))
        metrics.add_counter("NerForwardPasses", len(report.times.batches))
        for stage, seconds in report.times.seconds.items():
            metrics.add_time(
                "NerStageSeconds", seconds, unit="s", dimensions=[Dimension("Stage", stage)],
                metric_type=MetricTypes.HISTOGRAM,
            )  # fmt: skip
        found = Counter(e.type for o in report.outcomes if isinstance(o, DocumentResult) for e in o.entities)
        for entity_type, count in sorted(found.items()):
            metrics.add_counter("NerEntities", count, dimensions=[Dimension("EntityType", entity_type)])
