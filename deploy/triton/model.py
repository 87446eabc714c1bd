"""Triton Python-backend adapter over the ja_ner core: it translates, nothing more.

Contract (config.pbtxt.in, docs/deploy.md "Triton I/O contract"): ``TEXT`` BYTES ``[batch, 1]``,
one UTF-8 text per row; optional ``OPTIONS`` BYTES ``[batch, 1]``, per row a JSON options object
or empty; ``ENTITIES_JSON`` BYTES ``[batch, 1]``, per row the bytes of a single REST answer. Every
request of a dynamic batch gets its own response; a request with a bad row gets a ``TritonError``
(message: the error JSON ``{"code", "type", "message"}``) and its batch neighbours are answered.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from ja_ner import plan as planning
from ja_ner.dataplane import Answer, Incoming, Report, answer_batch, contained
from ja_ner.errors import InvalidInput, NerError
from ja_ner.pipeline import Pipeline
from ja_ner.settings import Settings
from ja_ner.types import DocumentResult

log = logging.getLogger(__name__)

INPUT_TEXT = "TEXT"
INPUT_OPTIONS = "OPTIONS"
OUTPUT = "ENTITIES_JSON"
TEXT_TYPE = "text/plain; charset=utf-8"  # what a TEXT row is: one UTF-8 text

# The ONE table from the core's HTTP-like codes to Triton error codes (names of pb_utils.TritonError
# attributes). Triton turns them into HTTP 400/503/500 and gRPC INVALID_ARGUMENT/UNAVAILABLE/INTERNAL.
# Triton has no "too large" code: 413 becomes INVALID_ARG; the JSON message keeps code 413.
TRITON_ERROR_CODES: dict[int, str] = {
    400: "INVALID_ARG",
    413: "INVALID_ARG",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
FALLBACK_ERROR_CODE = "INTERNAL"

# Parameters that are not ja_ner Settings fields.
ADAPTER_PARAMETERS = ("model_dir", "model_version_label")


def triton_error(body: dict[str, Any]) -> Any:
    """A ``pb_utils.TritonError`` for an error JSON ``{"code", "type", "message"}``."""
    name = TRITON_ERROR_CODES.get(int(body.get("code", 500)), FALLBACK_ERROR_CODE)
    return pb_utils.TritonError(json.dumps(body, ensure_ascii=False), getattr(pb_utils.TritonError, name))


def read_parameters(model_config: dict[str, Any]) -> dict[str, str]:
    """``config.pbtxt`` ``parameters`` as a plain ``{key: string_value}`` mapping."""
    raw = model_config.get("parameters") or {}
    return {key: str(value.get("string_value", "")) for key, value in raw.items()}


def settings_from_parameters(parameters: dict[str, str], *, kind: str, device_id: str) -> Settings:
    """Settings from the ``parameters`` (one source) plus the device Triton assigned this instance.

    Raises:
        ConfigError: an unknown or ill-typed setting, or ``device`` set in the config (Triton decides it).
    """
    values = {k: v for k, v in parameters.items() if k not in ADAPTER_PARAMETERS}
    settings = Settings.from_mapping(values)
    return replace(settings, device=f"cuda:{device_id}" if kind == "GPU" else "cpu")


def _log_info(message: str) -> None:
    """Into Triton's own log (the server's stdout, so a pod's log) where the backend offers it."""
    logger = getattr(pb_utils, "Logger", None)
    if logger is not None:
        logger.log_info(message)
    else:
        log.info("%s", message)


def instance_count(model_config: dict[str, Any], kind: str) -> int:
    """Instances of this model of ``kind`` (CPU/GPU) in ``config.pbtxt``'s instance groups (at least 1).

    They share the machine's cores, so the plan gives each ``cores / instances`` threads.
    """
    wanted = f"KIND_{kind}"
    groups = model_config.get("instance_group") or []
    total = sum(int(g.get("count", 1)) for g in groups if str(g.get("kind", "KIND_CPU")) == wanted)
    return max(1, total)


def _rows(request: Any, name: str) -> list[bytes] | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    return [bytes(item) for item in tensor.as_numpy().reshape(-1)]


def read_rows(request: Any) -> list[Incoming]:
    """One ``Incoming`` per row of a Triton request, for the core's data plane.

    ``TEXT`` rows are plain text (declared ``text/plain``: never read as JSON); an empty
    ``OPTIONS`` row means the defaults.

    Raises:
        InvalidInput: no ``TEXT`` input, or ``OPTIONS`` with another number of rows.
    """
    texts = _rows(request, INPUT_TEXT)
    if texts is None:
        raise InvalidInput(f"input {INPUT_TEXT} is required")
    options = _rows(request, INPUT_OPTIONS)
    if options is not None and len(options) != len(texts):
        raise InvalidInput(f"{INPUT_OPTIONS} has {len(options)} rows but {INPUT_TEXT} has {len(texts)}")
    return [
        Incoming(text, TEXT_TYPE, options[row] if options is not None and options[row].strip() else None)
        for row, text in enumerate(texts)
    ]


