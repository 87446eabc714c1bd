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
from ja_ner.errors import InvalidInput, NerError
from ja_ner.pipeline import Pipeline, StageTimes
from ja_ner.request import ParsedRequest, parse_request, render_response
from ja_ner.settings import Settings
from ja_ner.types import Document, DocumentResult, Outcome

log = logging.getLogger(__name__)

INPUT_TEXT = "TEXT"
INPUT_OPTIONS = "OPTIONS"
OUTPUT = "ENTITIES_JSON"

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


def parse_rows(
    texts: list[bytes], options: list[bytes] | None, *, max_texts: int, max_request_chars: int | None = None
) -> list[ParsedRequest]:
    """One ``ParsedRequest`` per row, through the same parser as the TorchServe handler.

    ``TEXT`` rows are plain text (never sniffed for JSON); an empty ``OPTIONS`` row means defaults.

    Raises:
        NerError: the first bad row, its message prefixed with the row index when there are several.
    """
    if options is not None and len(options) != len(texts):
        raise InvalidInput(f"OPTIONS has {len(options)} rows but TEXT has {len(texts)}")
    parsed = []
    for row, raw in enumerate(texts):
        try:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"TEXT is not valid UTF-8 (byte {exc.start})") from None
            payload: dict[str, Any] = {"data": text}
            if options is not None and options[row].strip():
                payload["options"] = options[row]
            parsed.append(parse_request(payload, max_texts=max_texts, max_request_chars=max_request_chars))
        except NerError as err:
            if len(texts) == 1:
                raise
            raise type(err)(f"row {row}: {err.message}") from None
    return parsed


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

    def record(self, outcomes: list[Outcome], times: StageTimes) -> None:
        """Add one ``predict_timed`` call."""
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
        log.info("plan: %s", plan.describe())
        self.pipeline = Pipeline.load(model_dir, self.settings, plan)
        self.metrics = StageMetrics(
            {"model": args["model_name"], "version": args["model_version"]}, self.pipeline.codec.types
        )
        log.info("loaded %s from %s on %s", args["model_instance_name"], model_dir, self.settings.device)

    def execute(self, requests: list[Any]) -> list[Any]:
        """Answer a dynamic batch: one response per request, in order; errors stay per request."""
        parsed: list[list[ParsedRequest] | NerError] = []
        for request in requests:
            try:
                texts = _rows(request, INPUT_TEXT)
                if texts is None:
                    raise InvalidInput(f"input {INPUT_TEXT} is required")
                options = _rows(request, INPUT_OPTIONS)
                parsed.append(
                    parse_rows(
                        texts,
                        options,
                        max_texts=self.settings.max_texts,
                        max_request_chars=self.settings.max_request_chars,
                    )
                )
            except NerError as err:
                parsed.append(err)
        documents: list[Document] = [
            doc for item in parsed if not isinstance(item, NerError) for rows in item for doc in rows.documents
        ]
        # never raises: a failing batch is retried document by document (ja_ner.pipeline's policy)
        answered, times = self.pipeline.predict_timed(documents)
        self.metrics.record(answered, times)
        outcomes = iter(answered)
        return [self._respond(item, outcomes) for item in parsed]

    def _respond(self, item: list[ParsedRequest] | NerError, outcomes: Any) -> Any:
        if isinstance(item, NerError):
            return pb_utils.InferenceResponse(error=triton_error(item.to_json()))
        # take this request's outcomes first: the iterator is shared with the requests after it
        rendered = [render_response(rows, [next(outcomes) for _ in rows.documents], self.model_info) for rows in item]
        answers = []
        for row, (status, body) in enumerate(rendered):
            if status != 200:
                if len(rendered) > 1:
                    body = {**body, "message": f"row {row}: {body['message']}"}
                return pb_utils.InferenceResponse(error=triton_error(body))
            answers.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        out = np.array(answers, dtype=np.object_).reshape(-1, 1)
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(OUTPUT, out)])

    def finalize(self) -> None:
        """Release the pipeline (Triton unloads the instance)."""
        self.pipeline = None
