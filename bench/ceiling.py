"""The ceiling: the raw model forward over the benchmark texts, in process, no server.

Texts are tokenised up front (not timed), sorted by length and cut into batches padded to
their longest row, then run under ``torch.inference_mode``: what the hardware does with no
server, no JSON and no aggregation. ``measure_formats`` does that in every number format the
machine runs natively and the model's accuracy gates allow (``ja_ner.hardware.candidate_formats``):
the best of them is the ceiling the benchmark's ratios are taken against.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

_DTYPES = ("float32", "bfloat16", "float16", "int8")


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
        dtype: number format (int8: ``ja_ner.forward.quantise_int8``); the forward returns logits only.
        device: "cpu" or "cuda:N" (on CUDA the timings synchronise the device).
        single_texts: how many texts (spread over the set) give the single-request latency.
        max_length: tokens per text at most (special tokens included), as the server's window.
    """
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from ja_ner.forward import quantise_int8

    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    weights = torch.float32 if dtype == "int8" else getattr(torch, dtype)
    model = AutoModelForTokenClassification.from_pretrained(model_dir, dtype=weights)
    model.to(device).eval()
    if dtype == "int8":
        model = quantise_int8(model)  # exactly what the served int8 forward runs
    t = time.perf_counter()
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    tokenise_ms = (time.perf_counter() - t) * 1000 / len(texts)
    lengths = [len(x) for x in ids]
    pad = tokenizer.pad_token_id
    cuda = device.startswith("cuda")

    def run(group: list[int]) -> None:
        longest = max(lengths[i] for i in group)
        rows = [ids[i] + [pad] * (longest - lengths[i]) for i in group]
        masks = [[1] * lengths[i] + [0] * (longest - lengths[i]) for i in group]
        input_ids = torch.tensor(rows)
        mask = torch.tensor(masks)
        if cuda:
            input_ids = input_ids.pin_memory().to(device, non_blocking=True)
            mask = mask.pin_memory().to(device, non_blocking=True)
        with torch.inference_mode():
            model(input_ids=input_ids, attention_mask=mask).logits.float().cpu()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    default_threads = torch.get_num_threads()
    step = max(1, len(texts) // single_texts)
    throughput: dict[tuple[int, int], float] = {}
    per_core: dict[tuple[int, int], float] = {}  # sentences per CPU-second of this process
    singles: dict[int, list[float]] = {}
    for count in threads:
        torch.set_num_threads(count or default_threads)
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
    """The formats to try here: native on this machine and allowed by the model's recorded gates."""
    import json

    from ja_ner import hardware

    config = json.loads((Path(model_dir) / "config.json").read_text())
    return hardware.candidate_formats(hardware.detect(), hardware.gates_of(config), device)


def measure_formats(model_dir: Path, texts: list[str], formats: tuple[str, ...], **kwargs) -> dict[str, CeilingResult]:
    """``measure`` once per format (same texts, same options); best first (sentences/s at the best batch)."""
    import gc

    results = {}
    for dtype in formats:
        results[dtype] = measure(model_dir, texts, dtype=dtype, **kwargs)
        gc.collect()
    return dict(sorted(results.items(), key=lambda kv: -kv[1].best_throughput))
