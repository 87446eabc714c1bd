"""The TorchServe image, run by podman: health, answers, gRPC, metrics, user, files, auth, drain."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import grpc
import pytest
import requests
from imagekit import REPO, Container, deployment, podman, readme_text, run_container

from handler.server import start_on_free_ports, stop
from ja_ner.proto_gen import inference_pb2, inference_pb2_grpc

UID = 10001


def test_the_image_keeps_its_healthcheck(torchserve_image: str) -> None:
    """Found by this test: podman's default OCI format drops HEALTHCHECK (make images builds --format docker)."""
    config = json.loads(podman("image", "inspect", "--format", "{{json .Config.Healthcheck}}", torchserve_image).stdout)
    assert config and "server.py" in " ".join(config["Test"]), config


def test_healthy_by_its_own_healthcheck(ts_container: Container) -> None:
    assert ts_container.healthy()
    state = podman("inspect", "--format", "{{.State.Health.Status}}", ts_container.name).stdout.strip()
    assert state == "healthy"


def test_readme_request_answered_byte_for_byte_as_without_a_container(ts_readme_answer: bytes, tmp_path: Path) -> None:
    """The same .mar served by ``make serve``'s code path (config.properties, no container)."""
    store = REPO / "model_store"
    server = start_on_free_ports(
        {"load_models": "ja_ner=ja_ner.mar", "default_workers_per_model": "1"}, store, tmp_path / "work"
    )
    try:
        local = requests.post(
            f"{server.rest_url}/predictions/ja_ner",
            data=readme_text().encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
            timeout=60,
        )
    finally:
        stop(server)
    assert local.status_code == 200, local.text
    assert ts_readme_answer == local.content
    assert json.loads(ts_readme_answer)["entities"], "the README's example finds entities"


def test_grpc_predictions_and_metrics_answer(ts_container: Container, ts_readme_answer: bytes) -> None:
    key = ts_container.key()
    with grpc.insecure_channel(f"127.0.0.1:{ts_container.ports[7070]}") as channel:
        stub = inference_pb2_grpc.InferenceAPIsServiceStub(channel)
        request = inference_pb2.PredictionsRequest(model_name="ja_ner", input={"data": readme_text().encode()})
        answer = stub.Predictions(request, metadata=[("authorization", f"Bearer {key}")], timeout=60)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Predictions(request, timeout=60)  # no key
    assert json.loads(answer.prediction) == json.loads(ts_readme_answer)
    assert refused.value.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    metrics = requests.get(f"{ts_container.url(8082)}/metrics", timeout=30)
    assert metrics.status_code == 200
    assert 'ts_inference_requests_total{model_name="ja_ner"' in metrics.text


def test_token_authorisation_as_the_image_config_says(ts_container: Container) -> None:
    """deploy/torchserve/config.properties: disable_token_authorization=false (TorchServe refuses with 400)."""
    url = f"{ts_container.url(8080)}/predictions/ja_ner"
    body = readme_text().encode()
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    management_key = f"Bearer {ts_container.key('management')}"
    for refused in ({}, {"Authorization": "Bearer not-the-key"}, {"Authorization": management_key}):
        answer = requests.post(url, data=body, headers={**headers, **refused}, timeout=60)
        assert answer.status_code in (400, 401) and "token" in answer.text.lower(), (refused, answer.text)
    ping = requests.get(f"{ts_container.url(8080)}/ping", timeout=30)
    assert ping.status_code in (400, 401), "even /ping needs the key"
    right = {**headers, "Authorization": f"Bearer {ts_container.key()}"}
    assert requests.post(url, data=body, headers=right, timeout=60).status_code == 200


def _writable_mounts() -> set[str]:
    """Where the pod gives the container writable storage (its root filesystem is read-only)."""
    (container,) = deployment("torchserve")["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    return {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}


def test_runs_as_uid_10001_and_writes_only_where_the_image_says(ts_container: Container) -> None:
    uids = ts_container.exec(
        "python", "-c",
        "import pathlib; print(*sorted({l.split()[1] for p in pathlib.Path('/proc').glob('[0-9]*/status')"
        " for l in p.read_text().splitlines() if l.startswith('Uid:')}))",
    ).split()  # fmt: skip
    assert uids == [str(UID)]
    writable = _writable_mounts()
    assert writable == {"/home/model-server/run", "/tmp"}
    changes = [line.split(maxsplit=1) for line in podman("diff", ts_container.name).stdout.splitlines()]
    added = [path for kind, path in changes if kind in ("A", "D")]
    assert added, "TorchServe writes its logs and keys"
    outside = [p for p in added if not any(p == w or p.startswith(w + "/") for w in writable)]
    assert outside == []
    assert "/home/model-server/run/logs/ts_log.log" in added


# -- SIGTERM drain -------------------------------------------------------------------------------

LONG_REPEAT = 50  # the README sentence 50 times: ~1,500 characters, several windows each


def test_sigterm_with_requests_in_flight_answers_them_all_and_exits_0(torchserve_image: str) -> None:
    grace = deployment("torchserve")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    container = run_container(torchserve_image, [8080])
    try:
        container.wait_healthy()
        key = container.key()
        url = f"{container.url(8080)}/predictions/ja_ner"
        texts = [readme_text() * LONG_REPEAT] * 2 + [readme_text()] * 4
        answers: list[object] = [None] * len(texts)

        def send(i: int) -> None:
            try:
                answer = requests.post(
                    url, data=texts[i].encode(), timeout=grace,
                    headers={"Content-Type": "text/plain; charset=utf-8", "Authorization": f"Bearer {key}"},
                )  # fmt: skip
                answers[i] = (answer.status_code, answer.json())
            except (requests.RequestException, ValueError) as err:
                answers[i] = err

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(texts))]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # every request sent and accepted
        in_flight = sum(thread.is_alive() for thread in threads)
        started = time.monotonic()
        stopper = threading.Thread(target=podman, args=("stop", "--time", str(grace), container.name))
        stopper.start()
        time.sleep(0.5)
        unready = not container.healthy() if any(t.is_alive() for t in threads) else None
        for thread in threads:
            thread.join()
        stopper.join()
        elapsed = time.monotonic() - started
        code = int(podman("inspect", "--format", "{{.State.ExitCode}}", container.name).stdout)
        answered = sum(1 for a in answers if isinstance(a, tuple) and a[0] == 200)
        print(f"drain: {in_flight} in flight at SIGTERM, {answered}/{len(texts)} answered 200, "
              f"exit code {code}, stopped in {elapsed:.1f} s (grace {grace} s)")  # fmt: skip
        assert in_flight >= 1, "the requests finished before SIGTERM: make them longer"
        assert answered == len(texts), answers
        assert all(a[1]["entities"] for a in answers if isinstance(a, tuple))
        assert code == 0
        assert elapsed < grace
        assert unready in (True, None), "health stays ready while draining"
        assert "drained in" in container.logs()
    finally:
        container.remove()


@pytest.fixture(autouse=True)
def _needs_java_here(request: pytest.FixtureRequest) -> None:
    if request.node.name.startswith("test_readme") and not shutil.which("java"):
        pytest.skip("the non-container server needs Java 17 here")
