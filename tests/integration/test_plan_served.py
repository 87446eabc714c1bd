"""The plan a real TorchServe resolved (issues 21, 25): logged once per worker, and its answers torch's.

Whatever pair ``auto`` serves on this machine (torch or ONNX Runtime, float32, bfloat16 or int8),
its answers equal torch float32's in process: the same entities, scores within the accuracy of a
reduced format.
"""

from __future__ import annotations

import re

import pytest
import requests

from ja_ner.pipeline import Pipeline
from ja_ner.request import render_result
from ja_ner.settings import Settings
from ja_ner.types import Document
from training.challenge import load as load_challenge

pytestmark = pytest.mark.integration

PLAN_LINE = re.compile(r"plan: (torch|onnxruntime)/(float32|bfloat16|float16|int8) on (\S+), (\d+) thread")


def _served_plan(torchserve) -> tuple[str, str, int]:
    logs = torchserve.workdir / "logs" / "model_log.log"
    found = PLAN_LINE.findall(logs.read_text(encoding="utf-8", errors="replace"))
    assert found, f"no plan line in {logs}"
    runtime, dtype, device, threads = found[-1]
    assert device == "cpu"
    return runtime, dtype, int(threads)


def test_each_worker_logs_the_plan_it_serves(torchserve):
    runtime, dtype, threads = _served_plan(torchserve)
    assert threads >= 1  # one worker here (conftest): all usable cores


def test_the_served_pair_answers_as_torch_float32(torchserve):
    """float32 pairs (torch, ONNX Runtime): the same entities, scores to 1e-3; a reduced format within its gate."""
    runtime, dtype, _ = _served_plan(torchserve)
    reference = Pipeline.load(torchserve.model_dir, Settings(dtype="float32", runtime="torch", threads=1))
    texts = [item.example.text for item in load_challenge()][::9]
    url = f"{torchserve.rest_url}/predictions/{torchserve.model_name}"
    served = [r["entities"] for r in requests.post(url, json={"texts": texts}, timeout=120).json()["results"]]
    outcomes = reference.predict([Document(t) for t in texts])
    expected = [render_result(Document(t), o)["entities"] for t, o in zip(texts, outcomes, strict=True)]
    assert sum(len(e) for e in expected) >= 20

    def spans(entities: list[dict]) -> list[tuple]:
        return [(e["type"], e["start"], e["end"]) for e in entities]

    differing = [i for i, (got, want) in enumerate(zip(served, expected, strict=True)) if spans(got) != spans(want)]
    if dtype != "float32":  # the gate allows a few texts to differ (int8: 31 of 513 dev sentences)
        assert len(differing) <= len(texts) // 10, f"{runtime}/{dtype}: {differing}"
        return
    assert not differing, f"{runtime}/{dtype}: {differing}"
    for got, want in zip(served, expected, strict=True):
        for a, b in zip(got, want, strict=True):
            assert a["score"] == pytest.approx(b["score"], abs=1e-3)
