"""The Triton image, run by podman: ready, and one HTTP and one gRPC inference equal to TorchServe's answer."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from imagekit import Container, readme_text, run_container


@pytest.fixture(scope="module")
def triton_container(triton_image: str) -> Iterator[Container]:
    container = run_container(triton_image, [8000, 8001], "--shm-size", "256m")
    try:
        container.wait_healthy()
        yield container
    finally:
        container.remove()


def _inputs(module, text: str) -> list:
    tensor = module.InferInput("TEXT", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([text.encode()], dtype=np.object_).reshape(1, 1))
    return [tensor]


def _entities(answer: dict) -> list[dict]:
    return answer["entities"]


def test_triton_ready_and_its_answers_equal_torchserve(triton_container: Container, ts_readme_answer: bytes) -> None:
    expected = json.loads(ts_readme_answer)
    text = readme_text()
    http = httpclient.InferenceServerClient(f"127.0.0.1:{triton_container.ports[8000]}")
    assert http.is_server_ready() and http.is_model_ready("ja_ner")
    over_http = http.infer("ja_ner", _inputs(httpclient, text)).as_numpy("ENTITIES_JSON").reshape(-1)[0]
    grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{triton_container.ports[8001]}")
    over_grpc = grpc.infer("ja_ner", _inputs(grpcclient, text)).as_numpy("ENTITIES_JSON").reshape(-1)[0]
    for answer in (json.loads(over_http), json.loads(over_grpc)):
        assert _entities(answer) == _entities(expected)
        assert answer.get("truncated") == expected.get("truncated")
