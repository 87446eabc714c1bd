"""Run what the Dockerfiles run, without Docker: same files, same layout, same commands, on loopback.

There is no container engine on the development machines, so this stages each image's filesystem
layout under a build directory and runs its CMD and HEALTHCHECK there (ports moved to free loopback
ports through the same TS_* environment overrides Kubernetes would use):

    python -m deploy.image_check torchserve --mar model_store/ja_ner.mar
    python -m deploy.image_check triton --model models/ja-ner-small

The final stage's ENV of each Dockerfile applies (bar PATH and JAVA_HOME, which name image paths).

torchserve: token authorisation ON as in the image: /ping without the key must be refused, the
healthcheck (which reads key_file.json) must pass, and one prediction with the key must succeed.
triton: build_repo.py --copy-model as in the image, serve.py, healthcheck, one inference.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from deploy import dockerfile
from handler.server import free_port, read_key

REPO = Path(__file__).resolve().parent.parent
HEALTHCHECK = REPO / "handler" / "server.py"  # its ``health`` action is both images' HEALTHCHECK
SMOKE_TEXT = "鈴木は熊本県の阿蘇山に登った"
LOG = logging.getLogger("deploy.image_check")


def image_env(name: str) -> dict[str, str]:
    """The ENV of ``deploy/Dockerfile.<name>``'s final stage, without PATH and JAVA_HOME."""
    instructions = dockerfile.final_stage(dockerfile.parse(REPO / "deploy" / f"Dockerfile.{name}"))
    return {k: v for k, v in dockerfile.env(instructions).items() if k not in ("PATH", "JAVA_HOME")}


def _healthcheck(script: Path, url: str, cwd: Path) -> bool:
    """The image's HEALTHCHECK: its staged copy of handler/server.py, run alone (``health``)."""
    return subprocess.run([sys.executable, str(script), "health", url], cwd=cwd, check=False).returncode == 0


