"""Stage 5: the model forward pass. The only module that imports torch.

It owns device placement, dtype, ``inference_mode`` and the copy back to CPU; it returns
float32 probabilities so no later stage knows about tensors or half precision.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForTokenClassification

from ja_ner.batch import Batch
from ja_ner.errors import ConfigError

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Forward:
    """A loaded token-classification model on one device."""

    def __init__(self, model_dir: str | Path, *, device: str, dtype: str, threads: int) -> None:
        if dtype not in _DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        if threads > 0 and device == "cpu":
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.dtype = _DTYPES[dtype]
        self.model = AutoModelForTokenClassification.from_pretrained(model_dir, dtype=self.dtype)
        self.model.to(self.device).eval()
        self.id2label = dict(self.model.config.id2label)
        log.info("model loaded from %s on %s as %s", model_dir, self.device, dtype)

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
