"""Start, wait for and stop TorchServe instances (the Makefile, tests, bench and tools use this).

    python -m handler.server start --config config.properties --model-store model_store
    python -m handler.server stop
    python handler/server.py health http://127.0.0.1:8080/ping   # exit 0 on 200 (container HEALTHCHECK)

Each instance gets its own TMPDIR (TorchServe keeps its pid file there) and log folder, so
several can run side by side on different ports (``start_on_free_ports``). The one reader of
TorchServe's ``key_file.json`` (``read_key``) and of free loopback ports (``free_port``) live here.
Standard library only at import (``auto_workers`` imports ``ja_ner.hardware`` when it runs), so the
images copy this one file for their HEALTHCHECK (``health``, which needs nothing else).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("server")
REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = REPO / "build" / "serve"  # make serve's instance (its key_file.json too)
DEFAULT_CONFIG = REPO / "config.properties"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now at ``host`` (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def read_key(key_file: Path, kind: str = "inference") -> str | None:
    """The ``kind`` key (inference or management) TorchServe wrote to ``key_file``, else None.

    None when token authorisation is off (no file), or the file is caught half-written while
    TorchServe starts.
    """
    try:
        return str(json.loads(key_file.read_text())[kind]["key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_properties(path: Path) -> dict[str, str]:
    props = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def write_properties(props: dict[str, str], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


@dataclass(frozen=True)
class Server:
    """A running TorchServe: where it listens and where its files are."""

    workdir: Path
    props: dict[str, str]

    @property
    def rest_url(self) -> str:
        return _local(self.props["inference_address"])

    @property
    def mgmt_url(self) -> str:
        return _local(self.props["management_address"])

    @property
    def metrics_url(self) -> str:
        return _local(self.props["metrics_address"])

    def ssl_context(self) -> ssl.SSLContext | None:
        """Trust the server's own certificate (self-signed in tests) for https listeners."""
        cert = self.props.get("certificate_file")
        if not cert:
            return None
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False  # we dial 127.0.0.1, the certificate names the host
        return context

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.props.get('grpc_inference_port', '7070')}"

    @property
    def grpc_mgmt_target(self) -> str:
        return f"127.0.0.1:{self.props.get('grpc_management_port', '7071')}"

    def env(self) -> dict[str, str]:
        tmp = self.workdir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "TMPDIR": str(tmp), "LOG_LOCATION": str(self.workdir / "logs"),
                "METRICS_LOCATION": str(self.workdir / "logs")}  # fmt: skip

    @property
    def key_file(self) -> Path:
        """Where TorchServe writes its keys: ``key_file.json`` in its working directory."""
        return self.workdir / "key_file.json"

    def token(self, kind: str = "inference") -> str | None:
        """The key TorchServe wrote to key_file.json (token authorisation on), else None."""
        return read_key(self.key_file, kind)


def _local(address: str) -> str:
    """A listener address as a client dials it (0.0.0.0 means every interface, loopback included)."""
    return address.replace("//0.0.0.0:", "//127.0.0.1:")


def _get(url: str, token: str | None = None, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context if url.startswith("https") else None) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:
        return 0, str(err)


def health(url: str, key_file: Path, timeout_s: float = 4.0, drain_file: Path | None = None) -> bool:
    """True if ``url`` answers 200 within ``timeout_s`` seconds (the images' HEALTHCHECK).

    TorchServe refuses even /ping without the inference key when token authorisation is on: the
    key is sent from ``key_file`` when that file holds one (Triton has none and needs none).
    False while ``drain_file`` exists: the TorchServe image's entrypoint creates it on SIGTERM.
    """
    if drain_file is not None and drain_file.exists():
        return False
    key = read_key(key_file)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return answer.status == 200
    except OSError:  # URLError and HTTPError included
        return False


