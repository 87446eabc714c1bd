"""Sample a TorchServe worker with py-spy under load and summarise where its time goes."""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path

# Buckets for the summary: the innermost frame of a sample that matches a pattern names its bucket.
BUCKETS = (
    ("model forward (torch)", ("forward.py", "modeling_", "torch/nn/")),
    ("tokenizer", ("tokenization_", "encode.py", "tokenizers")),
    ("aggregate + entities", ("aggregate.py", "words.py", "_entities", "_finish")),
    ("normalise / segment / batch", ("normalise.py", "segment.py", "batch.py")),
    ("request parse / JSON render", ("request.py", "json/", "_dumps")),
    ("TorchServe protocol + socket", ("otf_message_handler", "model_service_worker", "socket", "service.py")),
)


def find_py_spy() -> str | None:
    """The py-spy next to this interpreter, else on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.is_file() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, rate: int = 200) -> Path:
    """Collapsed stacks (py-spy ``raw`` format, idle frames included) of ``pid`` for ``seconds``."""
    exe = find_py_spy()
    if exe is None:
        raise FileNotFoundError("py-spy is not installed (pip install py-spy==0.4.3)")
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate),
           "--format", "raw", "--idle", "--nonblocking", "--output", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def _bucket(frames: list[str]) -> str:
    """The bucket of the innermost frame that matches one."""
    for frame in reversed(frames):
        for name, patterns in BUCKETS:
            if any(p in frame for p in patterns):
                return name
    return "other"


def summarise(collapsed: str, top: int = 12) -> dict:
    """Shares of samples per bucket, per innermost frame, and the idle share.

    A sample is ``frame;frame;...;frame count`` (outermost first). A sample whose innermost frame
    waits on the socket (``recv``/``select``/``accept``) is counted as idle: the worker had no work.
    """
    buckets: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf = frames[-1]
        leaves[leaf] += n
        if any(word in leaf for word in ("recv", "select", "accept", "poll")) and "model_service_worker" in stack:
            buckets["idle (waiting for a batch)"] += n
            continue
        buckets[_bucket(frames)] += n
    share = {k: round(v / total, 3) for k, v in buckets.most_common()} if total else {}
    return {
        "samples": total,
        "buckets": share,
        "top_leaves": [(k, round(v / total, 3)) for k, v in leaves.most_common(top)] if total else [],
    }
