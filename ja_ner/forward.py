"""Stage 5: the model forward pass. The only module that imports torch or ONNX Runtime.

A ``Forward`` turns one padded ``Batch`` into float32 probabilities ``[rows, length, labels]`` on
CPU, so no later stage knows about tensors, devices, half precision, int8 or runtimes. It runs
exactly the ``Plan`` it is given (``ja_ner.plan.resolve`` decides runtime, number format, threads
and padding once per entry point); ``load`` builds the one the plan names, ``probe`` measures
candidate pairs for the plan, ``export_onnx`` writes the graph ONNX Runtime serves.

Batch invariance: in float32 a row's result depends on its neighbours only through summation
order (differences of about 1e-6). A quantised format amplifies that noise: int8 takes one
activation scale per input tensor, and even with a scale per row a 1e-6 change can flip one
rounding of the grid (1e-3 to 1e-1 in a probability, measured). So a plan with ``rowwise`` runs
each row alone, unpadded: exactly the computation of that text sent alone, whatever its batch.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForTokenClassification

from ja_ner.batch import Batch, from_rows
from ja_ner.errors import ConfigError
from ja_ner.plan import (
    ONNX_FILE,
    PROBE_BATCH,
    PROBE_TEXTS,
    Plan,
    ProbeResult,
    cache_dir,
    model_key,
    pad_multiple_for,
)

log = logging.getLogger(__name__)

_TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "int8": torch.float32}
# int8 never touches the classification head (see quantise_int8).
HEAD_MODULES = ("classifier",)
# oneDNN keeps a primitive per input shape it has seen (1024 by default): with texts of every length
# a bf16 pipeline's RSS grew ~50 % in its first minute; 16 cut that growth by about 40 % at the same
# throughput (docs/operations.md, "Soak"). An operator's own value in the environment wins.
ONEDNN_CACHE_CAPACITY = "16"
ONNX_OPSET = 17


class Forward(Protocol):
    """What the pipeline calls: one padded batch in, float32 probabilities out (CPU numpy)."""

    plan: Plan

    def __call__(self, batch: Batch) -> np.ndarray: ...


def load(model_dir: str | Path, plan: Plan) -> Forward:
    """The forward ``plan`` names, loaded from a local model folder (never the network)."""
    apply_threads(plan)
    if plan.runtime == "onnxruntime":
        return OnnxForward(model_dir, plan)
    return TorchForward(model_dir, plan)


def apply_threads(plan: Plan) -> None:
    """Process-wide settings of the plan: torch intra-op threads and the oneDNN cache cap."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_CAPACITY)
    if plan.device == "cpu":
        torch.set_num_threads(plan.threads)


class TorchForward:
    """A token-classification model run by torch eager on one device in one number format."""

    def __init__(self, model_dir: str | Path, plan: Plan) -> None:
        self.plan = plan
        self.device = torch.device(plan.device)
        self.model = AutoModelForTokenClassification.from_pretrained(
            model_dir, dtype=_TORCH_DTYPES[plan.dtype], local_files_only=True
        )
        self.model.to(self.device).eval()
        if plan.dtype == "int8":
            self.model = quantise_int8(self.model)
        log.info("model loaded from %s: %s", model_dir, plan.describe())

    def __call__(self, batch: Batch) -> np.ndarray:
        if not self.plan.rowwise or len(batch.input_ids) == 1:
            return self._run(batch.input_ids, batch.attention_mask)
        out = None
        for row, n in enumerate(batch.attention_mask.sum(axis=1).tolist()):
            probs = self._run(batch.input_ids[row : row + 1, :n], batch.attention_mask[row : row + 1, :n])
            if out is None:
                out = np.zeros((*batch.input_ids.shape, probs.shape[-1]), dtype=np.float32)
            out[row, :n] = probs[0]
        assert out is not None
        return out

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        ids = torch.from_numpy(np.ascontiguousarray(input_ids))
        mask = torch.from_numpy(np.ascontiguousarray(attention_mask))
        if self.device.type == "cuda":
            ids = ids.pin_memory().to(self.device, non_blocking=True)
            mask = mask.pin_memory().to(self.device, non_blocking=True)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask).logits
            # softmax in float32: half-precision logits lose the small probabilities
            probs = torch.softmax(logits.float(), dim=-1)
        return probs.cpu().numpy()


class OnnxForward:
    """The same model as an exported ONNX graph, run by ONNX Runtime (float32)."""

    def __init__(self, model_dir: str | Path, plan: Plan) -> None:
        import onnxruntime as ort

        self.plan = plan
        path = Path(model_dir) / ONNX_FILE
        if not path.is_file():
            raise ConfigError(f"{path} is missing: make archive (handler.archive) exports it beside the weights")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = plan.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle intra-op threads must not spin: the other workers of the server share these cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers: list = ["CPUExecutionProvider"]
        if plan.device.startswith("cuda"):  # written for, not run here (no GPU on these machines)
            device_id = int(plan.device.partition(":")[2] or 0)
            providers = [("CUDAExecutionProvider", {"device_id": device_id}), "CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        log.info("ONNX graph loaded from %s: %s", path, plan.describe())

    def __call__(self, batch: Batch) -> np.ndarray:
        (logits,) = self.session.run(["logits"], {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask})
        logits = logits.astype(np.float32, copy=False)
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)


def device_for(gpu_id: int | None) -> str:
    """The torch device for a runtime's GPU assignment (None or no CUDA means CPU)."""
    if gpu_id is not None and torch.cuda.is_available():
        return f"cuda:{gpu_id}"
    return "cpu"


