"""The client's one result type, its error, the transport-free interface and the JSON readers.

Both transports receive the same JSON (docs/grpc.md, "Wire format"); everything that reads it
lives here, so REST and gRPC cannot drift apart.
"""

from __future__ import annotations

import json
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ja_ner.types import Entity, entity_from_hf

_ERROR_KEYS = frozenset({"code", "type", "message"})


class NerClientError(Exception):
    """A request the service refused or could not answer.

    ``code`` is HTTP-like (400 bad input, 403 token refused, 413 too large, 503 unavailable, ...);
    ``type`` is the server's stable error name (``InvalidInput``, ``InputTooLarge``, TorchServe's
    own exception names) or, for a failed gRPC call, the gRPC status name (``UNAVAILABLE``).
    """

    def __init__(self, code: int, type: str, message: str) -> None:
        super().__init__(f"{code} {type}: {message}")
        self.code = code
        self.type = type
        self.message = message


class ServerUnreachable(NerClientError):
    """No server answered at all (connection refused, unknown host, no route): not an HTTP status.

    ``code`` is 0 (no HTTP exchange took place), ``type`` "Unreachable"; ``address`` is the URL
    or ``host:port`` dialled and ``message`` one plain line that says how to start a server.
    """

    def __init__(self, address: str, reason: str) -> None:
        message = f"cannot reach a ja-ner server at {address} ({reason}); start one with `make serve`"
        super().__init__(0, "Unreachable", message)
        self.address = address
        self.reason = reason

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Prediction:
    """Entities of one text.

    ``partial`` is True for the intermediate messages of ``stream()``: ``entities`` are then the
    entities of sentence window ``window`` only (offsets still into the whole text) and
    ``truncated`` is False. The last message of a stream, and every ``predict`` answer, has
    ``partial`` False and all entities of the text.
    """

    entities: tuple[Entity, ...]
    truncated: bool
    model: str
    model_version: str
    partial: bool = False
    window: int | None = None


class NerClient(ABC):
    """What every transport offers. Options are the request options of the wire format
    (``ja_ner.options``: ``aggregation``, ``offsets``, ``include_tokens``, ``min_score``, ``format``),
    passed through unchanged; answers in either ``format`` come back as the same ``Prediction``."""

    @abstractmethod
    def predict(self, text: str, **options: Any) -> Prediction:
        """Entities of one text.

        Raises:
            NerClientError: the service refused the request or failed.
        """

    @abstractmethod
    def predict_batch(self, texts: Sequence[str], **options: Any) -> list[Prediction]:
        """Entities of several texts sent as one request (``texts``); same order as ``texts``.

        Raises:
            NerClientError: one text was refused (the batch fails as a whole) or the call failed.
        """

    @abstractmethod
    def stream(self, text: str, **options: Any) -> Iterator[Prediction]:
        """Partial predictions as windows are done, then the final one (``partial`` False)."""

    @abstractmethod
    def ping(self) -> bool:
        """True when the server reports itself healthy."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> NerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for calls that failed because the server was unavailable.

    Attempt ``n`` (1-based) after a failure waits ``min(initial_backoff * multiplier**(n-1),
    max_backoff)`` seconds, scaled by a random factor in ``[1 - jitter, 1]``. Seconds throughout.
    """

    max_attempts: int = 4  # 1 means no retry
    initial_backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 2.0
    jitter: float = 0.2

    def delays(self, rand: Callable[[], float] = random.random) -> Iterator[float]:
        """The waits before attempts 2..max_attempts."""
        delay = self.initial_backoff
        for _ in range(self.max_attempts - 1):
            yield min(delay, self.max_backoff) * (1.0 - self.jitter * rand())
            delay *= self.multiplier


