"""``podman kube play`` of deploy/k8s/torchserve.yaml and triton.yaml, the images resolved to the local builds.

What podman runs of a manifest: the Deployment's pods (both replicas), their resources, security
context, volumes and environment. What it does not implement, this test does the way Kubernetes
would, from the manifest's own fields: the startup/readiness probes (polled on each pod's network
namespace, tests/images/service.py), the Service (a round-robin forwarder on 127.0.0.1) and the
endpoint removal when a pod is deleted. HPA, PodDisruptionBudget and NetworkPolicy stay validated
offline (tests/unit/test_deploy_k8s.py); docs/deploy.md says which is which.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from imagekit import REPO, built, podman, readme_text
from podservice import PodConnector, Service

from bench.client import Users
from deploy import images

COMMITTED_IMAGE = "registry.example.com/ja-ner-{name}:1.0"
# one line per TorchServe worker / Triton instance (ja_ner/forward.py)
LOADED = re.compile(r"model loaded from \S+ on cpu as \w+, (\d+) thread\(s\)")


@dataclass
class Pod:
    name: str
    container: str
    connector: PodConnector

    def get(self, port: int, path: str, timeout: float = 5) -> int:
        sock = self.connector.connect(port)
        sock.settimeout(timeout)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.sock = sock
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        except (OSError, http.client.HTTPException):
            return 0
        finally:
            conn.close()

    def logs(self) -> str:
        result = podman("logs", self.container, check=False)
        return result.stdout + result.stderr


def render(name: str, out: Path) -> tuple[Path, dict]:
    """The committed manifest with its image name resolved to the local build, and its Deployment."""
    import yaml

    text = (REPO / "deploy" / "k8s" / f"{name}.yaml").read_text()
    committed = COMMITTED_IMAGE.format(name=name)
    assert text.count(committed) == 1, f"{name}.yaml names {committed} once"
    path = out / f"{name}.yaml"
    path.write_text(text.replace(committed, images.IMAGES[name][1]))
    (deployment,) = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "Deployment"]
    return path, deployment


def _port(container: dict, probe: dict) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return number


def wait_probes(pod: Pod, container: dict) -> float:
    """Run the manifest's startupProbe, then its readinessProbe, as the kubelet would; seconds to ready."""
    started = time.monotonic()
    startup = container["startupProbe"]
    for _ in range(startup["failureThreshold"]):
        if pod.get(_port(container, startup), startup["httpGet"]["path"], startup.get("timeoutSeconds", 1)) == 200:
            break
        time.sleep(startup["periodSeconds"])
    else:
        raise AssertionError(f"{pod.name}: startupProbe never passed\n{pod.logs()[-4000:]}")
    ready = container["readinessProbe"]
    assert pod.get(_port(container, ready), ready["httpGet"]["path"], ready.get("timeoutSeconds", 1)) == 200
    return time.monotonic() - started


def _cpus(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


@pytest.fixture(params=["torchserve", "triton"])
def played(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path, dict, list[Pod]]]:
    name = request.param
    built(name)
    path, deployment = render(name, tmp_path)
    deploy_name = deployment["metadata"]["name"]
    podman("kube", "down", str(path), check=False)
    play = podman("kube", "play", str(path), check=False, timeout=900)
    pods: list[Pod] = []
    try:
        assert play.returncode == 0, play.stderr[-3000:]
        listed = json.loads(podman("pod", "ps", "--format", "json", "--filter", f"name={deploy_name}").stdout)
        (container_spec,) = deployment["spec"]["template"]["spec"]["containers"]
        for entry in sorted(listed, key=lambda p: p["Name"]):
            infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", entry["Name"]).stdout.strip()
            pid = int(podman("inspect", "--format", "{{.State.Pid}}", infra).stdout)
            container = f"{entry['Name']}-{container_spec['name']}"
            pods.append(Pod(entry["Name"], container, PodConnector(pid)))
        yield name, path, deployment, pods
    finally:
        for pod in pods:
            pod.connector.close()
        down = podman("kube", "down", str(path), check=False, timeout=300)
        left = podman("pod", "ps", "--format", "{{.Name}}", "--filter", f"name={deploy_name}").stdout.split()
        assert down.returncode == 0 and not left, f"podman kube down left {left}: {down.stderr[-2000:]}"


def _load_request(name: str, text: str) -> tuple[str, str]:
    """(path, body) of one request: TorchServe's REST text, or Triton's KServe v2 JSON."""
    if name == "torchserve":
        return "/predictions/ja_ner", text
    body = {"inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [text]}]}
    return "/v2/models/ja_ner/infer", json.dumps(body, ensure_ascii=False)


def test_kube_play_both_replicas_ready_sized_loaded_and_one_removed_under_load(played) -> None:
    name, _path, deployment, pods = played
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert len(pods) == deployment["spec"]["replicas"] == 2

    # both replicas ready through the manifest's own probes
    for pod in pods:
        seconds = wait_probes(pod, container)
        print(f"{pod.name}: ready in {seconds:.0f} s")

    # workers x threads = the CPUs the pod's limits give it
    cpus = _cpus(str(container["resources"]["limits"]["cpu"]))
    for pod in pods:
        threads = [int(n) for n in LOADED.findall(pod.logs())]
        print(f"{pod.name}: {len(threads)} worker(s) x threads {threads}, limit {cpus:g} CPU(s)")
        assert threads, f"{pod.name}: no 'model loaded ... thread(s)' line in its log"
        assert sum(threads) == cpus, f"{pod.name}: {len(threads)} worker(s) with {threads} thread(s), limit {cpus}"

    # load through the Service stand-in reaches both pods; one pod removed under load
    http_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "http")
    service = Service({pod.name: pod.connector for pod in pods}, http_port)
    path, body = _load_request(name, readme_text())
    grace = spec["terminationGracePeriodSeconds"]
    try:
        with Users(service.url + path, [body], users=4, timeout=grace) as load:
            time.sleep(10)
            assert all(service.connections[pod.name] > 0 for pod in pods), service.connections
            before = len(load.records())
            assert before > 0 and all(ok for _, _, ok in load.records()), "requests fail before any removal"
            removed = pods[1]
            service.remove(removed.name)
            removed_at = time.perf_counter()
            stopped: dict[str, float] = {}

            def stop_pod() -> None:
                podman("pod", "stop", "--time", str(grace), removed.name, timeout=grace + 60)
                stopped["s"] = time.perf_counter() - removed_at

            stopper = threading.Thread(target=stop_pod)
            stopper.start()
            time.sleep(15)
        stopper.join()
        records = load.records()
    finally:
        service.close()
    after = [ok for start, _, ok in records if start >= removed_at]
    failed = after.count(False)
    code = int(podman("inspect", "--format", "{{.State.ExitCode}}", removed.container).stdout)
    print(f"{name}: {before} requests before removal, {len(after)} sent after it, {failed} failed; "
          f"{removed.name} exited {code} in {stopped.get('s', float('nan')):.1f} s (grace {grace} s); "
          f"connections {dict(service.connections)}")  # fmt: skip
    assert after, "no request was sent after the removal"
    assert failed == 0
    assert code == 0
    assert stopped["s"] < grace
