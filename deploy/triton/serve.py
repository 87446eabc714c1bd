"""Start the real ``tritonserver`` shipped in the ``nvidia-pytriton`` wheel, CPU only, on loopback.

The wheel carries the server binary (``pytriton/tritonserver/bin``), its shared libraries
(``nvidia_pytriton.libs``), the Python backend and one backend stub per Python version. The stub
must sit next to ``libtriton_python.so``; rather than writing into site-packages, the backend
directory is copied under ``--workdir`` with the stub of the running Python placed in it.

The backend stub embeds the Python that starts the server (this interpreter's environment must hold
numpy<2, torch, transformers and tokenizers). Usage::

    python deploy/triton/serve.py --model-repository build/triton/model_repository          # foreground
    python deploy/triton/serve.py --model-repository ... --smoke "鈴木は熊本県に住む"        # start, ask, stop

Importable too (tests): ``start_triton(...)`` returns a running :class:`TritonServer`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger("triton.serve")

STUB_NAME = "triton_python_backend_stub"


@dataclass(frozen=True)
class TritonDist:
    """Where the pieces of the server live inside the installed ``nvidia-pytriton`` wheel."""

    binary: Path
    libs: Path
    python_backend: Path
    stub: Path


def locate_dist(python_version: tuple[int, int] | None = None) -> TritonDist:
    """Find the server binary, libraries, Python backend and stub without importing ``pytriton``.

    Args:
        python_version: (major, minor) of the stub to use; the running interpreter's by default.

    Raises:
        FileNotFoundError: the wheel is not installed or lacks a piece (message names it).
    """
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nvidia-pytriton is not installed (pip install nvidia-pytriton==0.7.0)")
    package = Path(next(iter(spec.submodule_search_locations)))
    dist = package / "tritonserver"
    major, minor = python_version or sys.version_info[:2]
    found = TritonDist(
        binary=dist / "bin" / "tritonserver",
        libs=package.parent / "nvidia_pytriton.libs",
        python_backend=dist / "backends" / "python",
        stub=dist / "python_backend_stubs" / f"{major}.{minor}" / STUB_NAME,
    )
    for path in (found.binary, found.libs, found.python_backend / "libtriton_python.so", found.stub):
        if not path.exists():
            raise FileNotFoundError(f"missing from the nvidia-pytriton wheel: {path}")
    return found


def prepare_backends(dist: TritonDist, backends_dir: Path) -> Path:
    """Copy the Python backend into ``backends_dir/python`` with the stub next to its library.

    Returns:
        ``backends_dir``, to pass as ``--backend-directory``.
    """
    target = backends_dir / "python"
    target.mkdir(parents=True, exist_ok=True)
    for item in dist.python_backend.iterdir():
        if item.is_file():
            shutil.copy2(item, target / item.name)
    shutil.copy2(dist.stub, target / STUB_NAME)
    return backends_dir


def python_libdir() -> Path | None:
    """The directory of this interpreter's ``libpython3.X.so.1.0``, or None for a static build.

    The stub links ``libpython3.X.so.1.0`` by name; if the loader finds another 3.X build first (a
    system Python next to a pyenv one), this interpreter's C extensions fail with undefined symbols.
    """
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if libdir and soname and sysconfig.get_config_var("Py_ENABLE_SHARED") and (Path(libdir) / soname).exists():
        return Path(libdir)
    return None


def server_env(dist: TritonDist, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the server and its stub.

    LD_LIBRARY_PATH: this interpreter's libpython directory, then the wheel's libraries. PATH: this
    interpreter's bin first (the stub derives ``sys.prefix``, hence site-packages, from it).
    """
    env = dict(os.environ if base is None else base)
    libpython = python_libdir()
    parts = (str(libpython) if libpython else None, str(dist.libs), env.get("LD_LIBRARY_PATH"))
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in parts if p)
    env["PATH"] = os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH")) if p)
    return env


@dataclass(frozen=True)
class Ports:
    """TCP ports of the three endpoints (KServe v2 HTTP, KServe v2 gRPC, Prometheus metrics)."""

    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002


def server_command(
    dist: TritonDist,
    *,
    model_repository: Path,
    backends_dir: Path,
    host: str,
    ports: Ports,
    log_verbose: int = 0,
    extra_args: tuple[str, ...] = (),
) -> list[str]:
    """The ``tritonserver`` command line (every endpoint bound to ``host``)."""
    return [
        str(dist.binary),
        f"--model-repository={model_repository}",
        f"--backend-directory={backends_dir}",
        f"--http-address={host}",
        f"--http-port={ports.http}",
        f"--grpc-address={host}",
        f"--grpc-port={ports.grpc}",
        f"--metrics-address={host}",
        f"--metrics-port={ports.metrics}",
        "--allow-gpu-metrics=false",
        "--strict-readiness=true",
        "--exit-on-error=true",
        f"--log-verbose={log_verbose}",
        *extra_args,
    ]


