"""handler.handler.JaNerHandler.handle on TorchServe's own Context (no frontend, no worker process).

The context is ``ts.context.Context`` with one ``RequestProcessor`` per request, as TorchServe 0.12's
worker builds them; only the metrics cache is a recorder. Per-index status and content type, a bad
row next to good ones, the failure policy and the Ner* metrics are pinned here; the same handler
behind a real TorchServe is covered by the integration tests.
"""

from __future__ import annotations

import json
import socket
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ts")
from ts.context import Context, RequestProcessor  # noqa: E402
from ts.metrics.metric_type_enum import MetricTypes  # noqa: E402

from handler.handler import JaNerHandler  # noqa: E402

REST_HEADERS = {"body": {"content-type": "text/plain"}, "Host": "127.0.0.1:8080", "url_path": ""}


class Recorder:
    """Stands in for TorchServe's metrics cache: records every value added per metric name."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = defaultdict(list)
        self.kinds: dict[str, tuple] = {}
        self.by_dimension: dict[tuple[str, str], float] = defaultdict(float)

    def add_counter(self, name: str, value: float, idx: Any = None, dimensions: Any = ()) -> None:
        self.values[name].append(value)
        for d in dimensions:
            self.by_dimension[(name, d.value)] += value

    def add_time(
        self, name: str, value: float, idx: Any = None, unit: str = "ms", dimensions: Any = (), metric_type=None
    ):
        self.values[name].append(value)
        self.kinds[name] = (unit, metric_type, tuple((d.name, d.value) for d in dimensions))


def make_context(
    model_dir: Path, tmp_path: Path, rows: int, handler_config: dict | None = None, types: dict[int, str] | None = None
) -> Context:
    """TorchServe's context for ``rows`` REST requests; ``types``: a body media type per row (default text/plain)."""
    root = tmp_path / "unpacked"
    root.mkdir(exist_ok=True)
    if not (root / "model").exists():
        (root / "model").symlink_to(model_dir)
    config = {"handler": {"max_chars": 200, "max_tokens": 48, "overlap_tokens": 8, **(handler_config or {})}}
    manifest = {"model": {"modelName": "file-name", "modelVersion": "3.1"}}
    context = Context("ja_ner", str(root), manifest, rows, None, "0.12.0", metrics=Recorder(), model_yaml_config=config)
    context.request_ids = {i: f"req-{i}" for i in range(rows)}
    context.request_processor = [RequestProcessor(dict(REST_HEADERS)) for _ in range(rows)]
    for row, media in (types or {}).items():
        context.request_processor[row] = RequestProcessor({**REST_HEADERS, "body": {"content-type": media}})
    return context