def _wait(script: Path, url: str, cwd: Path, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was healthy")
        if _healthcheck(script, url, cwd):
            return
        time.sleep(1.0)
    raise RuntimeError(f"not healthy after {timeout_s:.0f} s: {url}")


def _status(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _java_left(home: Path) -> bool:
    """True if a java process still runs with its working directory under ``home``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            exe = (proc / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if exe.endswith(b"java") and cwd.startswith(str(home)):
            return True
    return False


def check_torchserve(mar: Path, stage: Path, timeout_s: float) -> None:
    """Stage /home/model-server as the image does and run its CMD and HEALTHCHECK."""
    home = stage / "home" / "model-server"
    shutil.rmtree(stage, ignore_errors=True)
    for sub in ("config", "model-store", "run", "bin", "tmp"):
        (home / sub).mkdir(parents=True)
    # the COPY lines of deploy/Dockerfile.torchserve
    shutil.copy2(REPO / "deploy" / "torchserve" / "config.properties", home / "config" / "config.properties")
    shutil.copy2(HEALTHCHECK, home / "bin" / "server.py")
    shutil.copy2(REPO / "deploy" / "torchserve" / "entrypoint.py", home / "bin" / "entrypoint.py")
    shutil.copy2(mar, home / "model-store" / "ja_ner.mar")
    rest, metrics, mgmt, grpc, grpc_mgmt = (free_port() for _ in range(5))
    env = {
        **os.environ,
        **image_env("torchserve"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TMPDIR": str(home / "tmp"),  # TorchServe's pid file: one instance per TMPDIR
        "LOG_LOCATION": str(home / "run" / "logs"),
        "METRICS_LOCATION": str(home / "run" / "logs"),
        # what a Kubernetes manifest may set; here only to move the ports to loopback
        "TS_INFERENCE_ADDRESS": f"http://127.0.0.1:{rest}",
        "TS_MANAGEMENT_ADDRESS": f"http://127.0.0.1:{mgmt}",
        "TS_METRICS_ADDRESS": f"http://127.0.0.1:{metrics}",
        "TS_GRPC_INFERENCE_ADDRESS": "127.0.0.1",
        "TS_GRPC_INFERENCE_PORT": str(grpc),
        "TS_GRPC_MANAGEMENT_PORT": str(grpc_mgmt),
        "TS_MODEL_STORE": str(home / "model-store"),
    }
    config = home / "config" / "config.properties"
    # ENTRYPOINT (tini when this machine has it: `apt-get install tini`), then CMD
    init = ["tini", "--"] if shutil.which("tini") else []
    if not init:
        LOG.warning("tini not installed here: the entrypoint runs without the image's PID 1")
    command = [*init, sys.executable, str(home / "bin" / "entrypoint.py")]
    command += ["torchserve", "--start", "--foreground", "--ncs", "--ts-config", str(config)]
    command += ["--model-store", str(home / "model-store")]
    LOG.info("torchserve image: %s (cwd %s)", " ".join(command), home / "run")
    with (stage / "torchserve.out").open("wb") as out:
        process = subprocess.Popen(command, cwd=home / "run", env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        ping = f"http://127.0.0.1:{rest}/ping"
        _wait(home / "bin" / "server.py", ping, home / "run", process, timeout_s)
        status, _ = _status(ping)
        if status not in (400, 401, 403):  # TorchServe 0.12 answers 400 "Token Authorization failed"
            raise RuntimeError(f"/ping without the key answered {status}: token authorisation is not on")
        key = read_key(home / "run" / "key_file.json")
        status, body = _status(
            f"http://127.0.0.1:{rest}/predictions/ja_ner",
            SMOKE_TEXT.encode(),
            {"Authorization": f"Bearer {key}", "Content-Type": "text/plain; charset=utf-8"},
        )
        if status != 200:
            raise RuntimeError(f"prediction answered {status}: {body[:300]!r}")
        sys.stdout.write(body.decode() + "\n")
        status, _ = _status(f"http://127.0.0.1:{metrics}/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
    finally:
        _stop(process)
    if _java_left(home):
        raise RuntimeError("a TorchServe JVM survived SIGTERM to the entrypoint")
    LOG.info("torchserve image: OK (auth on, healthcheck, prediction, metrics, clean stop)")


def check_triton(model: Path, stage: Path, timeout_s: float) -> None:
    """Stage /opt/ja-ner as the image does and run its build step, CMD and HEALTHCHECK."""
    opt = stage / "opt" / "ja-ner"
    shutil.rmtree(stage, ignore_errors=True)
    (opt / "deploy").mkdir(parents=True)
    # the COPY lines of deploy/Dockerfile.triton
    shutil.copytree(REPO / "ja_ner", opt / "ja_ner", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "deploy" / "triton", opt / "deploy" / "triton", ignore=shutil.ignore_patterns("__pycache__"))
    (opt / "handler").mkdir()
    shutil.copy2(HEALTHCHECK, opt / "handler" / "server.py")
    shutil.copytree(model, opt / "models" / "ja-ner-small")
    env = {**os.environ, "PYTHONPATH": str(opt)}
    build = [sys.executable, "deploy/triton/build_repo.py", "--model", "models/ja-ner-small"]
    build += ["--out", str(opt / "model_repository"), "--copy-model"]
    subprocess.run(build, cwd=opt, env=env, check=True)
    http, grpc, metrics = (free_port() for _ in range(3))
    command = [sys.executable, "deploy/triton/serve.py", "--model-repository", str(opt / "model_repository")]
    command += ["--workdir", str(stage / "tmp" / "triton"), "--host", "127.0.0.1", "--log-stdout"]
    command += ["--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)]
    LOG.info("triton image: %s", " ".join(command))
    # the image sets no PYTHONPATH at run time: the repository's own copy of the core must do
    clean_env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **image_env("triton")}
    with (stage / "triton.out").open("wb") as out:
        process = subprocess.Popen(command, cwd=opt, env=clean_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(opt / "handler" / "server.py", f"http://127.0.0.1:{http}/v2/health/ready", opt, process, timeout_s)
        body = {"inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [SMOKE_TEXT]}]}
        status, answer = _status(
            f"http://127.0.0.1:{http}/v2/models/ja_ner/infer",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        if status != 200:
            raise RuntimeError(f"inference answered {status}: {answer[:300]!r}")
        sys.stdout.write(json.loads(answer)["outputs"][0]["data"][0] + "\n")
    finally:
        _stop(process)
    LOG.info("triton image: OK (self-contained repository, healthcheck, inference)")


def main(argv: list[str] | None = None) -> int:
    """Entry point: see the module docstring."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("image", choices=("torchserve", "triton"))
    parser.add_argument("--mar", type=Path, default=REPO / "model_store" / "ja_ner.mar")
    parser.add_argument("--model", type=Path, default=REPO / "models" / "ja-ner-small")
    parser.add_argument("--stage", type=Path, default=None, help="default: build/image-check/IMAGE")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    stage = (args.stage or REPO / "build" / "image-check" / args.image).resolve()
    try:
        if args.image == "torchserve":
            check_torchserve(args.mar.resolve(), stage, args.timeout)
        else:
            check_triton(args.model.resolve(), stage, args.timeout)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        LOG.error("%s image check failed: %s (logs under %s)", args.image, exc, stage)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
