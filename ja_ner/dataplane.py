"""The data plane every adapter calls: read → admit → predict → regroup → render, each request contained.

An adapter (TorchServe ``handle``, Triton ``execute``) turns its transport's payloads into
``Incoming`` values (a body, its declared media type, a separate options part, whether the
client asked for partial messages) and hands them over; it gets one ``Answer`` per request, in
order, and translates it with its one error table. Nothing a request does leaves this module as
an exception: whatever one request raises while it is read, parsed, admitted, predicted,
streamed or rendered becomes that request's own answer, through one guard (``contained``):

* a ``NerError`` is the request's answer (400 ``InvalidInput``, 413, 503 ``Busy``...);
* any other exception is a bug of ours: logged once with its stack trace, answered 500 ``Internal``.

Prediction is one call for the whole batch (``Pipeline.predict_timed``, which retries a failing
batch document by document, so its guard is per document too). Recording metrics is the adapter's
callback and is contained as well: a failing metric never fails an answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ja_ner.errors import Busy, Internal, NerError
from ja_ner.pipeline import Pipeline, StageTimes
from ja_ner.request import ParsedRequest, admit, parse_request, render_response, render_result
from ja_ner.types import Outcome

log = logging.getLogger(__name__)

T = TypeVar("T")

# What each stage was doing, for the 500 message (the stack trace goes to the log).
STAGES = {
    "read": "reading the request",
    "parse": "parsing the request",
    "admit": "admitting the request",
    "predict": "predicting",
    "render": "building the answer",
    "stream": "streaming the answer",
    "metrics": "recording metrics",
}
# The body of last resort: what a request gets when even its error cannot be rendered.
LAST_RESORT = b'{"code":500,"type":"Internal","message":"internal error; see the server log"}'


@dataclass(frozen=True)
class Incoming:
    """One request as an adapter read it from its transport."""

    body: Any  # bytes, a str (text the transport decoded) or parsed JSON; None: no body
    content_type: str | None = None  # the body's declared media type; None: undeclared
    options: Any = None  # a separate JSON options part (gRPC input key, form field, Triton OPTIONS)
    stream: bool = False  # the client asked for one partial message per window (gRPC StreamPredictions)


@dataclass(frozen=True)
class Answer:
    """One request's answer: a status, its UTF-8 JSON body, and the error behind a non-200 status."""

    status: int
    body: bytes
    error: NerError | None = None


@dataclass(frozen=True)
class Report:
    """What one batch did, for an adapter's metrics."""

    requests: int
    outcomes: list[Outcome]  # every document's outcome, streamed ones included
    times: StageTimes


Reader = Callable[[], Incoming]
Sender = Callable[[int, bytes], None]  # (request index, message) -> sends a partial message now


def contained(stage: str, fn: Callable[..., T], *args: Any) -> T | NerError:
    """``fn(*args)``, or the error that request gets: its own ``NerError``, else a logged 500."""
    try:
        return fn(*args)
    except NerError as err:
        return err
    except Exception:  # a bug of ours: this request alone fails, with its stack trace logged once
        log.exception("%s failed for one request; it alone is answered 500", stage)
        return Internal(f"internal error while {STAGES.get(stage, stage)}; see the server log")


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept as is)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error_answer(error: NerError) -> Answer:
    """The answer carrying ``error``; it never raises (ASCII escapes, then a fixed body, as fallbacks)."""
    try:
        body = error.to_json()
        try:
            raw = dumps(body)
        except UnicodeEncodeError:  # a lone surrogate in a message: escaped, still valid JSON
            raw = json.dumps(body, separators=(",", ":")).encode("ascii")
        return Answer(int(error.code), raw, error)
    except Exception:
        log.exception("an error answer could not be rendered")
        return Answer(500, LAST_RESORT, Internal("internal error; see the server log"))


def answer_batch(
    pipeline: Pipeline,
    model: dict[str, str],
    requests: Sequence[Incoming | Reader],
    *,
    send_partial: Sender | None = None,
    record: Callable[[Report], None] | None = None,
) -> list[Answer]:
    """Answer every request of one server batch, in order; never raises.

    Args:
        pipeline: the loaded pipeline (its settings hold the limits).
        model: ``{"model", "model_version"}`` for the answers.
        requests: each an ``Incoming``, or a reader returning one (called inside the guard, so an
            adapter's own payload reading is contained too).
        send_partial: sends one partial message for a request now; None: nothing is streamed.
        record: the adapter's metrics for the batch (contained: a failure is logged, not answered).

    Returns:
        One ``Answer`` per request.
    """
    try:
        return _answer(pipeline, model, requests, send_partial, record)
    except Exception:  # a bug in this function itself, outside every per-request guard
        log.exception("the data plane failed for a batch of %d requests", len(requests))
        return [error_answer(Internal("internal error; see the server log")) for _ in requests]


