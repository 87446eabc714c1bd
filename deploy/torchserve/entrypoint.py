"""Container entrypoint for TorchServe: run it in the foreground and stop it cleanly on SIGTERM.

``torchserve --foreground`` is a Python launcher around the Java frontend; SIGTERM to the launcher
alone leaves Java running. This wrapper starts the launcher in its own process group, forwards
SIGTERM/SIGINT to the whole group (Java's shutdown hook then drains in-flight requests) and exits
only when the group is gone, so the container is not torn down mid-drain. PID 1 is tini (the
image's ENTRYPOINT): it reaps the JVM once its launcher has exited and passes signals on to here.

    tini -- python entrypoint.py torchserve --start --foreground --ncs --ts-config ... --model-store ...
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


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


def run(command: list[str], grace_s: float = 60.0) -> int:
    """Run ``command`` in a new process group until it and its descendants have exited."""
    process = subprocess.Popen(command, start_new_session=True)
    stopping: list[float] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(time.monotonic())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = process.wait()
    # the launcher is gone; wait for the rest of its group (the JVM; tini, PID 1, reaps it)
    while _group_alive(process.pid):
        if stopping and time.monotonic() - stopping[0] > grace_s:
            os.killpg(process.pid, signal.SIGKILL)
        time.sleep(0.2)
    return code if not stopping else 0


def main() -> int:
    """Entry point: the command to run follows the script name."""
    if len(sys.argv) < 2:
        sys.stderr.write("usage: entrypoint.py COMMAND [ARG...]\n")
        return 2
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
