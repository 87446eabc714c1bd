"""Stage 5: the model forward pass. The only module that imports torch.

It owns device placement, the number format, ``inference_mode`` and the copy back to CPU; it
returns float32 probabilities so no later stage knows about tensors, half precision or int8.
``dtype="auto"`` and ``threads=0`` are resolved here from the machine (``ja_ner.hardware``) and
the model's recorded accuracy gates, and the choice is logged with its reason.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForTokenClassification

from ja_ner import hardware
from ja_ner.batch import Batch
from ja_ner.errors import ConfigError

log = logging.getLogger(__name__)

# int8 keeps float activations and weights of this type outside the quantised Linear layers.
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "int8": torch.float32}
# int8 never touches the classification head (see quantise_int8).
HEAD_MODULES = ("classifier",)


class Forward:
    """A loaded token-classification model on one device, in one number format."""

    def __init__(self, model_dir: str | Path, *, device: str, dtype: str, threads: int) -> None:
        if dtype != "auto" and dtype not in _DTYPES:
            raise ConfigError(f"dtype must be auto or one of {', '.join(_DTYPES)}, got {dtype!r}")
        if dtype == "int8" and device != "cpu":
            raise ConfigError(f"dtype int8 (dynamic quantisation) runs on CPU only, not {device}")
        self.device = torch.device(device)
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
        hw = hardware.detect() if dtype == "auto" or threads <= 0 else None
        if dtype == "auto":
            assert hw is not None
            choice = hardware.dtype(hw, hardware.gates_of(config.to_dict()), device)
            dtype = str(choice.value)
            log.info("dtype auto -> %s: %s (%s)", dtype, choice.reason, hw.describe())
        if device == "cpu":
            if threads <= 0:
                assert hw is not None
                picked = hardware.threads(hw, 1, device)  # in process; adapters pass their own
                threads = int(picked.value)
                log.info("threads auto -> %d: %s", threads, picked.reason)
            torch.set_num_threads(threads)
        self.format = dtype
        self.threads = threads
        self.dtype = _DTYPES[dtype]
        self.model = AutoModelForTokenClassification.from_pretrained(model_dir, dtype=self.dtype, local_files_only=True)
        self.model.to(self.device).eval()
        if dtype == "int8":
            self.model = quantise_int8(self.model)
        self.id2label = dict(self.model.config.id2label)
        log.info("model loaded from %s on %s as %s, %d thread(s)", model_dir, self.device, dtype, threads)

    def __call__(self, batch: Batch) -> np.ndarray:
        """Probabilities [rows, length, labels] as float32 on CPU."""
        ids = torch.from_numpy(batch.input_ids)
        mask = torch.from_numpy(batch.attention_mask)
        if self.device.type == "cuda":
            ids = ids.pin_memory().to(self.device, non_blocking=True)
            mask = mask.pin_memory().to(self.device, non_blocking=True)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask).logits
            # softmax in float32: half-precision logits lose the small probabilities
            probs = torch.softmax(logits.float(), dim=-1)
        return probs.cpu().numpy()


def device_for(gpu_id: int | None) -> str:
    """The torch device for a runtime's GPU assignment (None or no CUDA means CPU)."""
    if gpu_id is not None and torch.cuda.is_available():
        return f"cuda:{gpu_id}"
    return "cpu"


def quantise_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Per-channel dynamic int8 weights for the attention projections (query, key, value, output).

    Everything else stays float: embeddings, the classification head (quantising every Linear
    layer cost 9.4 dev F1 points, issue 13) and the feed-forward layers (quantising them too cost
    0.5-2.9 points on the default model, docs/performance.md). Activations are quantised per batch
    at run time (x86: fbgemm kernels).
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
