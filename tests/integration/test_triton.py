"""A real tritonserver (nvidia-pytriton wheel, CPU) serving the repository that make triton-repo builds.

Called over HTTP and gRPC with tritonclient (KServe v2 protocol); its answers are compared with the
shared TorchServe's for the same texts, on the same model (the ``torchserve`` fixture's model_dir).
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from deploy.triton import build_repo, serve
from handler.server import free_port
from ja_ner import hardware
from ja_ner import plan as planning
from ja_ner.types import entity_from_hf

pytestmark = pytest.mark.integration

MODEL = "ja_ner"
TEXTS = [
    "鈴木は熊本県の阿蘇山に登った",
    "株式会社トヨタ自動車は愛知県豊田市に本社を置く",
    "𠮷野家の前で田中さんと会った。",  # an astral character: code-point vs UTF-16 offsets differ
    "自由民主党と日本銀行の関係者が東京ドームで開かれたWBCを観戦した",
    "Ｔｏｋｙｏの渋谷でiPhone１５を買った",  # full-width letters and digits (NFKC folds them)
    "",
    "東京",
    "今日は晴れ。" * 60,  # several hundred characters: more than one window at the default max_tokens
]
QUEUE_DELAY_US = 100_000  # long enough that concurrent test requests share one dynamic batch


@pytest.fixture(scope="module")
def triton(torchserve: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[serve.TritonServer]:
    """Triton on free loopback ports, serving the model the shared TorchServe serves."""
    root = tmp_path_factory.mktemp("triton")
    spec = build_repo.RepoSpec(max_batch_size=16, max_queue_delay_us=QUEUE_DELAY_US)
    build_repo.build_repo(Path(torchserve.model_dir), root / "model_repository", spec)
    ports = serve.Ports(http=free_port(), grpc=free_port(), metrics=free_port())
    server = serve.start_triton(root / "model_repository", workdir=root / "run", ports=ports, timeout_s=300)
    try:
        yield server
    finally:
        server.stop()


def _column(items: list[bytes]) -> np.ndarray:
    return np.array(items, dtype=np.object_).reshape(-1, 1)


def _inputs(module: Any, texts: list[bytes], options: list[bytes] | None = None) -> list[Any]:
    columns = [("TEXT", texts)] + ([("OPTIONS", options)] if options is not None else [])
    inputs = []
    for name, rows in columns:
        tensor = module.InferInput(name, [len(rows), 1], "BYTES")
        tensor.set_data_from_numpy(_column(rows))
        inputs.append(tensor)
    return inputs


def _rows(result: Any) -> list[dict[str, Any]]:
    return [json.loads(item) for item in result.as_numpy("ENTITIES_JSON").reshape(-1)]


def _torchserve(torchserve: Any, text: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    token = torchserve.token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{torchserve.rest_url}/predictions/{MODEL}"
    if options is None:
        headers["Content-Type"] = "text/plain; charset=utf-8"
        answer = requests.post(url, data=text.encode("utf-8"), headers=headers, timeout=60)
    else:
        answer = requests.post(url, json={"text": text, "options": options}, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _score_tolerance(model_dir: Path) -> float:
    """1e-3 where both servers can only serve float32; 2e-2 where the plan may pick a reduced format.

    Both servers resolve their plan from the same probe on this machine, but their thread counts
    differ; in float32 that moves a score by less than 1e-3, in bfloat16 (8-bit mantissa) by up to
    about 1e-2.
    """
    config = json.loads((model_dir / "config.json").read_text())
    allowed = planning.candidates(hardware.detect(), hardware.gates_of(config), "cpu", onnx=True)
    return 1e-3 if all(dtype == "float32" for (_, dtype), _ in allowed) else 2e-2


def _same_entities(left: list[dict[str, Any]], right: list[dict[str, Any]], tol: float = 1e-3) -> None:
    """Same spans and types; scores equal to ``tol`` (padding differs between the two batchers)."""
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in left] == [
        (e["type"], e["text"], e["start"], e["end"]) for e in right
    ]
    for a, b in zip(left, right, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=tol)


def test_server_and_model_metadata(triton: serve.TritonServer) -> None:
    client = httpclient.InferenceServerClient(triton.http_target)
    assert client.is_server_ready() and client.is_model_ready(MODEL)
    meta = client.get_model_metadata(MODEL)
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        ("TEXT", "BYTES", [-1, 1]),
        ("OPTIONS", "BYTES", [-1, 1]),
    ]
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [("ENTITIES_JSON", "BYTES")]
    config = client.get_model_config(MODEL)
    assert config["max_batch_size"] == 16 and config["instance_group"][0]["kind"] == "KIND_CPU"
    metrics = requests.get(triton.metrics_url, timeout=10).text
    assert "nv_inference_request_success" in metrics
    client.infer(MODEL, _inputs(httpclient, [TEXTS[0].encode()]))
    metrics = requests.get(triton.metrics_url, timeout=10).text
    assert 'ja_ner_documents_total{model="ja_ner",version="1"}' in metrics
    assert 'ja_ner_stage_ms_total{model="ja_ner",stage="forward",version="1"}' in metrics


def test_http_and_grpc_agree_with_torchserve(triton: serve.TritonServer, torchserve: Any) -> None:
    encoded = [t.encode("utf-8") for t in TEXTS]
    via_http = _rows(httpclient.InferenceServerClient(triton.http_target).infer(MODEL, _inputs(httpclient, encoded)))
    via_grpc = _rows(grpcclient.InferenceServerClient(triton.grpc_target).infer(MODEL, _inputs(grpcclient, encoded)))
    assert via_http == via_grpc
    for text, row in zip(TEXTS, via_http, strict=True):
        reference = _torchserve(torchserve, text)
        assert set(row) == set(reference) and row["truncated"] == reference["truncated"]
        assert row["model"] == reference["model"]
        _same_entities(row["entities"], reference["entities"], _score_tolerance(Path(torchserve.model_dir)))
        for entity in row["entities"]:
            assert text[entity["start"] : entity["end"]] == entity["text"]


def test_options_agree_with_torchserve(triton: serve.TritonServer, torchserve: Any) -> None:
    options = {"offsets": "utf16", "aggregation": "max"}
    texts = [TEXTS[2], TEXTS[0]]
    client = httpclient.InferenceServerClient(triton.http_target)
    encoded_options = [json.dumps(options).encode(), json.dumps(options).encode()]
    rows = _rows(client.infer(MODEL, _inputs(httpclient, [t.encode() for t in texts], encoded_options)))
    for text, row in zip(texts, rows, strict=True):
        tol = _score_tolerance(Path(torchserve.model_dir))
        _same_entities(row["entities"], _torchserve(torchserve, text, options)["entities"], tol)


def test_hf_format_agrees_with_torchserve(triton: serve.TritonServer, torchserve: Any) -> None:
    """format: hf rows are the pipeline's entity list, as TorchServe answers it."""
    options = json.dumps({"format": "hf"}).encode()
    client = httpclient.InferenceServerClient(triton.http_target)
    (row,) = _rows(client.infer(MODEL, _inputs(httpclient, [TEXTS[0].encode()], [options])))
    reference = _torchserve(torchserve, TEXTS[0], {"format": "hf"})
    assert isinstance(row, list) and [e["word"] for e in row] == [e["word"] for e in reference]
    tol = _score_tolerance(Path(torchserve.model_dir))
    _same_entities([entity_from_hf(e) for e in row], [entity_from_hf(e) for e in reference], tol)