@pytest.fixture(scope="module")
def handler(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> JaNerHandler:
    h = JaNerHandler()
    h.initialize(make_context(tiny_model_dir, tmp_path_factory.mktemp("ctx"), 1))
    return h


def _answer(handler: JaNerHandler, context: Context, data: list[dict]) -> list[tuple[int, str, dict]]:
    bodies = handler.handle(data, context)
    assert len(bodies) == len(data)  # TorchServe needs exactly one body per request
    return [
        (context.get_response_status(i)[0], context.get_response_content_type(i), json.loads(body))
        for i, body in enumerate(bodies)
    ]


def test_initialize_takes_the_registered_name_and_the_handler_section(handler: JaNerHandler) -> None:
    assert handler.model_info == {"model": "ja_ner", "model_version": "3.1"}
    assert handler.pipeline is not None and handler.pipeline.settings.max_chars == 200
    assert handler.pipeline.settings.device == "cpu"  # TorchServe's gpu_id None


def test_a_bad_row_next_to_good_ones_fails_alone(handler: JaNerHandler, tiny_model_dir: Path, tmp_path: Path) -> None:
    data = [
        {"body": "東京都に住む"},  # text/plain
        {"body": bytearray(b"{not json")},  # malformed JSON
        {"body": {"texts": ["大阪", "京都"], "options": {"aggregation": "max"}}},  # client batch
        {"body": "あ" * 201},  # over max_chars
        {"body": {"text": "札幌", "options": {"colour": "red"}}},  # unknown option
    ]
    context = make_context(tiny_model_dir, tmp_path, len(data), types={1: "application/json", 2: "application/json"})
    answers = _answer(handler, context, data)
    assert [status for status, _, _ in answers] == [200, 400, 200, 413, 400]
    assert {content_type for _, content_type, _ in answers} == {"application/json"}
    one, bad_json, batch, too_long, unknown = (body for _, _, body in answers)
    assert one["model"] == "ja_ner" and one["model_version"] == "3.1" and isinstance(one["entities"], list)
    assert all(e["text"] == "東京都に住む"[e["start"] : e["end"]] for e in one["entities"])
    assert len(batch["results"]) == 2
    assert bad_json["type"] == "InvalidInput" and bad_json["code"] == 400
    assert too_long["type"] == "InputTooLarge"
    assert "colour" in unknown["message"]


def test_metrics_count_batches_requests_documents_and_passes(
    handler: JaNerHandler, tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = [{"body": "東京"}, {"body": {"texts": ["大阪", "京都"]}}, {"body": bytearray(b"\xff")}]
    context = make_context(tiny_model_dir, tmp_path, len(data))
    bodies = [json.loads(body) for body in handler.handle(data, context)[:2]]
    values = context.metrics.values
    assert values["NerBatches"] == [1] and values["NerBatchRequests"] == [3]
    assert values["NerDocuments"] == [3]  # the bad request has no document
    assert values["NerForwardPasses"][0] >= 1
    # one observation per stage, in seconds, as a histogram labelled with the stage
    assert len(values["NerStageSeconds"]) == 5 and all(v >= 0 for v in values["NerStageSeconds"])
    unit, kind, dimensions = context.metrics.kinds["NerStageSeconds"]
    assert (unit, kind) == ("s", MetricTypes.HISTOGRAM) and dimensions[0][0] == "Stage"
    # entities per type: as many as the answers hold
    found = [e["type"] for b in bodies for r in b.get("results", [b]) for e in r["entities"]]
    per_type = {t: n for (name, t), n in context.metrics.by_dimension.items() if name == "NerEntities"}
    assert per_type == {t: found.count(t) for t in set(found)}


def test_a_failing_forward_fails_only_the_document_that_still_fails(
    handler: JaNerHandler, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert handler.pipeline is not None
    forward = handler.pipeline.forward
    poison = handler.pipeline.tokenizer("毒", add_special_tokens=False)["input_ids"][-1]

    def flaky(batch):  # fails every micro-batch holding the poisoned token, as a model bug would
        if (batch.input_ids == poison).any():
            raise RuntimeError("simulated forward failure")
        return forward(batch)

    monkeypatch.setattr(handler.pipeline, "forward", flaky)
    data = [{"body": "東京都に住む"}, {"body": "毒"}, {"body": {"texts": ["大阪", "京都"]}}]
    answers = _answer(handler, make_context(tiny_model_dir, tmp_path, len(data)), data)
    assert [status for status, _, _ in answers] == [200, 500, 200]
    assert answers[1][2] == {"code": 500, "type": "Internal", "message": answers[1][2]["message"]}


def test_streamed_documents_count_in_the_metrics(handler: JaNerHandler, tiny_model_dir: Path, tmp_path: Path) -> None:
    data = [{"data": bytearray(json.dumps({"text": "東京都に住む"}).encode()), "stream": bytearray(b"true")}]
    context = make_context(tiny_model_dir, tmp_path, len(data))
    context.request_processor = [RequestProcessor({"data": {"content-type": None}, "stream": {"content-type": None}})]
    ours, theirs = socket.socketpair()  # the worker's socket to the frontend: partial messages go here
    context.cl_socket = ours
    with ours, theirs:
        body = json.loads(handler.handle(data, context)[0])
        assert theirs.recv(65536)  # at least one partial message was sent
    assert isinstance(body["entities"], list)
    assert context.metrics.values["NerDocuments"] == [1]


def test_issue13_requests_past_the_batch_budget_get_503_busy(tiny_model_dir: Path, tmp_path: Path) -> None:
    """max_batch_chars: the first requests fill the batch; one that does not fit is refused alone, with 503."""
    limits = {"max_request_chars": 100, "max_batch_chars": 150}
    h = JaNerHandler()
    h.initialize(make_context(tiny_model_dir, tmp_path, 1, limits))
    data = [{"body": "東" * 100}, {"body": "京" * 60}, {"body": "大阪" * 20}]
    (s0, _, b0), (s1, _, b1), (s2, _, b2) = _answer(h, make_context(tiny_model_dir, tmp_path, 3, limits), data)
    assert (s0, s2) == (200, 200) and "entities" in b0 and "entities" in b2
    assert s1 == 503 and b1["type"] == "Busy" and b1["code"] == 503


def test_a_load_that_hangs_logs_its_stacks_and_a_quick_one_does_not(
    handler: JaNerHandler, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    import time

    import handler.handler as module

    loaded = handler.pipeline  # the model itself is loaded once, by the fixture; here only the wait differs
    monkeypatch.setattr(module, "INIT_STACK_DUMP_S", 0.5)
    monkeypatch.setattr(module.Pipeline, "load", lambda *a, **k: (time.sleep(1.5), loaded)[1])
    JaNerHandler().initialize(make_context(tiny_model_dir, tmp_path, 1))
    dumped = capfd.readouterr().err
    assert "Timeout" in dumped and "_initialize" in dumped  # faulthandler's header and the stuck frame

    monkeypatch.setattr(module, "INIT_STACK_DUMP_S", 2.0)
    monkeypatch.setattr(module.Pipeline, "load", lambda *a, **k: loaded)
    JaNerHandler().initialize(make_context(tiny_model_dir, tmp_path, 1))
    time.sleep(2.5)
    assert "Timeout" not in capfd.readouterr().err  # cancelled once loaded


def test_issue22_a_row_the_adapter_cannot_read_fails_alone(
    handler: JaNerHandler, tiny_model_dir: Path, tmp_path
) -> None:
    """A bug in the adapter's own payload reading is contained like any other stage (500 for that row only)."""
    data = [{"body": "東京都に住む"}, None, {"body": "大阪"}]  # None: not a row TorchServe could hand over
    answers = _answer(handler, make_context(tiny_model_dir, tmp_path, len(data)), data)
    assert [status for status, _, _ in answers] == [200, 500, 200]
    assert answers[1][2]["type"] == "Internal"


def test_issue22_the_core_parses_every_json_body_itself(handler: JaNerHandler, tiny_model_dir: Path, tmp_path) -> None:
    """TorchServe hands bodies over as bytes (TS_DECODE_INPUT_REQUEST=false): the core parses them, with its limits."""
    import os

    assert os.environ["TS_DECODE_INPUT_REQUEST"] == "false"  # set by initialize, read by TorchServe per request
    data = [
        {"body": bytearray(json.dumps({"texts": ["大阪", "京都"]}).encode())},
        {"body": bytearray(b"[" * 3000 + b"]" * 3000)},
        {"body": bytearray(b'{"text": "a"}')},  # text/plain: one text, never read as JSON
    ]
    context = make_context(tiny_model_dir, tmp_path, len(data), types={0: "application/json", 1: "application/json"})
    (s0, _, b0), (s1, _, b1), (s2, _, b2) = _answer(handler, context, data)
    assert s0 == 200 and len(b0["results"]) == 2
    assert s1 == 400 and "the limit is 8" in b1["message"]
    assert s2 == 200 and isinstance(b2["entities"], list)
