"""Per-request options: ONE definition (``RequestOptions``) from which the option list, the parser
and the CLI flags are derived. Enums are looked up by value, values validated once, unknown keys refused.

Adding an option is one field of ``RequestOptions`` (an enum, a bool, or a number in a range, with
its help text in ``_meta``); the code that acts on it reads ``document.options.<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any, get_type_hints

from ja_ner.errors import InvalidInput, shown, shown_names


class Aggregation(StrEnum):
    """How token predictions become entities (see ``aggregate``)."""

    SIMPLE = "simple"  # consecutive tokens of one type form an entity
    FIRST = "first"  # each word takes the label of its first token
    AVERAGE = "average"  # each word takes the label of its mean token probabilities
    MAX = "max"  # each word takes the label of its most confident token


class OffsetUnit(StrEnum):
    """Unit of ``start``/``end`` in responses."""

    CODEPOINT = "codepoint"  # Python str indices
    UTF16 = "utf16"  # JavaScript/Java string indices (astral characters count 2)


class OutputFormat(StrEnum):
    """Shape of a successful answer (errors keep theirs)."""

    NATIVE = "native"  # {"model", "model_version", "entities": [{"type", "text", ...}], "truncated"}
    HF = "hf"  # the list a Hugging Face TokenClassificationPipeline returns: entity_group, score, word, start, end


def _meta(help: str, *, low: float | None = None, high: float | None = None) -> dict[str, Any]:
    return {"help": help, "range": (low, high)}


@dataclass(frozen=True)
class RequestOptions:
    """Options a client may set per request (JSON ``options``; CLI ``--<name>``)."""

    aggregation: Aggregation = field(default=Aggregation.SIMPLE, metadata=_meta("entity grouping"))
    offsets: OffsetUnit = field(default=OffsetUnit.CODEPOINT, metadata=_meta("unit of start/end"))
    include_tokens: bool = field(default=False, metadata=_meta("also return the tokens with their spans and labels"))
    min_score: float | None = field(
        default=None, metadata=_meta("drop entities scoring below (0-1; default: the model's)", low=0.0, high=1.0)
    )  # None: the service's default
    format: OutputFormat = field(
        default=OutputFormat.NATIVE, metadata=_meta("answer shape: native, or hf (a Hugging Face pipeline's list)")
    )


@dataclass(frozen=True)
class OptionSpec:
    """One option as the parser and the CLI see it."""

    name: str
    kind: type  # an Enum subclass, bool, or float
    help: str
    choices: tuple[str, ...] = ()  # the values of an enum option
    range: tuple[float | None, float | None] = (None, None)  # inclusive bounds of a number
    nullable: bool = False  # JSON null means "not set" (the default, None)


def _specs() -> tuple[OptionSpec, ...]:
    hints = get_type_hints(RequestOptions)
    specs = []
    for f in fields(RequestOptions):
        kind = hints[f.name]
        nullable = kind == float | None
        kind = float if nullable else kind
        choices = tuple(m.value for m in kind) if isinstance(kind, type) and issubclass(kind, Enum) else ()
        specs.append(OptionSpec(f.name, kind, f.metadata["help"], choices, f.metadata["range"], nullable))
    return tuple(specs)


OPTIONS: tuple[OptionSpec, ...] = _specs()
OPTION_NAMES: tuple[str, ...] = tuple(sorted(spec.name for spec in OPTIONS))


def _parse_value(spec: OptionSpec, value: Any) -> Any:
    if value is None and spec.nullable:
        return None
    if spec.choices:
        try:
            return spec.kind(value)
        except ValueError:
            allowed = ", ".join(repr(c) for c in spec.choices)
            raise InvalidInput(f"option {spec.name!r} must be one of {allowed}, got {shown(value)}") from None
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise InvalidInput(f"option {spec.name!r} must be true or false, got {shown(value)}")
        return value
    low, high = spec.range
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:  # type: ignore[operator]
        raise InvalidInput(f"option {spec.name!r} must be a number from {low:g} to {high:g}, got {shown(value)}")
    return float(value)


def parse_options(raw: Any) -> RequestOptions:
    """Validate a JSON ``options`` object; absent options keep their defaults.

    Raises:
        InvalidInput: not an object, an unknown option (named in the message), or a bad value.
    """
    if raw is None:
        return RequestOptions()
    if not isinstance(raw, dict):
        raise InvalidInput(f"'options' must be a JSON object, got {type(raw).__name__}")
    unknown = sorted((k for k in raw if k not in OPTION_NAMES), key=str)
    if unknown:
        raise InvalidInput(f"unknown option(s): {shown_names(unknown)}; known: {', '.join(OPTION_NAMES)}")
    return RequestOptions(**{s.name: _parse_value(s, raw[s.name]) for s in OPTIONS if s.name in raw})
