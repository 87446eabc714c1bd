"""Service-wide settings, built once per entry point from one source, checked however they are built."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, get_type_hints

from ja_ner.errors import ConfigError
from ja_ner.labels import Decoding
from ja_ner.plan import FORMATS, RUNTIMES

DTYPES = ("auto", *FORMATS)
RUNTIME_CHOICES = ("auto", *RUNTIMES)
DECODINGS = tuple(d.value for d in Decoding)
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


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

    Lengths are in tokens unless named ``*_chars``. Every way of building one (the constructor,
    ``dataclasses.replace``, ``from_mapping``) is checked by ``__post_init__``.

    Raises:
        ConfigError: a value of the wrong type or out of range, named in the message.
    """

    max_tokens: int = 256  # window length given to the model, special tokens included
    overlap_tokens: int = 32  # tokens shared by consecutive windows of one long sentence
    max_chars: int = 100_000  # longest accepted text (code points); longer -> 413
    max_texts: int = 64  # largest client batch (``texts``); larger -> 413
    max_request_chars: int = 100_000  # all texts of one request together (code points) -> 413
    max_batch_chars: int = 200_000  # all requests of one server batch together; those beyond -> 503 Busy
    token_budget: int = 4096  # padded tokens per forward micro-batch
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16 | int8 (auto: ja_ner.plan decides)
    runtime: str = "auto"  # auto | torch | onnxruntime (auto: ja_ner.plan decides, by a probe)
    batch_invariant: bool = True  # auto never picks a pair whose answers depend on batch neighbours
    threads: int = 0  # intra-op threads on CPU; 0 ("auto" in YAML): from the cores and workers (ja_ner.plan)
    device: str = "cpu"  # "cpu" or "cuda:N": the runtime decides (never a config key, see from_mapping)
    word_edges: bool = True  # entity edges follow the analyser's words (ja_ner.edges)
    news_edges: bool = True  # split titles/countries/affixes news writes against a name (ja_ner.edges)
    keep_function_words: str = "PRD"  # comma-separated types whose edge particles stay (titles)
    min_score: float | None = None  # drop entities scoring below; None: the model's calibrated ner_min_score
    decoding: str = "viterbi"  # viterbi | group: how token probabilities become entities (ja_ner.aggregate)

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), _TYPES[f.name])
        positive = ("max_tokens", "max_chars", "max_texts", "max_request_chars", "max_batch_chars", "token_budget")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"setting {name!r} must be at least 1, got {getattr(self, name)}")
        if self.overlap_tokens < 0 or self.overlap_tokens * 2 >= self.max_tokens - 2:
            raise ConfigError("overlap_tokens must be at least 0 and less than half of max_tokens")
        if self.max_batch_chars < self.max_request_chars:
            raise ConfigError("max_batch_chars must be at least max_request_chars (one request always fits)")
        if self.threads < 0:
            raise ConfigError(f"setting 'threads' must be 0 (auto: from the cores) or more, got {self.threads}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"setting 'dtype' must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.runtime not in RUNTIME_CHOICES:
            raise ConfigError(f"setting 'runtime' must be one of {', '.join(RUNTIME_CHOICES)}, got {self.runtime!r}")
        if not _DEVICE.match(self.device):
            raise ConfigError(f"setting 'device' must be 'cpu' or 'cuda:N', got {self.device!r}")
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"setting 'min_score' must be from 0 to 1, or null for the model's, got {self.min_score}")
        if self.decoding not in DECODINGS:
            raise ConfigError(f"setting 'decoding' must be one of {', '.join(DECODINGS)}, got {self.decoding!r}")

    @cached_property
    def function_word_types(self) -> frozenset[str]:
        """``keep_function_words`` as a set of entity types."""
        return frozenset(t.strip() for t in self.keep_function_words.split(",") if t.strip())

    @classmethod
    def from_mapping(cls, raw: dict[str, Any] | None) -> Settings:
        """Build from a mapping of config values (the ``handler:`` section of model-config.yaml,
        Triton ``parameters``), converting strings to each field's type.

        Unknown keys are refused so a typo in a config file is not silently ignored; so is
        ``device``, which the runtime decides (TorchServe's ``gpu_id``, Triton's instance kind)
        in every adapter alike. ``null`` (or an empty string) for ``min_score`` means not set;
        ``auto`` for ``threads`` is 0 (``ja_ner.hardware`` decides at load).

        Raises:
            ConfigError: an unknown key, ``device``, or a value of the wrong type or out of range.
        """
        raw = dict(raw or {})
        if "device" in raw:
            raise ConfigError("'device' is not a setting: the runtime decides it (TorchServe gpu_id, Triton kind)")
        names = sorted(f.name for f in fields(cls) if f.name != "device")
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(names)}")
        if raw.get("threads") == "auto":
            raw["threads"] = 0
        return cls(**{key: _convert(key, value, _TYPES[key]) for key, value in raw.items()})


def _convert(name: str, value: Any, kind: Any) -> Any:
    """A config value (YAML scalar or string) as ``kind`` (int, float, str, bool, or float | None)."""
    if kind == float | None:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
            return None
        kind = float
    try:
        return _as_bool(value) if kind is bool else kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r} must be {getattr(kind, '__name__', kind)}, got {value!r}") from None


def _check_type(name: str, value: Any, kind: Any) -> None:
    allowed = (float, int, type(None)) if kind == float | None else (float, int) if kind is float else (kind,)
    if not isinstance(value, allowed) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"setting {name!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")


_TYPES: dict[str, Any] = get_type_hints(Settings)
