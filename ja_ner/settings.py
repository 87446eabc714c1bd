"""Service-wide settings, built once per entry point from one source."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

from ja_ner.errors import InvalidInput


def _as_bool(value: Any) -> bool:
    """YAML gives real booleans; strings must say which (bool("false") would be True)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(value)


@dataclass(frozen=True)
class Settings:
    """Limits and tuning of one pipeline instance.

    Lengths are in tokens unless named ``*_chars``.
    """

    max_tokens: int = 256  # window length given to the model, special tokens included
    overlap_tokens: int = 32  # tokens shared by consecutive windows of one long sentence
    max_chars: int = 100_000  # longest accepted text (code points); longer -> 413
    max_texts: int = 64  # largest client batch (``texts``); larger -> 413
    max_request_chars: int = 200_000  # all texts of one request together (code points) -> 413
    token_budget: int = 4096  # padded tokens per forward micro-batch
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16 | int8 (auto: ja_ner.hardware decides)
    threads: int = 0  # torch intra-op threads on CPU; 0 ("auto" in YAML): from the cores (ja_ner.hardware)
    device: str = "cpu"  # "cpu" or "cuda:N"; adapters set it from their runtime
    word_edges: bool = True  # entity edges follow the analyser's words (ja_ner.edges)
    keep_function_words: str = "PRD"  # comma-separated types whose edge particles stay (titles)
    min_score: float = -1.0  # drop entities scoring below; < 0: the model's calibrated value (ner_min_score)

    @cached_property
    def function_word_types(self) -> frozenset[str]:
        """``keep_function_words`` as a set of entity types."""
        return frozenset(t.strip() for t in self.keep_function_words.split(",") if t.strip())

    @classmethod
    def from_mapping(cls, raw: dict[str, Any] | None) -> Settings:
        """Build from a mapping (e.g. the ``handler:`` section of model-config.yaml).

        Unknown keys are refused so a typo in a config file is not silently ignored.
        """
        raw = dict(raw or {})
        names = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise InvalidInput(f"unknown setting(s): {', '.join(unknown)}")
        values = {}
        for key, value in raw.items():
            kind = type(getattr(cls(), key))
            if key == "threads" and value == "auto":
                value = 0
            try:
                values[key] = _as_bool(value) if kind is bool else kind(value)
            except (TypeError, ValueError):
                raise InvalidInput(f"setting {key!r} must be {kind.__name__}, got {value!r}") from None
        settings = cls(**values)
        if settings.overlap_tokens * 2 >= settings.max_tokens - 2:
            raise InvalidInput("overlap_tokens must be less than half of max_tokens")
        return settings
