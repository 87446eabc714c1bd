"""Request reading and response rendering shared by every transport (REST, gRPC, Triton).

An adapter hands ``parse_request`` a body as its transport delivered it (bytes, a str, or JSON
TorchServe already parsed), the body's declared media type and a separate options part if any; it
never sees a transport's payload keys. Reading happens before any text reaches the pipeline, so a
malformed request is refused with a message that names the problem, and never reaches its batch
neighbours. A JSON text is checked against the parse-time limits below BEFORE it is parsed, by
a scan that neither recurses nor builds objects, so no body can make a worker spend seconds or
megabytes on it (docs/operations.md, "Bad input").
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ja_ner.errors import InputTooLarge, InvalidInput, NerError, shown, shown_names
from ja_ner.offsets import utf16_positions
from ja_ner.options import OffsetUnit, OutputFormat, RequestOptions, parse_options
from ja_ner.types import Document, DocumentResult, Entity, Outcome, entity_to_hf

_JSON_KEYS = {"text", "texts", "options"}

# Parse-time limits of a JSON body (or options part). Each refusal names its limit.
MAX_JSON_DEPTH = 8  # nested arrays/objects; a request needs 2 ({"texts": [...]}, "options": {...})
MAX_JSON_NUMBER_CHARS = 64  # characters of one number literal (Python's int() alone refuses 4,300 digits)
MAX_JSON_KEY_CHARS = 64  # characters of one object key (ours have at most 14)
JSON_SPARE_ITEMS = 64  # array elements + object members one body may hold beyond max_texts (-> 413)

# A JSON string literal once its escaped backslashes and quotes are gone (a single character class:
# the regex engine keeps no per-character state); what is left once they are blanked is the structure.
_JSON_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_LONG_NUMBER = re.compile(rf"[-+0-9.eE]{{{MAX_JSON_NUMBER_CHARS + 1},}}")
_OPEN = np.frombuffer(b"[{", np.uint8)


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


def parse_request(
    body: Any,
    *,
    content_type: str | None = None,
    options: Any = None,
    max_texts: int,
    max_request_chars: int | None = None,
) -> ParsedRequest:
    """Read one request.

    Args:
        body: bytes (any transport), a str (text TorchServe decoded) or a parsed JSON value.
        content_type: the body's declared media type, if the transport has one. ``application/json``
            (or ``+json``): a JSON object; ``text/*``: one text, never read as JSON; anything else
            or none: one text, unless the bytes start with ``{`` (a JSON body sent untyped).
        options: a separate JSON options part (gRPC input key, form field, Triton ``OPTIONS``
            row) as bytes, str or a parsed object; None: the body's own options or the defaults.
        max_texts: largest client batch (``texts``).
        max_request_chars: all texts together (code points); None: no limit.

    Raises:
        InvalidInput: bad UTF-8, malformed JSON, a parse-time limit, wrong shape, bad options.
        InputTooLarge: more than ``max_texts`` texts, too many JSON items, or more than
            ``max_request_chars`` characters in all (one request must not hold a worker past its timeout).
    """
    media = media_type(content_type)
    max_items = max_texts + JSON_SPARE_ITEMS
    request_options = RequestOptions()
    if options is not None:
        request_options = parse_options(_json_value(options, max_items, "options"))
    parsed = _read_body(body, media, request_options, max_texts, max_items)
    total = sum(len(d.text) for d in parsed.documents)
    if max_request_chars is not None and total > max_request_chars:
        raise InputTooLarge(f"the request has {total} characters in all; the limit is {max_request_chars}")
    return parsed


def media_type(content_type: object) -> str:
    """The media type of a Content-Type value, lower-case, without parameters ("" when absent).

    A declared charset is not read: every body is read as UTF-8 (TorchServe passes the handler the
    media type alone anyway), and bytes that are not UTF-8 are refused.
    """
    return content_type.split(";", 1)[0].strip().lower() if isinstance(content_type, str) else ""


def _is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _read_body(body: Any, media: str, options: RequestOptions, max_texts: int, max_items: int) -> ParsedRequest:
    declared_json = _is_json(media)
    if body is None:
        raise InvalidInput("no request body; send text or JSON")
    if isinstance(body, bytes | bytearray | memoryview):
        text = _decode(body)
        if declared_json or (not media.startswith("text/") and text.lstrip().startswith("{")):
            return _from_json(_load_json(text, max_items, "body"), options, max_texts)
        return ParsedRequest((Document(text, options),), batch=False, options=options)
    if isinstance(body, dict | list):  # JSON TorchServe parsed itself (TS_DECODE_INPUT_REQUEST on)
        return _from_json(_check_json(body, max_items, "body"), options, max_texts)
    if declared_json:  # TorchServe parsed a JSON string or number
        raise InvalidInput('JSON body must be an object with "text" or "texts"')
    if isinstance(body, str):  # text TorchServe decoded: never read as JSON
        return ParsedRequest((Document(body, options),), batch=False, options=options)
    raise InvalidInput(f"unsupported body type {type(body).__name__}")


def _decode(raw: bytes | bytearray | memoryview) -> str:
    try:
        # A BOM is not text: left in place it would hide a JSON body's leading "{".
        return bytes(raw).decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"body is not valid UTF-8 (byte {exc.start})") from None


def _json_value(raw: Any, max_items: int, what: str) -> Any:
    """A separate JSON part (options): bytes or str are parsed, a parsed value is checked."""
    if isinstance(raw, bytes | bytearray | memoryview):
        raw = _decode(raw)
    if isinstance(raw, str):
        return _load_json(raw, max_items, what)
    return _check_json(raw, max_items, what)


def _load_json(text: str, max_items: int, what: str) -> Any:
    """Parse a JSON text after checking the parse-time limits on its structure (linear, no recursion)."""
    # Every string is a key or a value, so a body with many strings has many items: refused
    # before the strings are even located (a quote after a backslash may be an escaped one).
    strings = (text.count('"') - text.count('\\"')) // 2
    if strings // 2 - 1 > max_items:
        raise _too_many_items(what, strings // 2 - 1, max_items)
    skeleton = text
    if strings:  # strings can hold any bracket or digit: blank them
        skeleton = _JSON_STRING.sub("0", text.replace("\\\\", "").replace('\\"', ""))
    brackets = skeleton.encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKETS)
    opens = brackets.count(b"[") + brackets.count(b"{")
    if opens > MAX_JSON_DEPTH:
        # Depth over a prefix: a body within the item limit has all its brackets in it, and one
        # past the limit is refused anyway (for its depth, if the prefix shows it).
        head = np.frombuffer(brackets[: 4 * (max_items + MAX_JSON_DEPTH)], np.uint8)
        steps = np.where((head == ord("[")) | (head == ord("{")), 1, -1).astype(np.int16)
        depth = int(np.cumsum(steps, dtype=np.int32).max())
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput(f"JSON {what} is nested at least {depth} levels deep; the limit is {MAX_JSON_DEPTH}")
    number = _LONG_NUMBER.search(skeleton)
    if number is not None:
        raise InvalidInput(
            f"JSON {what} has a number of {len(number.group())} characters; the limit is {MAX_JSON_NUMBER_CHARS}"
        )
    # every comma separates two items and every non-empty container holds one more than its commas
    items = skeleton.count(",") + opens
    if items > max_items:
        raise _too_many_items(what, items, max_items)
    try:
        return json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _too_many_items(what: str, items: int, max_items: int) -> InputTooLarge:
    return InputTooLarge(f"JSON {what} has at least {items} items (array elements and object members); "
                         f"the limit is {max_items} (max_texts + {JSON_SPARE_ITEMS})")  # fmt: skip


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' object hook: long and duplicated keys are refused (which "text" was meant?)."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if len(key) > MAX_JSON_KEY_CHARS:
            raise InvalidInput(f"a JSON object key has {len(key)} characters; the limit is {MAX_JSON_KEY_CHARS}")
        if key in obj:
            raise InvalidInput(f"duplicated key {shown(key)} in a JSON object")
        obj[key] = value
    return obj


def _check_json(value: Any, max_items: int, what: str) -> Any:
    """The same limits on JSON parsed elsewhere (TorchServe's own decoding), without recursion."""
    stack = [(value, 1)]
    items = 0
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise InvalidInput(f"JSON {what} is nested more than {MAX_JSON_DEPTH} levels deep; "
                                   f"the limit is {MAX_JSON_DEPTH}")  # fmt: skip
            items += len(node)
            if items > max_items:
                raise _too_many_items(what, items, max_items)
            if isinstance(node, dict):
                for key in node:
                    if isinstance(key, str) and len(key) > MAX_JSON_KEY_CHARS:
                        raise InvalidInput(
                            f"a JSON object key has {len(key)} characters; the limit is {MAX_JSON_KEY_CHARS}"
                        )
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
        elif isinstance(node, int) and not isinstance(node, bool) and node.bit_length() > 3 * MAX_JSON_NUMBER_CHARS:
            raise InvalidInput(f"JSON {what} has a number longer than {MAX_JSON_NUMBER_CHARS} characters; "
                               f"the limit is {MAX_JSON_NUMBER_CHARS}")  # fmt: skip
    return value


def _from_json(obj: Any, options: RequestOptions, max_texts: int) -> ParsedRequest:
    if not isinstance(obj, dict):
        raise InvalidInput('JSON body must be an object with "text" or "texts"')
    unknown = sorted((k for k in obj if k not in _JSON_KEYS), key=str)
    if unknown:
        raise InvalidInput(f"unknown field(s): {shown_names(unknown)}; expected text, texts, options")
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
