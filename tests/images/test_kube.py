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
import yaml
from imagekit import REPO, built, podman, readme_text
from podservice import PodConnector, Service

from bench.client import Users
from deploy import images
from handler.server import free_port

COMMITTED_IMAGE = "registry.example.com/ja-ner-{name}:1.0"
# one line per TorchServe worker / Triton instance (ja_ner/forward.py)
# The plan each TorchServe worker / Triton instance logs once (ja_ner.plan.Plan.describe).
LOADED = re.compile(r"plan: [a-z]+/[a-z0-9]+ on cpu, (\d+) thread\(s\)")


@dataclass
class Pod:
    name: str
    container: str
    connector: PodConnector

    def get(self, port: int, path: str, timeout: float = 5) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.connector.published[port], timeout=timeout)
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
    """The Deployment's replicas as Pods for ``podman kube play``, the image resolved to the local build.

    Three things podman 4.3 does differently from Kubernetes are handled here, as the ReplicaSet
    controller and the cluster would: ``kube play`` of a Service binds its ports on every host
    interface (so only the Deployment is played, the Service is stood in for by ``podservice``), and
    it publishes every ``containerPort`` on every host interface (each gets ``hostIP: 127.0.0.1`` and a
    free ``hostPort`` here, so two replicas do not collide and nothing leaves loopback), and
    the replicas of one Deployment share each ``emptyDir`` as one named volume (TorchServe's
    worker sockets and pid file in ``/tmp`` would collide), so each replica Pod gets its own. The
    pod template (containers, env, resources, probes, security context) is the committed one.
    """
    import copy

    text = (REPO / "deploy" / "k8s" / f"{name}.yaml").read_text()
    committed = COMMITTED_IMAGE.format(name=name)
    assert text.count(committed) == 1, f"{name}.yaml names {committed} once"
    text = text.replace(committed, images.IMAGES[name][1])
    (deployment,) = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "Deployment"]
    pods = []
    for index in range(deployment["spec"]["replicas"]):
        template = copy.deepcopy(deployment["spec"]["template"])
        spec = template["spec"]
        renamed = {v["name"]: f"{v['name']}-{index}" for v in spec.get("volumes", []) if "emptyDir" in v}
        for volume in spec.get("volumes", []):
            volume["name"] = renamed.get(volume["name"], volume["name"])
        for container in spec["containers"]:
            for mount in container.get("volumeMounts", []):
                mount["name"] = renamed.get(mount["name"], mount["name"])
            for port in container.get("ports", []):  # podman publishes every containerPort on the host
                port.update(hostIP="127.0.0.1", hostPort=free_port())
        metadata = {**template["metadata"], "name": f"{deployment['metadata']['name']}-{index}"}
        pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
    path = out / f"{name}-pods.yaml"
    path.write_text(yaml.safe_dump_all(pods, allow_unicode=True))
    return path, deployment


# podman 4.3 ignores ``optional: true`` on a secret volume: an empty Secret stands for "not created"
EMPTY_SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: %s}\ndata: {}\n"


def _secrets(deployment: dict) -> list[str]:
    volumes = deployment["spec"]["template"]["spec"].get("volumes", [])
    return [v["secret"]["secretName"] for v in volumes if "secret" in v and v["secret"].get("optional")]


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


