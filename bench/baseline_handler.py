"""The baseline: a naive TorchServe handler that behaves like TorchServe's stock HF token-classification example.

Written for this project from the description in docs/performance.md ("The baseline"); no code
was copied. What it does, on purpose:

- one request at a time (the archive sets batchSize 1, and the loop below handles rows singly);
- every input is padded (and silently truncated) to 150 tokens;
- argmax only: no softmax, no scores, no entity grouping, no character offsets;
- the answer is the list of (subword, label) pairs for all 150 positions, ``<s>``/``<pad>`` included.

It loads tokenizer and model from the unpacked archive folder (never the hub). Tokens are read
with ``convert_ids_to_tokens``; the stock example decodes and re-tokenises, which is slower, so
this baseline is, if anything, a little faster than the real one.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

log = logging.getLogger(__name__)

MAX_LENGTH = 150


def request_text(row: dict[str, Any]) -> str:
    """The text of one TorchServe request: ``data`` or ``body``, as str, bytes or a JSON object."""
    body = row.get("data", row.get("body"))
    if isinstance(body, dict):
        body = body.get("text", "")
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8")
    return str(body)


class BaselineHandler:
    """Tokenise one text padded to 150 tokens, forward, argmax, return (subword, label) pairs."""

    def __init__(self) -> None:
        self.tokenizer = None
        self.model = None
        self.initialized = False

    def initialize(self, context: Any) -> None:
        model_dir = context.system_properties["model_dir"]
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForTokenClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.initialized = True
        log.info("baseline handler ready (%d torch threads)", torch.get_num_threads())

    def predict_one(self, text: str) -> list[list[str]]:
        """The (subword, label) pair of each of the 150 positions."""
        encoded = self.tokenizer(
            text, padding="max_length", truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
        )
        with torch.no_grad():
            logits = self.model(**encoded).logits
        labels = logits.argmax(dim=-1)[0].tolist()
        tokens = self.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist())
        id2label = self.model.config.id2label
        return [[token, id2label[label]] for token, label in zip(tokens, labels, strict=True)]

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[bytes]:
        return [json.dumps(self.predict_one(request_text(row))).encode("utf-8") for row in data]
