"""Helpers for the container tests (``make test-images``): real podman containers of the built images.

Every port is published on 127.0.0.1 only. The images must exist (``make images``, which
``make test-images`` runs first); where podman cannot run a container at all the tests skip with
the reason (``deploy/images.py preflight``), anywhere else a missing image or a failed start fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from deploy import images
from handler.server import free_port

REPO = Path(__file__).resolve().parents[2]
README_REQUEST = re.compile(
    r"curl -X POST localhost:8080/predictions/ja_ner -H 'Content-Type: text/plain' \\\n\s+--data '([^']+)'"
)
START_TIMEOUT_S = 300  # the manifests' startupProbe allows 30 x 10 s


def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``podman ARGS`` with the project's containers.conf; output captured as text."""
    result = subprocess.run(["podman", *args], env=images.podman_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


def built(name: str) -> str:
    """The tag of image ``name``; fails (not skips) when it has not been built."""
    tag = images.IMAGES[name][1]
    if podman("image", "exists", tag, check=False).returncode != 0:
        pytest.fail(f"image {tag} ({name}) is missing: run `make images`")
    return tag


def readme_text() -> str:
    """The text of the README's example request."""
    match = README_REQUEST.search((REPO / "README.md").read_text())
    assert match, "the README's curl example changed: update README_REQUEST"
    return match.group(1)


def manifest(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((REPO / "deploy" / "k8s" / f"{name}.yaml").read_text()) if doc]


def deployment(name: str) -> dict:
    (found,) = [d for d in manifest(name) if d["kind"] == "Deployment"]
    return found


@dataclass
class Container:
    """A running container and its published loopback ports (container port -> host port)."""

    name: str
    ports: dict[int, int]
    started: float = field(default_factory=time.monotonic)

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"

    def healthy(self) -> bool:
        return podman("healthcheck", "run", self.name, check=False, timeout=60).returncode == 0

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def wait_healthy(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"{self.name} exited while starting:\n{self.logs()[-4000:]}")
            if self.healthy():
                return
            time.sleep(2)
        raise AssertionError(f"{self.name} not healthy after {timeout_s:.0f} s:\n{self.logs()[-4000:]}")

    def exec(self, *command: str) -> str:
        return podman("exec", self.name, *command).stdout

    def key(self, kind: str = "inference") -> str:
        return json.loads(self.exec("cat", "key_file.json"))[kind]["key"]

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)


def run_container(image: str, ports: list[int], *extra: str) -> Container:
    """``podman run -d`` of ``image`` with each of ``ports`` published on a free 127.0.0.1 port."""
    name = f"ja-ner-test-{uuid.uuid4().hex[:8]}"
    published = {port: free_port() for port in ports}
    flags = [arg for port, host in published.items() for arg in ("-p", f"127.0.0.1:{host}:{port}")]
    podman("run", "-d", "--name", name, *flags, *extra, image)
    return Container(name, published)