@pytest.fixture(scope="module", params=["torchserve", "triton"])
def played(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, dict, list[Pod]]]:
    name = request.param
    built(name)
    tmp_path = tmp_path_factory.mktemp(name)
    path, deployment = render(name, tmp_path)
    deploy_name = deployment["metadata"]["name"]
    rendered_pods = [d for d in yaml.safe_load_all(path.read_text()) if d]
    podman("kube", "down", str(path), check=False)
    secrets = _secrets(deployment)
    for secret in secrets:
        podman("secret", "rm", secret, check=False)
        (tmp_path / "secret.yaml").write_text(EMPTY_SECRET % secret)
        podman("secret", "create", secret, str(tmp_path / "secret.yaml"))
    play = podman("kube", "play", str(path), check=False, timeout=900)
    pods: list[Pod] = []
    try:
        assert play.returncode == 0, play.stderr[-3000:]
        # an emptyDir is world-writable in Kubernetes; podman 4.3 gives its volume the mode of the
        # image's directory (root 0755 for /dev/shm: Triton's python backend, uid 10001, cannot create
        # its regions). The mode Kubernetes gives, then the container's restart policy retries.
        for pod in rendered_pods:
            for volume in pod["spec"].get("volumes", []):
                if "emptyDir" in volume:
                    mountpoint = podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume["name"]).stdout
                    Path(mountpoint.strip()).chmod(0o1777)
        listed = json.loads(podman("pod", "ps", "--format", "json", "--filter", f"name={deploy_name}").stdout)
        (container_spec,) = deployment["spec"]["template"]["spec"]["containers"]
        assert len(listed) == deployment["spec"]["replicas"], listed
        for entry in sorted(listed, key=lambda p: p["Name"]):
            (rendered,) = [p for p in rendered_pods if p["metadata"]["name"] == entry["Name"]]
            (ports,) = [c["ports"] for c in rendered["spec"]["containers"]]
            container = f"{entry['Name']}-{container_spec['name']}"
            connector = PodConnector({p["containerPort"]: p["hostPort"] for p in ports})
            pods.append(Pod(entry["Name"], container, connector))
        yield name, path, deployment, pods
    finally:
        for pod in pods:
            pod.connector.close()
        down = podman("kube", "down", str(path), check=False, timeout=300)
        for secret in secrets:
            podman("secret", "rm", secret, check=False)
        left = podman("pod", "ps", "--format", "{{.Name}}", "--filter", f"name={deploy_name}").stdout.split()
        volumes = podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
        leftover = [v for v in volumes if any(v.startswith(f"{m}-") for m in ("run", "tmp", "shm"))]
        for volume in leftover:  # podman 4.3 keeps emptyDir volumes after kube down
            podman("volume", "rm", "--force", volume, check=False)
        if play.returncode == 0:
            assert down.returncode == 0 and not left, f"podman kube down left {left}: {down.stderr[-2000:]}"


def _load_request(name: str, text: str) -> tuple[str, str]:
    """(path, body) of one request: TorchServe's REST text, or Triton's KServe v2 JSON."""
    if name == "torchserve":
        return "/predictions/ja_ner", text
    body = {"inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [text]}]}
    return "/v2/models/ja_ner/infer", json.dumps(body, ensure_ascii=False)


def _predict(pod: Pod, port: int, name: str) -> int:
    path, body = _load_request(name, readme_text())
    conn = http.client.HTTPConnection("127.0.0.1", pod.connector.published[port], timeout=120)
    try:
        conn.request("POST", path, body=body.encode(), headers={"Content-Type": "text/plain; charset=utf-8"})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def _http_port(container: dict) -> int:
    return next(p["containerPort"] for p in container["ports"] if p["name"] == "http")


def test_both_replicas_become_ready_through_the_manifest_probes(played) -> None:
    name, _path, deployment, pods = played
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert len(pods) == deployment["spec"]["replicas"] == 2
    for pod in pods:
        seconds = wait_probes(pod, container)
        print(f"{pod.name}: ready in {seconds:.0f} s")
        # ready means it answers: a readiness probe that passes before the model is loaded is wrong
        assert _predict(pod, _http_port(container), name) == 200, pod.logs()[-3000:]


def _loaded_threads(pod: Pod, timeout_s: float = 120) -> list[int]:
    """Threads of every worker/instance that logged its model load, once that list stops growing."""
    deadline, seen, stable = time.monotonic() + timeout_s, None, 0
    while time.monotonic() < deadline:
        threads = [int(n) for n in LOADED.findall(pod.logs())]
        stable = stable + 1 if threads and threads == seen else 0
        if stable >= 3:
            return threads
        seen = threads
        time.sleep(2)
    return seen or []


def test_each_pod_uses_the_cpus_of_its_limits(played) -> None:
    """workers x threads (the sum of threads over the workers) = the pod's CPU limit."""
    _name, _path, deployment, pods = played
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    cpus = _cpus(str(container["resources"]["limits"]["cpu"]))
    for pod in pods:
        assert wait_probes(pod, container) >= 0
        threads = _loaded_threads(pod)
        print(f"{pod.name}: {len(threads)} worker(s) x threads {threads}, limit {cpus:g} CPU(s)")
        assert threads, f"{pod.name}: no 'plan: ... thread(s)' line in its log"
        assert sum(threads) == cpus, f"{pod.name}: {len(threads)} worker(s) with {threads} thread(s), limit {cpus}"


def test_load_reaches_both_pods_and_one_pod_removed_under_load_fails_nothing(played) -> None:
    name, _path, deployment, pods = played
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    for pod in pods:
        wait_probes(pod, container)

    # load through the Service stand-in reaches both pods; one pod removed under load
    service = Service({pod.name: pod.connector for pod in pods}, _http_port(container))
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
                # as the kubelet deletes a pod: SIGTERM to its containers, the grace period, then the
                # sandbox (podman's infra container holds the pod's network and port mappings)
                podman("stop", "--time", str(grace), removed.container, timeout=grace + 60)
                stopped["s"] = time.perf_counter() - removed_at
                podman("pod", "stop", removed.name, timeout=120)

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