def wait_ready(server: Server, models: list[str], timeout: float) -> None:
    """Block until /ping is healthy and every model has a READY worker.

    Raises:
        TimeoutError: not ready in time (the TorchServe log tail is in the message).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = _get(f"{server.rest_url}/ping", server.token(), server.ssl_context())
        if status == 200 and all(_worker_ready(server, m) for m in models):
            return
        time.sleep(0.5)
    log = server.workdir / "logs" / "model_log.log"
    tail = log.read_text()[-3000:] if log.exists() else "(no model log)"
    raise TimeoutError(f"TorchServe not ready after {timeout:.0f}s; model log tail:\n{tail}")


def _worker_ready(server: Server, model: str) -> bool:
    status, body = _get(f"{server.mgmt_url}/models/{model}", server.token("management"), server.ssl_context())
    if status != 200:
        return False
    return any(w.get("status") == "READY" for m in json.loads(body) for w in m.get("workers", []))


def auto_workers() -> int:
    """Workers per model when neither config.properties nor model-config.yaml names them (logged).

    TorchServe reads workers before any handler runs, so they are decided here, at start-up, and
    passed as ``default_workers_per_model``; a model-config.yaml ``minWorkers``/``maxWorkers`` or the
    management API's scale call still overrides it per model.
    """
    from ja_ner import hardware

    hw = hardware.detect()
    choice = hardware.workers(hw)
    log.info("workers auto -> %s: %s (%s)", choice.value, choice.reason, hw.describe())
    return int(choice.value)


def start(config: Path, model_store: Path, workdir: Path, overrides: dict[str, str] | None = None,
          models: list[str] | None = None, timeout: float = 300, wait: bool = True) -> Server:  # fmt: skip
    """Start TorchServe with ``config`` (plus ``overrides``) from ``workdir``; wait until ready."""
    props = {**read_properties(config), **(overrides or {})}
    props["model_store"] = str(model_store.resolve())
    if "default_workers_per_model" not in props:
        props["default_workers_per_model"] = str(auto_workers())
    workdir.mkdir(parents=True, exist_ok=True)
    server = Server(workdir.resolve(), props)
    cfg = write_properties(props, server.workdir / "config.properties")
    cmd = ["torchserve", "--start", "--ncs", "--ts-config", str(cfg), "--model-store", props["model_store"]]
    bindir = Path(sys.executable).parent
    env = {**server.env(), "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    # Workers inherit the frontend's environment: the handler sizes its threads for this many workers.
    env["TS_DEFAULT_WORKERS_PER_MODEL"] = props["default_workers_per_model"]
    with open(server.workdir / "torchserve.out", "ab") as out:
        subprocess.run(cmd, cwd=server.workdir, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    if wait:
        names = models or [m.split("=")[0] for m in props.get("load_models", "").split(",") if m]
        wait_ready(server, names, timeout)
    return server


def port_overrides() -> dict[str, str]:
    """config.properties entries that move every listener to a free loopback port."""
    rest, mgmt, metrics, grpc_inf, grpc_mgmt, worker = (free_port() for _ in range(6))
    return {
        # The frontend names worker sockets /tmp/.ts.sock.<port> whatever TMPDIR says.
        "initial_worker_port": str(worker),
        "inference_address": f"http://127.0.0.1:{rest}",
        "management_address": f"http://127.0.0.1:{mgmt}",
        "metrics_address": f"http://127.0.0.1:{metrics}",
        "grpc_inference_port": str(grpc_inf),
        "grpc_management_port": str(grpc_mgmt),
    }


def start_on_free_ports(overrides: dict[str, str], model_store: Path, workdir: Path, config: Path | None = None,
                        **kwargs: Any) -> Server:  # fmt: skip
    """``start`` from a fresh ``workdir`` with ``config`` (default config.properties) on free loopback ports.

    ``overrides`` win over both the file and the ports; ``kwargs`` go to ``start`` (models, timeout, wait).
    """
    if workdir.exists():
        shutil.rmtree(workdir)
    return start(config or DEFAULT_CONFIG, model_store, workdir, {**port_overrides(), **overrides}, **kwargs)


def stop(server: Server, timeout: float = 60) -> None:
    """Stop TorchServe and wait for the Java process to exit."""
    bindir = Path(sys.executable).parent
    env = {**server.env(), "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    pid_file = Path(env["TMPDIR"]) / ".model_server.pid"
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    subprocess.run(["torchserve", "--stop"], cwd=server.workdir, env=env, capture_output=True)
    deadline = time.monotonic() + timeout
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="start/stop a TorchServe instance, or check a health URL")
    parser.add_argument("action", choices=["start", "stop", "health"])
    parser.add_argument("url", nargs="?", help="health: the URL that must answer 200")
    parser.add_argument(
        "--key-file", type=Path, default=Path(os.environ.get("TS_KEY_FILE", "key_file.json")),
        help="health: TorchServe's key file (default: $TS_KEY_FILE or ./key_file.json)",
    )  # fmt: skip
    parser.add_argument(
        "--drain-file", type=Path, default=Path(os.environ.get("TS_DRAIN_FILE", "draining")),
        help="health: unhealthy while this file exists (default: $TS_DRAIN_FILE or ./draining)",
    )  # fmt: skip
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--model-store", type=Path, default=REPO / "model_store")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    if args.action == "health":
        if not args.url:
            parser.error("health needs a URL")
        sys.exit(0 if health(args.url, args.key_file, drain_file=args.drain_file) else 1)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if args.action == "stop":
        stop(Server(args.workdir.resolve(), {}))
        return
    server = start(args.config, args.model_store, args.workdir, timeout=args.timeout)
    print(f"TorchServe ready: REST {server.rest_url}  gRPC {server.grpc_target}  logs {server.workdir / 'logs'}")


if __name__ == "__main__":
    main()
