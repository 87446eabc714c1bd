"""Settings resolved from the machine at start-up: workers, torch threads per worker, number format.

The decisions are pure functions of a ``Hardware`` description, so tests simulate any CPU or GPU;
``detect()`` describes the machine this process runs on. Rules (docs/performance.md, "auto"):

- **workers**: one per GPU; on CPU one per core this process may use (affinity and cgroup quota),
  at most as many as fit in RAM at ``WORKER_MEMORY_GIB`` each.
  That is also TorchServe's own default (``default_workers_per_model`` unset: GPU count, else the
  JVM's available processors), so a server started without ``handler/server.py`` agrees.
- **threads** per worker: the usable cores divided by the workers (1 with auto workers: more would
  oversubscribe the cores). The TorchServe handler knows the workers from model-config.yaml's
  ``minWorkers`` when an operator sets it, else assumes auto workers; in process it is 1 worker.
- **runtime and number format**: decided by ``ja_ner.plan`` from these facts (``native_bf16``,
  the CUDA capability, ``gates_of``) and a probe measured on this machine; ``python -m
  ja_ner.hardware`` prints what it resolves to here, with the probe's figures.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# RAM one CPU worker may take: the soak measured 0.5-1.4 GB of RSS per worker (model, tokenizer,
# MeCab dictionary, allocator arenas); workers are capped so they fit in RAM with this each.
WORKER_MEMORY_GIB = 2.0
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class Hardware:
    """What the decisions depend on."""

    cores: int  # CPU cores this process may use
    cpu_flags: frozenset[str] = frozenset()  # /proc/cpuinfo flags
    gpus: int = 0
    cuda_capability: tuple[int, int] | None = None  # of GPU 0
    memory_gib: float | None = None  # RAM this process may use (MemTotal, lowered by a cgroup limit); None: unknown

    def describe(self) -> str:
        shown = sorted(f for f in self.cpu_flags if f.startswith(("amx", "avx512_bf16", "avx512_vnni", "avx_vnni")))
        gpu = f", {self.gpus} GPU(s) capability {self.cuda_capability}" if self.gpus else ""
        memory = f", {self.memory_gib:.1f} GiB" if self.memory_gib else ""
        flags = " ".join(shown) or "no bf16/int8 dot-product flags"
        return f"{self.cores} usable core(s){memory}, CPU flags [{flags}]{gpu}"


@dataclass(frozen=True)
class Choice:
    """A resolved value and why it was chosen (logged at worker start)."""

    value: int | str
    reason: str


def usable_cores(affinity: int | None = None, cpu_max: str | None = None) -> int:
    """Cores this process may use: the affinity mask, lowered by a cgroup CPU quota.

    Args:
        affinity: cores in the affinity mask (default: ``os.sched_getaffinity``).
        cpu_max: the quota as cgroup v2's ``cpu.max`` writes it ("max 100000" or "150000 100000");
            default: read it (``cpu_quota``: cgroup v2, else v1's ``cpu.cfs_quota_us``).

    A fractional quota rounds down, never below 1.
    """
    if affinity is None:
        affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cpu_max is None:
        cpu_max = cpu_quota()
    quota, _, period = cpu_max.strip().partition(" ")
    cores = affinity
    if quota != "max" and period:
        cores = min(cores, int(quota) // int(period))
    return max(1, cores)


def cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> str:
    """This process's CPU quota as "QUOTA PERIOD" (or "max ..."): cgroup v2 ``cpu.max``, else v1 CFS.

    cgroup v1 (a container on a host with hybrid cgroups) keeps it in ``cpu.cfs_quota_us`` (-1: none)
    and ``cpu.cfs_period_us`` under the ``cpu`` (or ``cpu,cpuacct``) controller.
    """
    v2 = root / "cpu.max"
    if v2.is_file():
        return v2.read_text()
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        quota, period = root / controller / "cpu.cfs_quota_us", root / controller / "cpu.cfs_period_us"
        if quota.is_file() and period.is_file():
            q = int(quota.read_text().strip() or -1)
            return "max 100000" if q <= 0 else f"{q} {int(period.read_text().strip())}"
    return "max"


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The ``flags`` of the first CPU in ``/proc/cpuinfo`` (empty where there is none)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def usable_memory_gib(meminfo: str | None = None, memory_max: str | None = None) -> float | None:
    """RAM in GiB: ``MemTotal`` of /proc/meminfo, lowered by a cgroup v2 ``memory.max``; None if unknown."""
    if meminfo is None:
        path = Path("/proc/meminfo")
        meminfo = path.read_text() if path.is_file() else ""
    if memory_max is None:
        path = Path("/sys/fs/cgroup/memory.max")
        memory_max = path.read_text() if path.is_file() else "max"
    total = next((int(line.split()[1]) * 1024 for line in meminfo.splitlines() if line.startswith("MemTotal:")), None)
    limit = None if memory_max.strip() in ("max", "") else int(memory_max)
    known = [v for v in (total, limit) if v]
    return round(min(known) / 2**30, 1) if known else None


def detect() -> Hardware:
    """This machine. Counts GPUs with torch only if torch is importable (imported here, lazily)."""
    gpus, capability = 0, None
    try:
        import torch

        if torch.cuda.is_available():
            gpus = torch.cuda.device_count()
            capability = tuple(torch.cuda.get_device_capability(0))
    except ImportError:
        pass
    return Hardware(usable_cores(), cpu_flags(), gpus, capability, usable_memory_gib())  # type: ignore[arg-type]


def workers(hw: Hardware) -> Choice:
    """TorchServe workers for one model."""
    if hw.gpus:
        return Choice(hw.gpus, f"one worker per GPU ({hw.gpus})")
    fit = int(hw.memory_gib // WORKER_MEMORY_GIB) if hw.memory_gib else hw.cores
    if fit < hw.cores:
        n = max(1, fit)
        return Choice(
            n, f"{hw.cores} usable cores, but {hw.memory_gib} GiB RAM holds {n} worker(s) of {WORKER_MEMORY_GIB} GiB"
        )
    return Choice(hw.cores, f"one single-thread worker per usable core ({hw.cores})")


def threads(hw: Hardware, workers: int, device: str = "cpu") -> Choice:
    """Torch intra-op threads of one of ``workers`` processes sharing the machine.

    In process (bench, evaluation, the CLI) ``workers`` is 1: every usable core.
    """
    if device.startswith("cuda"):
        return Choice(1, "the GPU does the work; one CPU thread feeds it")
    n = max(1, hw.cores // max(1, workers))
    return Choice(n, f"{hw.cores} usable core(s) shared by {workers} worker(s)")


def native_bf16(hw: Hardware) -> list[str]:
    """The CPU flags of ``hw`` that mean bfloat16 runs natively (none: emulated, slower than float32)."""
    return sorted(f for f in NATIVE_BF16_FLAGS if f in hw.cpu_flags)


def gates_of(model_config: Mapping[str, object]) -> dict[str, bool]:
    """Format -> passed, from a model's config.json ``ner_format_gates`` (written by ``bench.parity --record``)."""
    raw = model_config.get("ner_format_gates") or {}
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): bool(v.get("passed")) for k, v in raw.items() if isinstance(v, Mapping)}


