"""A seeded generator of hostile requests: what an attacker sends, not what docs/openapi.yaml describes.

Each ``Case`` is one request (REST body, REST multipart form, or gRPC ``input`` map) of a named
class, with what it must get: ``refused`` cases are requests the service cannot read and must
answer with a 4xx JSON error of its own; the others (``refused=False``) may also be read as text
(200). The same generator feeds the unit properties (tests/unit/test_dataplane_properties.py, through
``hypothesis.strategies.randoms``) and the run against a real server (``fuzz.run``); a case is
fully determined by the ``random.Random`` it is drawn from, so a seed reproduces a run.

Classes (``KINDS``): deep and wide nesting, huge numbers, giant and duplicated keys, long escapes, odd encodings,
odd content types and charsets, mixed body forms, gRPC input maps with odd keys and values.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

# Requests that are always read (the good neighbours and the base of some hostile cases).
GOOD_TEXT = "鈴木は熊本県の阿蘇山に登った"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"

# Content types under which a body is read as JSON, whatever it starts with.
JSON_TYPES = (
    JSON,
    "application/json; charset=utf-8",
    'application/json;charset="UTF-8"',
    "APPLICATION/JSON",
    "application/json ; foo=bar",
    "application/problem+json",
    "application/vnd.ja-ner.v1+json; charset=us-ascii",
)
# Content types under which a body is one text (never read as JSON).
TEXT_TYPES = (TEXT, "text/plain", "TEXT/PLAIN; CHARSET=UTF8", "text/html", "text/csv; header=present", "text/x-junk")
# Neither: a body is one text unless it starts with "{".
OTHER_TYPES = (None, "", "application/octet-stream", "image/png", "x/y", "application/jsonx", "application/xml", ";;;")
# Charsets other than UTF-8. TorchServe hands the handler the media type without its parameters,
# so the body is read as UTF-8 whatever it declares: valid UTF-8 is read, the rest is refused.
FOREIGN_CHARSETS = ("shift_jis", "latin-1", "utf-16", "UTF-32LE", "euc-jp", "bogus", "utf-8x", "x" * 300)

# Byte strings that are not UTF-8, each for a different reason.
BAD_UTF8 = (
    b"\xff\xfe",  # a UTF-16 BOM
    b"\xc0\xaf",  # an overlong "/"
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xe6\x9d",  # a truncated sequence
    b"\xf4\x90\x80\x80",  # past U+10FFFF
    b"\xf8\x88\x80\x80\x80",  # a five-byte form
    "東京".encode("shift_jis"),
    "café".encode("latin-1"),
    b"\x80",  # a lone continuation byte
)


@dataclass(frozen=True)
class Case:
    """One hostile request.

    Exactly one of ``body`` (a REST body, sent with ``content_type``), ``form`` (REST multipart
    fields) and ``grpc`` (a gRPC ``input`` map) is set.
    """

    kind: str
    refused: bool  # True: must be answered 4xx with the service's JSON error; False: 200 is fine too
    body: bytes | None = None
    content_type: str | None = None
    form: dict[str, bytes] | None = None
    grpc: dict[str, bytes] | None = None
    stream: bool = False  # gRPC: sent with StreamPredictions (and the "stream" key)
    note: str = field(default="", compare=False)

    @property
    def transport(self) -> str:
        return "grpc" if self.grpc is not None else "rest"

    @property
    def size(self) -> int:
        parts = [self.body or b""] + list((self.form or self.grpc or {}).values())
        return sum(len(p) for p in parts)


def _j(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)


# -- hostile JSON texts: each is refused wherever it is read as JSON ---------------------------------


def deep(rng: random.Random) -> str:
    """Arrays or objects nested past the depth limit, bare or where an option value goes."""
    n = rng.choice([9, 12, 40, 999, 1_001, 5_000, 50_000, 300_000])
    inner = rng.choice(
        [
            "[" * n + "]" * n,
            '{"a":' * n + "1" + "}" * n,
            "[" * n,  # never closed
            "[{" * (n // 2) + "}]" * (n // 2),
        ]
    )
    return rng.choice(
        [
            inner if inner.startswith("{") else '{"text":' + inner + "}",
            '{"text": "a", "options": {"aggregation": ' + inner + "}}",
            '{"texts": [' + inner + "]}",
            '{"text": "a", "options": ' + inner + "}",
        ]
    )


def wide(rng: random.Random) -> str:
    """Far more items than any request holds: texts, empty objects, option values, members."""
    n = rng.choice([65, 129, 1_000, 100_000, 1_000_000])
    return rng.choice(
        [
            '{"texts": [' + ",".join(['"a"'] * n) + "]}",
            '{"texts": [' + ",".join(["{}"] * n) + "]}",
            '{"text": "a", "options": {"aggregation": [' + ",".join(["1"] * n) + "]}}",
            "{" + ",".join(f'"k{i}":0' for i in range(min(n, 200_000))) + "}",
            '{"text": "a", "options": {' + ",".join(f'"o{i}":null' for i in range(min(n, 200_000))) + "}}",
        ]
    )


def number(rng: random.Random) -> str:
    """Number literals that are long, huge, tiny or not JSON at all, where a request cannot take them."""
    n = rng.choice([65, 4_301, 100_000, 1_000_000])
    literal = rng.choice(
        [
            "1" * n,
            "-" + "9" * n,
            "0." + "1" * n,
            "1e" + "9" * min(n, 5_000),
            "1" * n + "e-" + "9" * 20,
            "NaN",
            "Infinity",
            "-Infinity",
            "1e999",
            "-1e309",
            "1" * 60,
        ]
    )
    return rng.choice(
        [
            '{"text": ' + literal + "}",
            '{"text": "a", "options": {"min_score": ' + (literal if literal[0] != "0" else "1" + literal) + "}}",
            '{"texts": [' + literal + "]}",
            '{"text": "a", "junk": ' + literal + "}",
        ]
    )


def keys(rng: random.Random) -> str:
    """Giant, duplicated, unknown or unprintable keys."""
    n = rng.choice([65, 10_000, 1_000_000])
    return rng.choice(
        [
            _j({"x" * n: 1, "text": "a"}),
            _j({"text": "a", "options": {"o" * n: 1}}),
            '{"text": "a", "text": "b"}',
            '{"text": "a", "options": {}, "options": {"aggregation": "max"}}',
            '{"text": "a", "options": {"aggregation": "max", "aggregation": "first"}}',
            '{"texts": ["a"], "texts": ["b"]}',
            "{" + ",".join(['"text": "a"'] * rng.choice([3, 1_000])) + "}",
            '{"\\ud800": 1}',
            '{"te\\u0000xt": "a"}',
            '{"text": "a", "options": {"\\udfff\\u202e": true}}',
            _j({"\u202etext": "a"}),
            '{"": "a"}',
        ]
    )


def escapes(rng: random.Random) -> str:
    """One text of escapes (quotes, backslashes, \\u) past max_request_chars: costly to scan, refused (413)."""
    n = rng.choice([150_000, 600_000])  # at most 7.2 MB: under TorchServe's 8 MiB
    escape = rng.choice(['\\"', "\\\\", "\\u3042", "\\ud842\\udfb7", "\\n"])
    head, tail = rng.choice([('{"text": "', '"}'), ('{"texts": ["a", "', '"]}')])
    return head + escape * n + tail


def shape(rng: random.Random) -> str:
    """Well-formed JSON of the wrong shape (smaller than the limits, still refused)."""
    return rng.choice(
        [
            "[]",
            "null",
            "true",
            '"text"',
            "123",
            "{}",
            '{"text": null}',
            '{"text": ["a"]}',
            '{"texts": "a"}',
            '{"texts": [["a"]]}',
            '{"text": "a", "texts": ["b"]}',
            '{"text": "a", "options": []}',
            '{"text": "a", "options": "max"}',
            '{"text": "a", "options": {"aggregation": {"a": 1}}}',
            '{"text": "a", "options": {"min_score": "0.5"}}',
            '{"text": "a", "options": {"include_tokens": 1}}',
            '{"text": "\\ud800"}',
            '{"texts": ["a", "\\udc00"]}',
            '{"text": "a"',
            '{"text": "a"}}',
            '{"text": "a",}',
            "{'text': 'a'}",
            '{"text": "a"} {"text": "b"}',
            '\ufeff\ufeff{"text": "a"}',  # one BOM is dropped, a second is not white space
            '{"text": "\\x41"}',
            '{"text": "a\u2028", "options": {"offsets": "UTF16"}}',
        ]
    )


HOSTILE_JSON: tuple[Callable[[random.Random], str], ...] = (deep, wide, number, keys, escapes, shape)


# Texts of HOSTILE_JSON that are refused as a body but are fine options: no options, the defaults.
DEFAULT_OPTIONS = ("{}", "null")


def hostile_json(rng: random.Random) -> tuple[str, str]:
    """``(class, JSON text)``: a text the service must refuse wherever it reads JSON."""
    make = rng.choice(HOSTILE_JSON)
    return make.__name__, make(rng)


# -- requests --------------------------------------------------------------------------------------


def _rest_json(rng: random.Random) -> Case:
    kind, text = hostile_json(rng)
    raw = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.5:  # declared JSON: refused whatever it starts with
        return Case(kind, True, raw, rng.choice(JSON_TYPES))
    # undeclared: read as JSON only when it starts with "{" (after a BOM and white space)
    prefix = rng.choice([b"", b" \n\t", b"\xef\xbb\xbf"])
    content_type = rng.choice(OTHER_TYPES)
    return Case(kind, raw.lstrip().startswith(b"{") and text.lstrip()[:1] == "{", prefix + raw, content_type)


def _encoding(rng: random.Random) -> Case:
    bad = rng.choice(BAD_UTF8)
    base = rng.choice([GOOD_TEXT.encode(), _j({"text": GOOD_TEXT}).encode()])
    cut = rng.randrange(len(base) + 1)
    body = base[:cut] + bad + base[cut:]
    content_type = rng.choice(JSON_TYPES + TEXT_TYPES + OTHER_TYPES)
    return Case("encoding", True, body, content_type)


def _utf16(rng: random.Random) -> Case:
    codec = rng.choice(["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
    body = _j({"text": GOOD_TEXT}).encode(codec)
    content_type = rng.choice(JSON_TYPES)
    return Case("encoding", True, body, content_type)


def _charset(rng: random.Random) -> Case:
    media = rng.choice(["application/json", "text/plain"])
    charset = rng.choice(FOREIGN_CHARSETS)
    body = rng.choice([GOOD_TEXT.encode(), _j({"text": GOOD_TEXT}).encode(), b"abc"])
    return Case("charset", False, body, f"{media}; charset={charset}")


def _text_junk(rng: random.Random) -> Case:
    """JSON syntax, NUL bytes and control characters declared as text: read as text (200) or refused."""
    _, text = hostile_json(rng)
    text = text[: rng.choice([10, 200, 2_000])]  # short: the model reads every character of it
    if rng.random() < 0.3:
        text = rng.choice(["\x00", "\x1b[31m", "\u202e", "\ufeff", "𠮷", "\r\n", "ｶﾞ"]) * 30 + GOOD_TEXT
    return Case("text-junk", False, text.encode("utf-8", "surrogatepass"), rng.choice(TEXT_TYPES))


def _form(rng: random.Random) -> Case:
    _, text = hostile_json(rng)
    raw = text.encode("utf-8", "surrogatepass")
    choice = rng.randrange(4)
    if choice == 0:  # a hostile options field beside a good text
        return Case("form", text not in DEFAULT_OPTIONS, form={"data": GOOD_TEXT.encode(), "options": raw})
    if choice == 1:  # the data field holds a hostile JSON body
        return Case("form", text.lstrip()[:1] == "{", form={"data": raw})
    if choice == 2:  # no data field at all
        return Case("form", True, form={rng.choice(["text", "body2", "Data", "options"]): raw})
    value = b"x" * rng.choice([1, 1_000])
    junk = {f"f{i}": value for i in range(rng.choice([1, 50]))}
    return Case("form", False, form={**junk, "data": GOOD_TEXT.encode()})


def _urlencoded(rng: random.Random) -> Case:
    body = rng.choice(
        [
            b"data=" + GOOD_TEXT.encode(),
            b"text=" + GOOD_TEXT.encode(),
            b"%zz=%%&&==",
            b"data=%ff%fe",
            b"=x",
            b"data=" + b"%5B" * 2_000 + b"%5D" * 2_000,
        ]
    )
    refused = body.startswith(b"text=")  # no data field; the others are the frontend's to decode
    return Case("urlencoded", refused, body, "application/x-www-form-urlencoded")


def _grpc(rng: random.Random) -> Case:
    _, text = hostile_json(rng)
    raw = text.encode("utf-8", "surrogatepass")
    choice = rng.randrange(8)
    if choice == 0:
        return Case("grpc-data", text.lstrip()[:1] == "{", grpc={"data": raw})
    if choice == 1:
        return Case("grpc-options", text not in DEFAULT_OPTIONS, grpc={"data": GOOD_TEXT.encode(), "options": raw})
    if choice == 2:
        return Case("grpc-keys", True, grpc={})
    if choice == 3:
        key = rng.choice(["", "DATA", "text", "options", "\x00", "データ", "d" * 1_000])
        return Case("grpc-keys", True, grpc={key: GOOD_TEXT.encode()})
    if choice == 4:  # many odd keys beside a good text: read, the rest ignored
        value = rng.choice([b"", b"\xff", b"x" * 100])
        extra = {f"k{i}": value for i in range(rng.choice([1, 100, 1_000]))}
        return Case("grpc-keys", False, grpc={**extra, "data": GOOD_TEXT.encode()})
    if choice == 5:
        return Case("grpc-data", True, grpc={"data": rng.choice(BAD_UTF8) + GOOD_TEXT.encode()})
    if choice == 6:  # the REST key over gRPC: read like "data"
        return Case("grpc-keys", text.lstrip()[:1] == "{", grpc={"body": raw})
    # StreamPredictions with the stream key: a hostile body is refused in its one final message
    body = raw if text.lstrip()[:1] == "{" else b'{"text": 1}'
    return Case("grpc-stream", True, grpc={"data": body, "stream": b"true"}, stream=True)


MAKERS: tuple[Callable[[random.Random], Case], ...] = (
    _rest_json,
    _rest_json,
    _rest_json,
    _encoding,
    _utf16,
    _charset,
    _text_junk,
    _form,
    _urlencoded,
    _grpc,
    _grpc,
    _grpc,
)
KINDS = ("deep", "wide", "number", "keys", "escapes", "shape", "encoding", "charset", "text-junk", "form", "urlencoded",
         "grpc-data", "grpc-options", "grpc-keys", "grpc-stream")  # fmt: skip


def case(rng: random.Random, *, transports: tuple[str, ...] = ("rest", "grpc")) -> Case:
    """One hostile request drawn from ``rng`` (of the given transports)."""
    while True:
        made = rng.choice(MAKERS)(rng)
        if made.transport in transports:
            return made
