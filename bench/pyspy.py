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
    ("request parse / JSON render", ("request.py", "dataplane.py", "json/")),
    ("TorchServe metrics", ("ts/metrics", "_metrics")),
    ("TorchServe protocol + socket", ("otf_message_handler", "model_service_worker", "socket", "service.py")),
)


IDLE_FRAMES = ("_retrieve_buffer ", "retrieve_msg ")


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

    A sample is ``frame;frame;...;frame count`` (outermost first). Only the worker's main thread
    counts (helper threads such as tqdm's monitor start in ``Thread._bootstrap`` and only wait). A
    sample whose innermost frame reads TorchServe's socket (``_retrieve_buffer``) is idle: the
    worker was waiting for the frontend to hand it a batch.
    """
    buckets: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[0].startswith("Thread._bootstrap"):
            continue
        total += n
        leaf = frames[-1]
        leaves[leaf] += n
        if leaf.startswith(IDLE_FRAMES):
            buckets["idle (waiting for a batch)"] += n
            continue
        buckets[_bucket(frames)] += n
    share = {k: round(v / total, 3) for k, v in buckets.most_common()} if total else {}
    return {
        "samples": total,
        "buckets": share,
        "top_leaves": [(k, round(v / total, 3)) for k, v in leaves.most_common(top)] if total else [],
    }