class StageMetrics:
    """Custom Triton metrics (served on the metrics port next to Triton's own ``nv_*`` series).

    Counters only, so rates and means come from Prometheus: ``ja_ner_documents_total``,
    ``ja_ner_forward_passes_total``, ``ja_ner_stage_ms_total{stage=...}`` (milliseconds spent per
    pipeline stage) and ``ja_ner_entities_total{type=...}`` (entities answered, per type of the
    model). Created once per instance in ``initialize``, as Triton requires.
    """

    STAGES = ("normalise", "encode", "segment", "forward", "aggregate")

    def __init__(self, labels: dict[str, str], entity_types: tuple[str, ...]) -> None:
        counter = pb_utils.MetricFamily.COUNTER
        self._families = [
            pb_utils.MetricFamily("ja_ner_documents_total", "Texts answered by the ja_ner pipeline", counter),
            pb_utils.MetricFamily("ja_ner_forward_passes_total", "Model forward micro-batches", counter),
            pb_utils.MetricFamily("ja_ner_stage_ms_total", "Milliseconds spent per pipeline stage", counter),
            pb_utils.MetricFamily("ja_ner_entities_total", "Entities answered, per type", counter),
        ]
        documents, passes, stages, entities = self._families
        self.documents = documents.Metric(labels=labels)
        self.passes = passes.Metric(labels=labels)
        self.stages = {stage: stages.Metric(labels={**labels, "stage": stage}) for stage in self.STAGES}
        self.entities = {t: entities.Metric(labels={**labels, "type": t}) for t in entity_types}

    def record(self, report: Report) -> None:
        """Add one batch (``ja_ner.dataplane.answer_batch`` calls it; a failure here fails no answer)."""
        outcomes, times = report.outcomes, report.times
        self.documents.increment(len(outcomes))
        self.passes.increment(len(times.batches))
        for stage, seconds in times.seconds.items():
            if stage in self.stages:
                self.stages[stage].increment(seconds * 1000.0)
        found = Counter(e.type for o in outcomes if isinstance(o, DocumentResult) for e in o.entities)
        for entity_type, count in found.items():
            if entity_type in self.entities:
                self.entities[entity_type].increment(count)


class TritonPythonModel:
    """One Triton model instance: a loaded ``Pipeline`` and the request/response translation."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the pipeline named by the ``model_dir`` parameter (relative to the version directory)."""
        config = json.loads(args["model_config"])
        parameters = read_parameters(config)
        self.settings = settings_from_parameters(
            parameters, kind=args["model_instance_kind"], device_id=args["model_instance_device_id"]
        )
        version_dir = Path(args["model_repository"]) / args["model_version"]
        model_dir = version_dir / parameters.get("model_dir", "model")
        self.model_info = {
            "model": args["model_name"],
            "model_version": parameters.get("model_version_label") or args["model_version"],
        }
        instances = instance_count(config, args["model_instance_kind"])
        plan = planning.resolve(
            self.settings, model_dir, workers=instances, workers_why="Triton instances of this kind"
        )
        _log_info(f"plan: {plan.describe()}")
        self.pipeline = Pipeline.load(model_dir, self.settings, plan)
        self.metrics = StageMetrics(
            {"model": args["model_name"], "version": args["model_version"]}, self.pipeline.codec.types
        )
        log.info("loaded %s from %s on %s", args["model_instance_name"], model_dir, self.settings.device)

    def execute(self, requests: list[Any]) -> list[Any]:
        """Answer a dynamic batch: one response per request, in order; errors stay per request.

        Every row of every request goes through ``ja_ner.dataplane.answer_batch`` together (one
        pipeline call); a request is answered with its rows' answers, or with its first bad row's error.
        """
        read = [contained("read", read_rows, request) for request in requests]
        rows = [row for item in read if not isinstance(item, NerError) for row in item]
        answers = iter(answer_batch(self.pipeline, self.model_info, rows, record=self.metrics.record))
        responses = []
        for item in read:
            mine = [] if isinstance(item, NerError) else [next(answers) for _ in item]  # the shared iterator first
            response = contained("render", self._respond, item, mine)
            responses.append(self._respond(response, []) if isinstance(response, NerError) else response)
        return responses

    @staticmethod
    def _respond(item: list[Incoming] | NerError, answers: list[Answer]) -> Any:
        if isinstance(item, NerError):
            return pb_utils.InferenceResponse(error=triton_error(item.to_json()))
        for row, answer in enumerate(answers):
            if answer.error is not None:
                body = answer.error.to_json()
                if len(answers) > 1:
                    body = {**body, "message": f"row {row}: {body['message']}"}
                return pb_utils.InferenceResponse(error=triton_error(body))
        out = np.array([answer.body for answer in answers], dtype=np.object_).reshape(-1, 1)
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(OUTPUT, out)])

    def finalize(self) -> None:
        """Release the pipeline (Triton unloads the instance)."""
        self.pipeline = None
