"""Payload parsing and response rendering shared by every transport (REST, gRPC, Triton).

Parsing happens before any text reaches the pipeline, so a malformed request is refused with
a message that names the problem, and never reaches its batch neighbours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ja_ner.errors import InputTooLarge, InvalidInput, NerError
from ja_ner.offsets import utf16_positions
from ja_ner.options import OffsetUnit, OutputFormat, RequestOptions, parse_options
from ja_ner.types import Document, DocumentResult, Entity, Outcome, entity_to_hf

# TorchServe puts a REST body under "body"; its gRPC client and multipart forms use "data".
PAYLOAD_KEYS = ("body", "data")
_JSON_KEYS = {"text", "texts", "options"}


@dataclass(frozen=True)
class ParsedRequest:
    """The documents of one request; ``batch`` is True for a ``texts`` client batch."""

    documents: tuple[Document, ...]
    batch: bool
    options: RequestOptions = RequestOptions()  # the request's options (every document carries them too)

    @property
    def chars(self) -> int:
        """Characters of all its texts (code points)."""
        return sum(len(d.text) for d in self.documents if isinstance(d.text, str))


def _decode(raw: bytes | bytearray) -> str:
    try:
        # A BOM is not text: left in place it would hide a JSON body's leading "{".
        return bytes(raw).decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"body is not valid UTF-8 (byte {exc.start})") from None


def _from_json(obj: Any, options: RequestOptions, max_texts: int) -> ParsedRequest:
    if not isinstance(obj, dict):
        raise InvalidInput('JSON body must be an object with "text" or "texts"')
    unknown = sorted(str(k) for k in obj if k not in _JSON_KEYS)
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}; expected text, texts, options")
    if "options" in obj:
        options = parse_options(obj["options"])
    if ("text" in obj) == ("texts" in obj):
        raise InvalidInput('JSON body needs exactly one of "text" or "texts"')
    if "text" in obj:
        if not isinstance(obj["text"], str):
            raise InvalidInput(f'"text" must be a string, got {type(obj["text"]).__name__}')
        return ParsedRequest((Document(obj["text"], options),), batch=False, options=options)
    texts = obj["texts"]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise InvalidInput('"texts" must be a list of strings')
    if len(texts) > max_texts:
        raise InputTooLarge(f'"texts" has {len(texts)} items; the limit is {max_texts}')
    return ParsedRequest(tuple(Document(t, options) for t in texts), batch=True, options=options)


def parse_request(
    payload: dict[str, Any], *, max_texts: int, max_request_chars: int | None = None, content_type: str | None = None
) -> ParsedRequest:
    """Read one request as TorchServe hands it to a handler (REST or gRPC).

    ``payload`` maps "body" or "data" to a str (text/plain), a dict (parsed JSON) or bytes
    (anything else: JSON is recognised by a leading "{"); a separate "options" entry (gRPC
    input map) holds JSON options. ``content_type`` is the body's media type where the
    transport has one: a body declared JSON must be a JSON object (TorchServe hands over
    the raw bytes when its own parse failed, or a str for a JSON string).

    Raises:
        InvalidInput: no payload, bad UTF-8, bad JSON, wrong shape, bad options.
        InputTooLarge: more than ``max_texts`` texts, or more than ``max_request_chars`` characters
            in all texts together (one request must not hold a worker past its timeout).
    """
    parsed = _parse(payload, max_texts, declared_json=_is_json(content_type))
    total = sum(len(d.text) for d in parsed.documents)
    if max_request_chars is not None and total > max_request_chars:
        raise InputTooLarge(f"the request has {total} characters in all; the limit is {max_request_chars}")
    return parsed


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _parse(payload: dict[str, Any], max_texts: int, *, declared_json: bool = False) -> ParsedRequest:
    key = next((k for k in PAYLOAD_KEYS if k in payload), None)
    if key is None:
        raise InvalidInput(f"no request body; send text or JSON (input key one of {', '.join(PAYLOAD_KEYS)})")
    options = RequestOptions()
    if "options" in payload:
        raw = payload["options"]
        text = _decode(raw) if isinstance(raw, (bytes, bytearray)) else raw
        options = parse_options(_loads(text) if isinstance(text, str) else text)
    body = payload[key]
    if declared_json and isinstance(body, (bytes, bytearray)):
        body = _loads(_decode(body))  # TorchServe's own parse failed: say why
    if declared_json and not isinstance(body, (dict, list)):
        raise InvalidInput('JSON body must be an object with "text" or "texts"')
    if isinstance(body, (bytes, bytearray)):
        body = _decode(body)
        if body.lstrip().startswith("{"):
            body = _loads(body)
    if isinstance(body, (dict, list)):
        return _from_json(body, options, max_texts)
    if isinstance(body, str):
        return ParsedRequest((Document(body, options),), batch=False, options=options)
    raise InvalidInput(f"unsupported body type {type(body).__name__}")


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _entity_json(entity: Entity, positions: list[int] | None) -> dict[str, Any]:
    start, end = (entity.start, entity.end) if positions is None else (positions[entity.start], positions[entity.end])
    return {"type": entity.type, "text": entity.text, "start": start, "end": end, "score": entity.score}


def render_result(doc: Document, result: DocumentResult) -> dict[str, Any]:
    """One document's JSON: ``{"entities": [...], "truncated": bool}`` (+ ``tokens`` on request)."""
    positions = utf16_positions(doc.text) if doc.options.offsets is OffsetUnit.UTF16 else None
    out: dict[str, Any] = {
        "entities": [_entity_json(e, positions) for e in result.entities],
        "truncated": result.truncated,
    }
    if result.tokens is not None:
        out["tokens"] = [
            {"token": t.token, "start": t.start, "end": t.end, "label": t.label, "score": t.score}
            for t in result.tokens
        ]
    return out


def render_response(
    request: ParsedRequest, outcomes: list[Outcome], model: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """The response status and JSON for one request.

    A client batch fails as a whole with the first document's error (its texts were sent
    together, so a partial answer would be easy to misread). With ``format: hf`` the answer is
    the list a Hugging Face ``TokenClassificationPipeline`` returns (aggregation set): one text
    gives ``[{"entity_group", "score", "word", "start", "end"}, ...]``, a client batch one such
    list per text; ``model``, ``truncated`` and ``tokens`` are not part of that shape.
    """
    error = next((o for o in outcomes if isinstance(o, NerError)), None)
    if error is not None:
        return error.code, error.to_json()
    results = [o for o in outcomes if isinstance(o, DocumentResult)]
    rendered = [render_result(d, r) for d, r in zip(request.documents, results, strict=True)]
    if request.options.format is OutputFormat.HF:  # a pipeline's entity list (a list of them for a batch)
        lists = [[entity_to_hf(e) for e in r["entities"]] for r in rendered]
        return 200, lists if request.batch else lists[0]
    if request.batch:
        return 200, {**model, "results": rendered}
    return 200, {**model, **rendered[0]}


def admit(sizes: Sequence[int], budget: int) -> list[bool]:
    """Which requests of one server batch to answer, so the batch's work stays within ``budget``.

    Args:
        sizes: characters of each request, in arrival order.
        budget: characters one batch may hold (``Settings.max_batch_chars``).

    Returns:
        One flag per request. The first request is always admitted (it passed ``max_request_chars``,
        which is at most the budget); each later one is admitted when it still fits beside those
        admitted before it, so a small request after a refused large one is still answered.
    """
    used = 0
    flags = []
    for size in sizes:
        fits = not flags or used + size <= budget
        used += size if fits else 0
        flags.append(fits)
    return flags
