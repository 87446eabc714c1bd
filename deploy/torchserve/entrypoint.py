"""Container entrypoint for TorchServe: run it in the foreground, drain it on SIGTERM, then stop it.

TorchServe has no graceful shutdown of its own: SIGTERM stops the frontend at once and every
request in flight is reset (pytorch/serve issue 2008). So the drain is done here, where we own the
process, in three steps on SIGTERM/SIGINT:

1. **Unready**: the drain marker (``$TS_DRAIN_FILE``, default ``./draining`` in the working
   directory) is created; the image's HEALTHCHECK (``server.py health``) fails from then on.
2. **Drain**: TorchServe keeps running and answering while any client connection to the inference
   listeners (REST and gRPC, read from the config and its ``TS_*`` overrides) is open, for at most
   ``$TS_DRAIN_TIMEOUT_S`` seconds (default 45: under the manifests' 60 s grace period after their 5 s
   preStop). An idle keep-alive connection or gRPC channel also holds the drain until it closes or
   the timeout passes; clients that pool connections should close them when the endpoint goes.
3. **Stop**: SIGTERM to TorchServe's process group (launcher, JVM, workers); SIGKILL after
   ``$TS_STOP_TIMEOUT_S`` (default 10). The exit status is 0 after a requested stop.

``torchserve --foreground`` is a Python launcher around the Java frontend; SIGTERM to the launcher
alone leaves Java running, hence the process group. PID 1 is tini (the image's ENTRYPOINT): it
reaps the JVM once its launcher has exited and passes signals on to here.

    tini -- python entrypoint.py torchserve --start --foreground --ncs --ts-config ... --model-store ...
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DRAIN_TIMEOUT_S = 45.0
DEFAULT_STOP_TIMEOUT_S = 10.0


def log(message: str) -> None:
    sys.stderr.write(f"entrypoint: {message}\n")
    sys.stderr.flush()


def _group_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` runs (zombies awaiting a reaper do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # fields after the parenthesised command: state, ppid, pgrp, ...
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            return True
    return False


def _properties(path: Path) -> dict[str, str]:
    props = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                props[key.strip()] = value.strip()
    return props


def inference_ports(command: list[str], env: dict[str, str]) -> set[int]:
    """The ports of TorchServe's REST and gRPC inference listeners for ``command`` and ``env``.

    ``--ts-config FILE`` of the command, then the ``TS_*`` overrides (enable_envvars_config), then
    TorchServe's defaults (8080, 7070).
    """
    props: dict[str, str] = {}
    if "--ts-config" in command and command.index("--ts-config") + 1 < len(command):
        props = _properties(Path(command[command.index("--ts-config") + 1]))
    address = env.get("TS_INFERENCE_ADDRESS") or props.get("inference_address") or "http://127.0.0.1:8080"
    parts = urlsplit(address)
    rest = parts.port or (443 if parts.scheme == "https" else 80)
    grpc = int(env.get("TS_GRPC_INFERENCE_PORT") or props.get("grpc_inference_port") or 7070)
    return {rest, grpc}


def open_connections(ports: set[int], tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")) -> int:
    """Established TCP connections whose local port is one of ``ports`` (clients being served)."""
    count = 0
    for table in tables:
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state = fields[1], fields[3]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) in ports:  # 01: ESTABLISHED
                    count += 1
    return count


def drain(ports: set[int], marker: Path, timeout_s: float, stopped: threading.Event) -> None:
    """Turn the health check unready, then wait until no client connection is open (or ``timeout_s``)."""
    started = time.monotonic()
    with contextlib.suppress(OSError):
        marker.touch()
    first = open_connections(ports)
    log(f"SIGTERM: draining, health unready, {first} client connection(s) open on port(s) {sorted(ports)}")
    while not stopped.is_set():
        remaining = open_connections(ports)
        waited = time.monotonic() - started
        if remaining == 0:
            log(f"drained in {waited:.1f} s")
            return
        if waited >= timeout_s:
            log(f"drain timeout ({timeout_s:.0f} s): stopping with {remaining} connection(s) open")
            return
        time.sleep(0.1)


def run(command: list[str], env: dict[str, str] | None = None) -> int:
    """Run ``command`` in a new process group; on SIGTERM/SIGINT drain it, stop it, and return 0."""
    env = dict(os.environ if env is None else env)
    ports = inference_ports(command, env)
    marker = Path(env.get("TS_DRAIN_FILE", "draining"))
    drain_timeout = float(env.get("TS_DRAIN_TIMEOUT_S", DEFAULT_DRAIN_TIMEOUT_S))
    stop_timeout = float(env.get("TS_STOP_TIMEOUT_S", DEFAULT_STOP_TIMEOUT_S))
    with contextlib.suppress(OSError):
        marker.unlink()  # a marker left by an earlier run of this container
    process = subprocess.Popen(command, start_new_session=True)
    requested = threading.Event()
    exited = threading.Event()

    def stop_group() -> None:
        drain(ports, marker, drain_timeout, exited)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + stop_timeout
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def on_signal(signum: int, _frame: object) -> None:
        if not requested.is_set():
            requested.set()
            threading.Thread(target=stop_group, name="drain", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = process.wait()
    exited.set()
    # the launcher is gone; wait for the rest of its group (the JVM; tini, PID 1, reaps it)
    deadline = None
    while _group_alive(process.pid):
        if requested.is_set():
            deadline = deadline or time.monotonic() + stop_timeout
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        time.sleep(0.2)
    if requested.is_set():
        log(f"stopped (TorchServe exit status {code})")
        return 0
    return code


def main() -> int:
    """Entry point: the command to run follows the script name."""
    if len(sys.argv) < 2:
        sys.stderr.write("usage: entrypoint.py COMMAND [ARG...]\n")
        return 2
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