def call_with_retries(
    call: Callable[[], Any],
    retryable: Callable[[BaseException], bool],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> Any:
    """Run ``call`` until it succeeds, raises a non-retryable error, or the attempts run out.

    The last error is re-raised unchanged.
    """
    delays = policy.delays()
    while True:
        try:
            return call()
        except Exception as exc:
            if not retryable(exc):
                raise
            delay = next(delays, None)
            if delay is None:
                raise
            if on_retry is not None:
                on_retry(exc, delay)
            sleep(delay)


def decode_json(body: bytes | str) -> Any:
    """Parse a response body.

    Raises:
        NerClientError: (502, ``BadResponse``) the body is not JSON.
    """
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NerClientError(502, "BadResponse", f"response is not JSON: {exc}") from None


def error_from_json(obj: Any) -> NerClientError | None:
    """The error an answer carries, if it is an error body ``{"code", "type", "message"}``."""
    if isinstance(obj, dict) and obj.keys() >= _ERROR_KEYS and "entities" not in obj and "results" not in obj:
        try:
            code = int(obj["code"])
        except (TypeError, ValueError):
            code = 500
        return NerClientError(code, str(obj["type"]), str(obj["message"]))
    return None


def _entities(raw: Any) -> tuple[Entity, ...]:
    """Entities of an answer, in our shape or the pipeline's (``format: hf``, ``entity_group`` keys)."""
    if not isinstance(raw, list):
        raise NerClientError(502, "BadResponse", f"'entities' must be a list, got {type(raw).__name__}")
    try:
        native = [entity_from_hf(e) if isinstance(e, dict) and "entity_group" in e else e for e in raw]
        return tuple(
            Entity(
                type=e["type"],
                text=e["text"],
                start=int(e["start"]),
                end=int(e["end"]),
                score=float(e["score"]),
            )
            for e in native
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise NerClientError(502, "BadResponse", f"malformed entity: {exc!r}") from None


def _checked(obj: Any) -> dict[str, Any]:
    error = error_from_json(obj)
    if error is not None:
        raise error
    if not isinstance(obj, dict):
        raise NerClientError(502, "BadResponse", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def prediction_from_json(obj: Any) -> Prediction:
    """A single-text answer (or one message of a stream); a bare list is a ``format: hf`` answer.

    Raises:
        NerClientError: the answer is an error body, or not shaped like an answer.
    """
    if isinstance(obj, list):
        return Prediction(entities=_entities(obj), truncated=False, model="", model_version="")
    obj = _checked(obj)
    if "entities" not in obj:
        raise NerClientError(502, "BadResponse", "answer has no 'entities'")
    window = obj.get("window")
    return Prediction(
        entities=_entities(obj["entities"]),
        truncated=bool(obj.get("truncated", False)),
        model=str(obj.get("model", "")),
        model_version=str(obj.get("model_version", "")),
        partial=bool(obj.get("partial", False)),
        window=int(window) if window is not None else None,
    )


def batch_from_json(obj: Any, expected: int) -> list[Prediction]:
    """A client-batch answer ``{"model", "model_version", "results": [...]}``, or a list of lists (hf).

    Raises:
        NerClientError: an error body, or a result count different from ``expected``.
    """
    if isinstance(obj, list):
        if len(obj) != expected or not all(isinstance(r, list) for r in obj):
            raise NerClientError(502, "BadResponse", f"expected {expected} entity lists")
        return [prediction_from_json(r) for r in obj]
    obj = _checked(obj)
    results = obj.get("results")
    if not isinstance(results, list) or len(results) != expected:
        got = len(results) if isinstance(results, list) else "no"
        raise NerClientError(502, "BadResponse", f"expected {expected} results, got {got}")
    model, version = str(obj.get("model", "")), str(obj.get("model_version", ""))
    return [
        Prediction(_entities(_checked(r).get("entities")), bool(r.get("truncated", False)), model, version)
        for r in results
    ]


def request_json(
    text: str | None = None, texts: Sequence[str] | None = None, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON request body of the wire format (``text`` or ``texts``, optional ``options``)."""
    body: dict[str, Any] = {"text": text} if texts is None else {"texts": list(texts)}
    if options:
        body["options"] = dict(options)
    return body
