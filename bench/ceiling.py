"""The ceiling: the raw model forward over the benchmark texts, in process, no server.

Texts are tokenised up front (not timed), sorted by length and cut into batches padded to
their longest row, then run under ``torch.inference_mode``: what the hardware does with no
server, no JSON and no aggregation, through the same ``ja_ner.forward`` the server runs (batched,
never row by row: the ceiling is what the hardware can do). ``measure_formats`` does that for every
runtime/format pair the machine runs natively and the model's gates allow (``ja_ner.plan.candidates``);
a pair is named by its format alone for torch (``float32``, ``int8``) and ``runtime/format`` otherwise
(``onnxruntime/float32``). The benchmark's ratios are taken against the served pair's ceiling.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path


def pair_name(runtime: str, dtype: str) -> str:
    """How the bench names a pair: the format alone for torch, else ``runtime/format``."""
    return dtype if runtime == "torch" else f"{runtime}/{dtype}"


def parse_pair(name: str) -> tuple[str, str]:
    """``float32`` -> (torch, float32); ``onnxruntime/float32`` -> (onnxruntime, float32)."""
    runtime, _, dtype = name.rpartition("/")
    return runtime or "torch", dtype


@dataclass(frozen=True)
class CeilingResult:
    """Throughput per batch size and single-request latency of the raw forward."""

    dtype: str
    device: str
    threads: int  # torch threads of the best throughput
    texts: int
    tokens_mean: float
    tokenise_ms_per_text: float  # one batched tokenizer call over all texts, per text
    throughput: dict[str, float]  # "t<threads> B<batch size>" -> sentences/s over one pass of all texts
    best_batch: int
    best_throughput: float  # sentences/s
    single_ms_p50: float  # batch of one, no padding: median over the texts (best thread count)
    single_ms_p90: float
    single_threads: int
    per_core: dict[str, float]  # like throughput, per CPU-second this process used (all its threads)
    best_per_core: float

    def to_json(self) -> dict:
        return asdict(self)


def batches(lengths: list[int], size: int) -> list[list[int]]:
    """Indices sorted by length (stable) and cut into groups of ``size``."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + size] for i in range(0, len(order), size)]


def measure(
    model_dir: Path,
    texts: list[str],
    *,
    batch_sizes: tuple[int, ...] = (1, 8, 32, 64),
    threads: tuple[int, ...] = (0,),
    dtype: str = "float32",
    device: str = "cpu",
    single_texts: int = 64,
    max_length: int = 256,
) -> CeilingResult:
    """Time one pass over ``texts`` per batch size, and ``single_texts`` batch-of-one requests.

    Args:
        batch_sizes: rows per forward (sorted by length, padded to the longest row).
        threads: torch intra-op thread counts to try (0: torch's default); the best counts.
        dtype: the pair (``pair_name``): a torch format, or ``onnxruntime/float32``; run by ``ja_ner.forward``.
        device: "cpu" or "cuda:N" (on CUDA the timings synchronise the device).
        single_texts: how many texts (spread over the set) give the single-request latency.
        max_length: tokens per text at most (special tokens included), as the server's window.
    """
    import torch
    from transformers import AutoTokenizer

    from ja_ner import forward as forwards
    from ja_ner.batch import from_rows
    from ja_ner.plan import FORMATS, RUNTIMES, Plan, pad_multiple_for

    runtime, fmt = parse_pair(dtype)
    if runtime not in RUNTIMES or fmt not in FORMATS:
        raise ValueError(f"pair must be a format of {FORMATS} or runtime/format, got {dtype!r}")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    default_threads = torch.get_num_threads()
    pad_multiple = pad_multiple_for(runtime, fmt, device)

    def plan_for(count: int) -> Plan:
        return Plan(device, runtime, fmt, count or default_threads, pad_multiple, reason="ceiling")

    model = forwards.load(model_dir, plan_for(threads[0]))
    t = time.perf_counter()
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    tokenise_ms = (time.perf_counter() - t) * 1000 / len(texts)
    lengths = [len(x) for x in ids]
    pad = tokenizer.pad_token_id
    cuda = device.startswith("cuda")

    def run(group: list[int]) -> None:
        model(from_rows([ids[i] for i in group], pad, pad_multiple))

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    step = max(1, len(texts) // single_texts)
    throughput: dict[tuple[int, int], float] = {}
    per_core: dict[tuple[int, int], float] = {}  # sentences per CPU-second of this process
    singles: dict[int, list[float]] = {}
    for count in threads:
        if runtime == "torch":
            torch.set_num_threads(count or default_threads)
        else:  # an ONNX Runtime session fixes its threads when it is created
            model = forwards.load(model_dir, plan_for(count))
        run(list(range(min(8, len(texts)))))  # warm-up: first-call allocations and kernels
        for size in batch_sizes:
            groups = batches(lengths, size)
            sync()
            t, cpu = time.perf_counter(), time.process_time()
            for group in groups:
                run(group)
            sync()
            key = (count or default_threads, size)
            throughput[key] = len(texts) / (time.perf_counter() - t)
            per_core[key] = len(texts) / max(time.process_time() - cpu, 1e-9)
        times = singles.setdefault(count or default_threads, [])
        for i in range(0, len(texts), step)[:single_texts]:
            sync()
            t = time.perf_counter()
            run([i])
            sync()
            times.append((time.perf_counter() - t) * 1000)
    torch.set_num_threads(default_threads)
    best = max(throughput, key=throughput.get)
    single_threads = min(singles, key=lambda n: statistics.median(singles[n]))
    single = singles[single_threads]
    deciles = statistics.quantiles(single, n=10) if len(single) > 1 else single * 9
    return CeilingResult(
        dtype=dtype,
        device=device,
        threads=best[0],
        texts=len(texts),
        tokens_mean=round(statistics.mean(lengths), 1),
        tokenise_ms_per_text=round(tokenise_ms, 3),
        throughput={f"t{n} B{b}": round(v, 2) for (n, b), v in throughput.items()},
        best_batch=best[1],
        best_throughput=round(throughput[best], 2),
        single_ms_p50=round(statistics.median(single), 2),
        single_ms_p90=round(deciles[8], 2),
        single_threads=single_threads,
        per_core={f"t{n} B{b}": round(v, 2) for (n, b), v in per_core.items()},
        best_per_core=round(max(per_core.values()), 2),
    )


def formats_for(model_dir: Path, device: str = "cpu") -> tuple[str, ...]:
    """The pairs to try here: native on this machine and allowed by the model's recorded gates."""
    import json

    from ja_ner import hardware
    from ja_ner.plan import candidates, onnx_available

    config = json.loads((Path(model_dir) / "config.json").read_text())
    onnx = device == "cpu" and onnx_available(Path(model_dir))
    pairs = candidates(hardware.detect(), hardware.gates_of(config), device, onnx=onnx)
    return tuple(pair_name(*pair) for pair, _ in pairs)


def measure_formats(model_dir: Path, texts: list[str], formats: tuple[str, ...], **kwargs) -> dict[str, CeilingResult]:
    """``measure`` once per format (same texts, same options); best first (sentences/s at the best batch)."""
    import gc

    results = {}
    for dtype in formats:
        results[dtype] = measure(model_dir, texts, dtype=dtype, **kwargs)
        gc.collect()
    return dict(sorted(results.items(), key=lambda kv: -kv[1].best_throughput))