def main(argv: list[str] | None = None) -> dict[str, str]:
    """What ``auto`` resolves to for a model on this machine, or on a simulated one (printed and returned).

    python -m ja_ner.hardware [--model DIR] [--cores N] [--flags "avx2 ..."] [--gpus N --capability 8.0]
                              [--workers N] [--probe]

    ``--probe`` measures every allowed runtime/format pair here (speed alone and in a batch, and
    whether the batch moves a text's answer) and prints the table the plan chooses from.
    """
    import argparse
    import json
    import logging
    from dataclasses import replace

    from ja_ner import plan as planning
    from ja_ner.settings import Settings

    parser = argparse.ArgumentParser(description="what auto resolves to (workers, threads, runtime, dtype) and why")
    parser.add_argument("--model", type=Path, default=Path("models/ja-ner-small"), help="its config.json gates")
    parser.add_argument("--cores", type=int, help="simulate this many usable cores")
    parser.add_argument("--flags", help="simulate these /proc/cpuinfo flags (space-separated)")
    parser.add_argument("--gpus", type=int, help="simulate this many GPUs")
    parser.add_argument("--capability", help="simulated CUDA capability, e.g. 8.0")
    parser.add_argument("--memory", type=float, help="simulate this much RAM (GiB)")
    parser.add_argument("--workers", type=int, help="workers sharing the cores (default: the auto rule)")
    parser.add_argument("--probe", action="store_true", help="measure each allowed pair here and resolve the plan")
    parser.add_argument("--onnx", action="store_true", help="count ONNX Runtime as available (a graph is exported)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    hw = detect()
    major, _, minor = (args.capability or "").partition(".")
    hw = Hardware(
        cores=args.cores or hw.cores,
        cpu_flags=frozenset(args.flags.split()) if args.flags is not None else hw.cpu_flags,
        gpus=hw.gpus if args.gpus is None else args.gpus,
        cuda_capability=(int(major), int(minor or 0)) if args.capability else hw.cuda_capability,
        memory_gib=args.memory if args.memory is not None else hw.memory_gib,
    )
    config_path = args.model / "config.json"
    gates = gates_of(json.loads(config_path.read_text())) if config_path.is_file() else {}
    device = "cuda:0" if hw.gpus else "cpu"
    w = workers(hw)
    n_workers = args.workers or int(w.value)
    t = threads(hw, n_workers, device)
    onnx = args.onnx or (device == "cpu" and planning.onnx_available(args.model))
    pairs = planning.candidates(hw, gates, device, onnx=onnx)
    chosen = {
        "machine": hw.describe(),
        "gates": str(gates),
        "workers": f"{w.value}: {w.reason}",
        "threads": f"{t.value}: {t.reason}",
        "candidates": ", ".join(f"{r}/{d} ({why})" for (r, d), why in pairs),
    }
    if args.probe:
        measured = planning.cached_probe(args.model, [p for p, _ in pairs], 1, device, hw)
        for (r, d), m in measured.items():
            chosen[f"probe {r}/{d}"] = (
                f"{m.describe(len(planning.PROBE_TEXTS), rowwise=False)}; "
                f"pass {m.seconds(False):.2f} s batched, {m.seconds(True):.2f} s row by row"
            )
        settings = replace(Settings(), device=device)
        plan = planning.resolve(
            settings, args.model, workers=n_workers, workers_why="workers", hw=hw, measure=lambda *a: measured
        )
        chosen["plan"] = plan.describe()
    for key, value in chosen.items():
        print(f"{key:10} {value}")
    return chosen


if __name__ == "__main__":
    main()
