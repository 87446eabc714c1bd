"""Per-request options: enums looked up by value, validated once, unknown keys refused."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from ja_ner.errors import InvalidInput


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


@dataclass(frozen=True)
class RequestOptions:
    """Options a client may set per request."""

    aggregation: Aggregation = Aggregation.SIMPLE
    offsets: OffsetUnit = OffsetUnit.CODEPOINT
    include_tokens: bool = False
    min_score: float | None = None  # drop entities scoring below; None: the service's default


def _enum_value(enum: type[Enum], key: str, value: Any) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum)
        raise InvalidInput(f"option {key!r} must be one of {allowed}, got {value!r}") from None


def parse_options(raw: Any) -> RequestOptions:
    """Validate a JSON ``options`` object.

    Raises:
        InvalidInput: not an object, an unknown option (named in the message), or a bad value.
    """
    if raw is None:
        return RequestOptions()
    if not isinstance(raw, dict):
        raise InvalidInput(f"'options' must be a JSON object, got {type(raw).__name__}")
    known = {"aggregation", "offsets", "include_tokens", "min_score"}
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise InvalidInput(f"unknown option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    include_tokens = raw.get("include_tokens", False)
    if not isinstance(include_tokens, bool):
        raise InvalidInput(f"option 'include_tokens' must be true or false, got {include_tokens!r}")
    return RequestOptions(
        aggregation=_enum_value(Aggregation, "aggregation", raw.get("aggregation", "simple")),
        offsets=_enum_value(OffsetUnit, "offsets", raw.get("offsets", "codepoint")),
        include_tokens=include_tokens,
        min_score=_min_score(raw.get("min_score")),
    )


def _min_score(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"option 'min_score' must be a number from 0 to 1, got {value!r}")
    return float(value)