def _execution_count(client: httpclient.InferenceServerClient) -> tuple[int, int]:
    (stats,) = client.get_inference_statistics(MODEL)["model_stats"]
    return int(stats["inference_count"]), int(stats["execution_count"])


def test_http_bad_request_fails_alone_in_its_dynamic_batch(triton: serve.TritonServer) -> None:
    client = httpclient.InferenceServerClient(triton.http_target, concurrency=8)
    bodies = [b"\xff\xfe not UTF-8" if i == 2 else TEXTS[i % 4].encode() for i in range(6)]
    before = _execution_count(client)
    pending = [client.async_infer(MODEL, _inputs(httpclient, [body])) for body in bodies]
    outcomes: list[Any] = []
    for handle in pending:
        try:
            outcomes.append(_rows(handle.get_result()))
        except InferenceServerException as exc:
            outcomes.append(exc)
    after = _execution_count(client)
    bad = outcomes[2]
    assert isinstance(bad, InferenceServerException) and bad.status() == "400"
    assert json.loads(bad.message())["type"] == "InvalidInput"
    for i, outcome in enumerate(outcomes):
        if i != 2:
            assert isinstance(outcome, list) and len(outcome) == 1, outcome
    # the six requests were executed in fewer than six model calls: they really shared batches
    assert after[1] - before[1] < len(bodies)


def test_grpc_bad_request_fails_alone_in_its_dynamic_batch(triton: serve.TritonServer) -> None:
    client = grpcclient.InferenceServerClient(triton.grpc_target)
    done: queue.Queue[tuple[int, Any, Any]] = queue.Queue()
    bodies = [("あ" * 100_001).encode() if i == 1 else TEXTS[i].encode() for i in range(4)]
    for i, body in enumerate(bodies):
        client.async_infer(
            MODEL, _inputs(grpcclient, [body]), callback=lambda result, error, i=i: done.put((i, result, error))
        )
    results = dict((i, (r, e)) for i, r, e in (done.get(timeout=120) for _ in bodies))
    result, error = results[1]
    assert result is None and error is not None
    assert error.status() == "StatusCode.INVALID_ARGUMENT"
    assert json.loads(error.message())["code"] == 413
    for i in (0, 2, 3):
        result, error = results[i]
        assert error is None and len(_rows(result)) == 1


def test_raw_kserve_v2_json(triton: serve.TritonServer) -> None:
    body = {"inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [TEXTS[0]]}]}
    answer = requests.post(f"{triton.http_url}/v2/models/{MODEL}/infer", json=body, timeout=60)
    assert answer.status_code == 200
    (output,) = answer.json()["outputs"]
    assert json.loads(output["data"][0])["model"] == MODEL
    body["inputs"].append({"name": "OPTIONS", "shape": [1, 1], "datatype": "BYTES", "data": ['{"offsets": "bytes"}']})
    answer = requests.post(f"{triton.http_url}/v2/models/{MODEL}/infer", json=body, timeout=60)
    assert answer.status_code == 400
    assert json.loads(answer.json()["error"])["type"] == "InvalidInput"