def model_config(model_dir: str | Path) -> AutoConfig:
    """The model's config.json (labels, positions, calibrated threshold), read locally."""
    return AutoConfig.from_pretrained(model_dir, local_files_only=True)


def quantise_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Per-channel dynamic int8 weights for the attention projections (query, key, value, output).

    Everything else stays float: embeddings, the classification head (quantising every Linear
    layer cost 9.4 dev F1 points, issue 13) and the feed-forward layers (quantising them too cost
    0.5-2.9 points on the default model, docs/performance.md). Activations are quantised per
    input tensor at run time (x86: fbgemm kernels): a row's grid depends on its neighbours unless
    the plan runs rows one by one (``Plan.rowwise``).
    """
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    spec = {
        name: qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and ".attention." in f".{name}."
        and name.split(".")[0] not in HEAD_MODULES
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice in favour of torchao
        return torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)


def export_onnx(model_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the model as an ONNX graph (float32, dynamic batch and sequence axes) for ONNX Runtime.

    Run at archive time (``handler.archive``, ``deploy/triton/build_repo.py``), never on the
    request path. Returns the path written (default: ``ONNX_FILE`` inside ``model_dir``).
    """
    model_dir = Path(model_dir)
    out = Path(out) if out is not None else model_dir / ONNX_FILE
    model = AutoModelForTokenClassification.from_pretrained(model_dir, dtype=torch.float32, local_files_only=True)
    model.eval()
    ids = torch.full((2, 12), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
        torch.onnx.export(
            model,
            (ids, mask),
            str(out),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": axes},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    log.info("exported %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out


def cached_onnx(model_dir: str | Path) -> Path:
    """The model's ONNX graph, exported once per model content into the cache folder (file-locked)."""
    import fcntl

    folder = cache_dir()
    if folder is None:
        raise ConfigError("no writable folder to export the ONNX graph into; set JA_NER_CACHE")
    path = folder / f"onnx-{model_key(Path(model_dir))}.onnx"
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():
            tmp = path.with_suffix(".tmp")
            export_onnx(model_dir, tmp)
            tmp.replace(path)
    return path


def linked_with_onnx(model_dir: str | Path, target: str | Path) -> Path:
    """``target``: a new folder of links to ``model_dir``'s files, plus its ONNX graph (``cached_onnx``).

    For serving a model folder through ONNX Runtime without writing into it (Triton's repository,
    ``bench.parity``); returns ``target``.
    """
    model_dir, target = Path(model_dir).resolve(), Path(target)
    target.mkdir(parents=True)
    for item in model_dir.iterdir():
        if not item.name.startswith("."):
            (target / item.name).symlink_to(item, target_is_directory=item.is_dir())
    if not (target / ONNX_FILE).exists():
        (target / ONNX_FILE).symlink_to(cached_onnx(model_dir))
    return target


def probe(
    model_dir: str | Path, pairs: Sequence[tuple[str, str]], threads: int, device: str = "cpu"
) -> dict[tuple[str, str], ProbeResult]:
    """Measure each (runtime, format) on ``PROBE_TEXTS``: alone, in batches, and how far they differ.

    Every text is run once alone and once inside padded batches of ``PROBE_BATCH`` neighbours;
    ``max_diff`` is the largest probability difference between the two (0 up to float32 noise
    for a batch-invariant pair). The pairs take turns text by text (after one warm-up each), so
    a load from other processes falls on all of them alike and their ratio stays fair.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    rows = tokenizer(list(PROBE_TEXTS))["input_ids"]
    pad = tokenizer.pad_token_id
    plans = {(r, d): Plan(device, r, d, threads, pad_multiple_for(r, d, device), reason="probe") for r, d in pairs}
    forwards = {pair: load(model_dir, plan) for pair, plan in plans.items()}  # batched: what neighbours do
    for pair, forward in forwards.items():  # warm-up: first-call allocations and kernels
        forward(from_rows(rows[:2], pad, plans[pair].pad_multiple))
    alone: dict[tuple[str, str], list[np.ndarray]] = {pair: [] for pair in pairs}
    singles: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    for row in rows:
        for pair, forward in forwards.items():
            t = time.perf_counter()
            alone[pair].append(forward(from_rows([row], pad, plans[pair].pad_multiple))[0, : len(row)])
            singles[pair].append(time.perf_counter() - t)
    batched = dict.fromkeys(pairs, 0.0)
    diff = dict.fromkeys(pairs, 0.0)
    for start in range(0, len(rows), PROBE_BATCH):
        group = rows[start : start + PROBE_BATCH]
        for pair, forward in forwards.items():
            t = time.perf_counter()
            probs = forward(from_rows(group, pad, plans[pair].pad_multiple))
            batched[pair] += time.perf_counter() - t
            for r, row in enumerate(group):
                diff[pair] = max(diff[pair], float(np.abs(probs[r, : len(row)] - alone[pair][start + r]).max()))
    results = {}
    for pair in pairs:
        results[pair] = ProbeResult(
            single_ms=round(statistics.median(singles[pair]) * 1000, 2),
            singles_s=round(sum(singles[pair]), 4),
            batch_s=round(batched[pair], 4),
            max_diff=diff[pair],
        )
        log.info("probe %s/%s: %s", *pair, results[pair])
    apply_threads(Plan(device, "torch", "float32", threads))  # the last load set them; leave them as asked
    return results