class TritonServer:
    """A running ``tritonserver`` child process and where to reach it."""

    def __init__(self, process: subprocess.Popen[bytes], host: str, ports: Ports, log_path: Path | None) -> None:
        self.process = process
        self.host = host
        self.ports = ports
        self.log_path = log_path
        self.http_url = f"http://{host}:{ports.http}"
        self.http_target = f"{host}:{ports.http}"  # tritonclient.http wants host:port
        self.grpc_target = f"{host}:{ports.grpc}"
        self.metrics_url = f"http://{host}:{ports.metrics}/metrics"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log (for error messages)."""
        if self.log_path is None:
            return "(log on the launcher's stdout)"
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def is_ready(self) -> bool:
        """True when ``/v2/health/ready`` answers 200 (server up and every model loaded)."""
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=2) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Block until ready.

        Raises:
            RuntimeError: the server exited or was not ready after ``timeout_s`` seconds (with log tail).
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited with {self.process.returncode}; log tail:\n{self.log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"tritonserver not ready after {timeout_s:.0f} s; log tail:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait up to ``timeout_s`` seconds for in-flight requests, then SIGKILL.

        Returns:
            The exit status.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_triton(
    model_repository: Path,
    *,
    workdir: Path,
    host: str = "127.0.0.1",
    ports: Ports = Ports(),
    log_verbose: int = 0,
    extra_args: tuple[str, ...] = (),
    wait: bool = True,
    timeout_s: float = 180.0,
    log_to_stdout: bool = False,
) -> TritonServer:
    """Start ``tritonserver`` on ``model_repository`` with its backends and log under ``workdir``.

    The server runs with ``workdir`` as its current directory, so the model imports the core from the
    repository's own copy, not from wherever the caller stands. Log: ``workdir/tritonserver.log``,
    or this process's stdout with ``log_to_stdout`` (containers).

    Raises:
        FileNotFoundError: the wheel or the repository is missing.
        RuntimeError: with ``wait``, the server did not become ready (the process is stopped first).
    """
    model_repository = Path(model_repository).resolve()
    if not model_repository.is_dir():
        raise FileNotFoundError(f"model repository not found: {model_repository} (run `make triton-repo`)")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    dist = locate_dist()
    backends = prepare_backends(dist, workdir / "backends")
    command = server_command(
        dist,
        model_repository=model_repository,
        backends_dir=backends,
        host=host,
        ports=ports,
        log_verbose=log_verbose,
        extra_args=extra_args,
    )
    LOG.info("starting %s", " ".join(command))
    log_path = None if log_to_stdout else workdir / "tritonserver.log"
    if log_path is None:
        process = subprocess.Popen(command, cwd=workdir, env=server_env(dist))
    else:
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, cwd=workdir, env=server_env(dist), stdout=log, stderr=subprocess.STDOUT)
    server = TritonServer(process, host, ports, log_path)
    if wait:
        try:
            server.wait_ready(timeout_s)
        except BaseException:
            server.stop(timeout_s=10)
            raise
    return server


def smoke(server: TritonServer, model: str, text: str) -> dict[str, object]:
    """One KServe-v2 JSON inference on ``model`` with a single ``TEXT`` row; returns the row's JSON."""
    body = {"inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [text]}]}
    request = urllib.request.Request(
        f"{server.http_url}/v2/models/{model}/infer",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        outputs = json.loads(answer.read())["outputs"]
    (entities,) = [o for o in outputs if o["name"] == "ENTITIES_JSON"]
    return json.loads(entities["data"][0])


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model-repository", type=Path, default=Path("build/triton/model_repository"))
    parser.add_argument("--workdir", type=Path, default=Path("build/triton"))
    parser.add_argument("--host", default="127.0.0.1", help="address of all three endpoints")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--log-verbose", type=int, default=0)
    parser.add_argument("--log-stdout", action="store_true", help="server log to stdout, not WORKDIR (containers)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for readiness")
    parser.add_argument("--model", default="ja_ner", help="model name for --smoke")
    parser.add_argument("--smoke", metavar="TEXT", help="start, infer TEXT once, print the JSON, stop")
    parser.add_argument("extra", nargs="*", help="extra tritonserver flags (after --)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run in the foreground until SIGINT/SIGTERM, or a one-shot ``--smoke`` check."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _parse_args(argv)
    ports = Ports(http=args.http_port, grpc=args.grpc_port, metrics=args.metrics_port)
    server = start_triton(
        args.model_repository,
        workdir=args.workdir,
        host=args.host,
        ports=ports,
        log_verbose=args.log_verbose,
        extra_args=tuple(args.extra),
        timeout_s=args.timeout,
        log_to_stdout=args.log_stdout,
    )
    LOG.info("ready: http %s grpc %s metrics %s", server.http_url, server.grpc_target, server.metrics_url)
    if args.smoke is not None:
        try:
            answer = smoke(server, args.model, args.smoke)
        finally:
            status = server.stop()
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        LOG.info("tritonserver stopped with status %s", status)
        return 0

    def _forward(signum: int, _frame: object) -> None:
        LOG.info("signal %d: stopping tritonserver", signum)
        server.process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    return server.process.wait()


if __name__ == "__main__":
    sys.exit(main())
