"""The running server keeps the contract in docs/openapi.yaml.

Real answers of the session TorchServe (one text, a client batch, each error) are validated against
the document, and schemathesis sends property-based requests generated from it: a short, seeded,
bounded run here (JA_NER_FUZZ_EXAMPLES per phase and operation, default 20), a long one with
``make fuzz`` (more examples, and JA_NER_FUZZ_SECONDS: a time budget that fuzzing fills).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import schemathesis

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "docs" / "openapi.yaml"
ST_CONFIG = REPO / "tests" / "schemathesis.toml"
WIDGET = "鈴木は4月の陽気の良い日に、鈴をつけて熊本県の阿蘇山に登った"
WIDGET_ENTITIES = [("鈴木", "PER"), ("熊本県", "LOC"), ("阿蘇山", "LOC")]


@pytest.fixture(scope="module")
def contract():
    return schemathesis.openapi.from_path(SPEC)


def _check(contract, response: requests.Response, path: str = "/predictions/{model}", method: str = "POST") -> None:
    operation = contract[path][method]
    documented = operation.definition.raw["responses"]
    assert str(response.status_code) in documented, f"{response.status_code} is not in the contract"
    operation.validate_response(response)  # raises with the schema violation


def _post(torchserve, model: str | None = None, **kwargs) -> requests.Response:
    return requests.post(f"{torchserve.rest_url}/predictions/{model or torchserve.model_name}", timeout=60, **kwargs)


def test_one_text_in_every_body_form_matches_the_contract(torchserve, contract) -> None:
    answers = [
        _post(torchserve, data=WIDGET.encode(), headers={"Content-Type": "text/plain; charset=utf-8"}),
        _post(torchserve, json={"text": WIDGET, "options": {"include_tokens": True, "offsets": "utf16"}}),
        _post(torchserve, data=WIDGET.encode(), headers={"Content-Type": "application/octet-stream"}),
        _post(torchserve, files={"data": (None, WIDGET), "options": (None, '{"aggregation": "max"}')}),
    ]
    for response in answers:
        assert response.status_code == 200, response.text
        _check(contract, response)
        assert [(e["text"], e["type"]) for e in response.json()["entities"]] == WIDGET_ENTITIES
    assert "tokens" in answers[1].json()


def test_client_batch_matches_the_contract(torchserve, contract) -> None:
    response = _post(torchserve, json={"texts": [WIDGET, "", "東京都に住む"]})
    assert response.status_code == 200
    _check(contract, response)
    assert len(response.json()["results"]) == 3


def test_hf_format_answers_match_the_contract(torchserve, contract) -> None:
    one = _post(torchserve, json={"text": WIDGET, "options": {"format": "hf"}})
    batch = _post(torchserve, json={"texts": [WIDGET, "", WIDGET], "options": {"format": "hf"}})
    for response in (one, batch):
        assert response.status_code == 200
        _check(contract, response)
    assert [(e["word"], e["entity_group"]) for e in one.json()] == WIDGET_ENTITIES
    assert batch.json()[1] == [] and batch.json()[0] == batch.json()[2] == one.json()


@pytest.mark.parametrize(
    ("request_kwargs", "model", "status", "error_type"),
    [
        ({"json": {"text": "a", "options": {"colour": "red"}}}, None, 400, "InvalidInput"),
        ({"data": b"\x00", "headers": {"Content-Type": "application/json"}}, None, 400, "InvalidInput"),
        ({"json": {"text": "あ" * 100_001}}, None, 413, "InputTooLarge"),
        ({"json": {"texts": ["a"] * 65}}, None, 413, "InputTooLarge"),
        ({"data": b"a"}, "no_such_model", 404, "ModelNotFoundException"),
    ],
    ids=["unknown-option", "declared-json-not-json", "text-too-long", "batch-too-large", "unknown-model"],
)
def test_errors_match_the_contract(torchserve, contract, request_kwargs, model, status, error_type) -> None:
    response = _post(torchserve, model, **request_kwargs)
    assert response.status_code == status
    assert response.json()["type"] == error_type
    _check(contract, response)


def test_ping_matches_the_contract(torchserve, contract) -> None:
    response = requests.get(f"{torchserve.rest_url}/ping", timeout=10)
    assert response.status_code == 200
    _check(contract, response, "/ping", "GET")


def test_schemathesis_finds_no_server_error_and_no_contract_violation(torchserve) -> None:
    """Bounded property-based run; the server must answer the widget sentence right afterwards."""
    examples = os.environ.get("JA_NER_FUZZ_EXAMPLES", "20")
    seconds = os.environ.get("JA_NER_FUZZ_SECONDS")  # a budget that fuzzing fills: make fuzz only
    seed = os.environ.get("JA_NER_FUZZ_SEED", "15")
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file", str(ST_CONFIG),
        "run", str(SPEC),
        "--url", torchserve.rest_url,
        "--checks", "all",
        # TorchServe's frontend answers /ping and /predictions for every method (TRACE, PUT...):
        # not the handler's to change.
        "--exclude-checks", "unsupported_method",
        "--max-examples", examples,
        "--seed", seed,
        "--workers", "1",
        "--request-timeout", "60",
    ] + (["--max-time", seconds] if seconds else [])  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.contract_hooks", "NO_COLOR": "1"}
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=float(seconds or 60) * 2 + 300)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
    print("\n".join(line for line in run.stdout.splitlines() if "generated" in line or "Seed:" in line))

    ping = requests.get(f"{torchserve.rest_url}/ping", timeout=10)
    assert ping.json() == {"status": "Healthy"}
    after = _post(torchserve, json={"text": WIDGET})
    assert [(e["text"], e["type"]) for e in after.json()["entities"]] == WIDGET_ENTITIES