def _read(item: Incoming | Reader) -> Incoming:
    return item if isinstance(item, Incoming) else item()


def _parse(incoming: Incoming, pipeline: Pipeline) -> ParsedRequest:
    settings = pipeline.settings
    return parse_request(
        incoming.body,
        content_type=incoming.content_type,
        options=incoming.options,
        max_texts=settings.max_texts,
        max_request_chars=settings.max_request_chars,
    )


def _admit(parsed: list[ParsedRequest | NerError], budget: int) -> list[ParsedRequest | NerError]:
    """Refuse (503 Busy) the requests that would take the batch past ``max_batch_chars``.

    The limit keeps the worst batch well inside the server's time limit (docs/performance.md,
    "Long texts"), where TorchServe would kill the worker and fail every request in it.
    """
    out = list(parsed)
    sizes = {i: contained("admit", lambda p=p: p.chars) for i, p in enumerate(parsed) if isinstance(p, ParsedRequest)}
    for i, size in sizes.items():
        if isinstance(size, NerError):
            out[i] = size
    counted = [i for i, size in sizes.items() if not isinstance(size, NerError)]
    flags = admit([sizes[i] for i in counted], budget)  # type: ignore[misc]
    for i, fits in zip(counted, flags, strict=True):
        if not fits:
            out[i] = Busy(f"this server batch is full ({budget} characters in all); retry the request ({sizes[i]})")
    return out


def _answer(
    pipeline: Pipeline,
    model: dict[str, str],
    requests: Sequence[Incoming | Reader],
    send_partial: Sender | None,
    record: Callable[[Report], None] | None,
) -> list[Answer]:
    incoming = [contained("read", _read, item) for item in requests]
    parsed = [x if isinstance(x, NerError) else contained("parse", _parse, x, pipeline) for x in incoming]
    parsed = _admit(parsed, pipeline.settings.max_batch_chars)
    stream = {
        i
        for i, p in enumerate(parsed)
        if isinstance(p, ParsedRequest) and send_partial is not None and getattr(incoming[i], "stream", False)
    }
    plain = [i for i, p in enumerate(parsed) if isinstance(p, ParsedRequest) and i not in stream]
    docs = [d for i in plain for d in parsed[i].documents]  # type: ignore[union-attr]
    predicted = contained("predict", pipeline.predict_timed, docs)  # its own guard retries per document
    outcomes, times = ([predicted] * len(docs), StageTimes()) if isinstance(predicted, NerError) else predicted
    answered = list(outcomes)
    answers: list[Answer | None] = [None] * len(parsed)
    start = 0
    for i in plain:  # regroup: each request takes its documents' outcomes, in order
        request = parsed[i]
        assert isinstance(request, ParsedRequest)
        mine = outcomes[start : start + len(request.documents)]
        start += len(request.documents)
        answers[i] = _render(contained("render", _rendered, request, mine, model))
    for i in sorted(stream):
        request = parsed[i]
        assert isinstance(request, ParsedRequest) and send_partial is not None
        finals: list[Outcome] = []
        answers[i] = _render(contained("stream", _streamed, pipeline, model, i, request, send_partial, finals))
        answered += finals
    if record is not None:
        contained("metrics", record, Report(len(parsed), answered, times))
    return [a if a is not None else error_answer(p) for a, p in zip(answers, parsed, strict=True)]  # type: ignore[arg-type]


def _render(result: Answer | NerError) -> Answer:
    return error_answer(result) if isinstance(result, NerError) else result


def _rendered(request: ParsedRequest, outcomes: Sequence[Outcome], model: dict[str, str]) -> Answer:
    status, body = render_response(request, list(outcomes), model)
    if status != 200:
        error = next(o for o in outcomes if isinstance(o, NerError))
        return error_answer(error)
    return Answer(200, dumps(body))


def _streamed(
    pipeline: Pipeline,
    model: dict[str, str],
    index: int,
    request: ParsedRequest,
    send: Sender,
    finals: list[Outcome],
) -> Answer:
    """One partial message per window of a single text, then the full answer (a client batch: one answer)."""
    if request.batch or len(request.documents) != 1:
        outcomes = pipeline.predict(request.documents)
        finals += outcomes
        return _rendered(request, outcomes, model)
    doc = request.documents[0]
    window = 0
    for final, outcome in pipeline.predict_stream(doc):
        if final:
            finals.append(outcome)
            return _rendered(request, [outcome], model)
        if isinstance(outcome, NerError):
            continue
        send(index, dumps({**model, "partial": True, "window": window, **render_result(doc, outcome)}))
        window += 1
    raise AssertionError("predict_stream ends with a final outcome")
