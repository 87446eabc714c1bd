"""Property tests (hypothesis) of request reading and of TorchServe ``handle`` under hostile input (issue 22).

* ``parse_request`` over arbitrary bodies (bytes, strings, parsed JSON values, the generator's hostile
  JSON), content types and options parts never raises anything but ``NerError``;
* ``handle`` on TorchServe's own ``Context``, with the real pipeline on the tiny model, over random
  mixes of good rows and hostile rows (``fuzz.hostile``, shaped as TorchServe's worker hands them
  over), returns one body per row: every hostile row that cannot be read a 4xx JSON error, every
  good row's body identical to that row's answer alone.

Every shrunk counter-example found on the way is in ``REGRESSIONS`` (fixed cases, run every time).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("ts")
from ts.context import Context, RequestProcessor  # noqa: E402

from fuzz import hostile  # noqa: E402
from handler.handler import JaNerHandler  # noqa: E402
from ja_ner.errors import ALL_ERRORS, NerError  # noqa: E402
from ja_ner.request import parse_request  # noqa: E402

_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
PURE = settings(max_examples=300, deadline=None, suppress_health_check=_QUIET)
MODEL = settings(max_examples=30, deadline=None, suppress_health_check=_QUIET)
OUR_TYPES = {e.type for e in ALL_ERRORS}
REST_HEADERS = {"Host": "127.0.0.1:8080", "url_path": "", "Content-Length": "1"}  # string headers: a REST request

# -- arbitrary values ---------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)
hostile_texts = st.randoms(use_true_random=False).map(lambda rng: hostile.hostile_json(rng)[1])
content_types = st.one_of(
    st.none(),
    st.sampled_from(hostile.JSON_TYPES + hostile.TEXT_TYPES + hostile.OTHER_TYPES),
    st.text(max_size=30),
)


def _as_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


raw_texts = st.one_of(st.text(max_size=60), hostile_texts, json_values.map(lambda v: json.dumps(v)))
bodies = st.one_of(
    st.none(),
    st.binary(max_size=80),
    raw_texts,
    raw_texts.map(_as_bytes),
    raw_texts.map(lambda t: bytearray(_as_bytes(t))),
    raw_texts.map(lambda t: memoryview(_as_bytes(t))),
    json_values,
    st.integers(),
    st.sampled_from([object(), 1.5, (), set()]),
)


@PURE
@given(body=bodies, content_type=content_types, options=st.one_of(st.none(), bodies))
def test_parse_request_raises_nothing_but_ner_errors(body: Any, content_type: str | None, options: Any) -> None:
    try:
        parsed = parse_request(body, content_type=content_type, options=options, max_texts=8, max_request_chars=500)
    except NerError as err:
        assert 400 <= err.code < 500 and err.type in OUR_TYPES
        json.dumps(err.to_json())  # every message is JSON-able (lone surrogates may need escaping: dataplane)
    else:
        assert all(isinstance(d.text, str) for d in parsed.documents)


@PURE
@given(text=hostile_texts, content_type=st.sampled_from(hostile.JSON_TYPES), as_bytes=st.booleans())
def test_hostile_json_is_refused_with_a_4xx(text: str, content_type: str, as_bytes: bool) -> None:
    raw = _as_bytes(text)
    try:
        body = raw if as_bytes else bytearray(raw)
        parsed = parse_request(body, content_type=content_type, max_texts=64, max_request_chars=100_000)
    except NerError as err:
        assert err.code in (400, 413)
    else:  # only a lone surrogate in a text gets through reading; the pipeline refuses it (400)
        assert any("\ud800" <= ch <= "\udfff" for d in parsed.documents for ch in d.text), text[:200]


# -- handle on TorchServe's Context ---------------------------------------------------------------------------

GOOD_ROWS: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = (
    ({"body": bytearray(hostile.GOOD_TEXT.encode())}, {**REST_HEADERS, "body": {"content-type": "text/plain"}}),
    (
        {"body": bytearray(json.dumps({"texts": [hostile.GOOD_TEXT, "大阪の田中"]}).encode())},
        {**REST_HEADERS, "body": {"content-type": "application/json"}},
    ),
    (
        {"data": bytearray(hostile.GOOD_TEXT.encode()), "options": bytearray(b'{"aggregation": "max"}')},
        {"data": {"content-type": None}, "options": {"content-type": None}},  # gRPC: no string headers
    ),
    (
        {"body": bytearray(json.dumps({"text": "𠮷野家の鈴木", "options": {"offsets": "utf16"}}).encode())},
        {**REST_HEADERS, "body": {"content-type": "application/json"}},
    ),
)


def torchserve_row(case: hostile.Case) -> tuple[dict[str, Any], dict[str, Any]]:
    """A hostile case as TorchServe's worker hands it to ``handle`` (ts/service.py): the row and its headers."""
    if case.grpc is not None:
        return {k: bytearray(v) for k, v in case.grpc.items()}, {k: {"content-type": None} for k in case.grpc}
    if case.form is not None:
        fields = {k: bytearray(v) for k, v in case.form.items()}
        return fields, {**REST_HEADERS, **{k: {"content-type": None} for k in fields}}
    media = (case.content_type or "").split(";", 1)[0].strip() or None  # the frontend passes the media type
    return {"body": bytearray(case.body or b"")}, {**REST_HEADERS, "body": {"content-type": media}}


def _context(root: Path, headers: list[dict[str, Any]]) -> Context:
    config = {"handler": {"max_chars": 200, "max_tokens": 48, "overlap_tokens": 8, "dtype": "float32"}}
    manifest = {"model": {"modelName": "ja_ner", "modelVersion": "1.0"}}
    context = Context("ja_ner", str(root), manifest, len(headers), None, "0.12.0", model_yaml_config=config)
    context.request_ids = {i: f"req-{i}" for i in range(len(headers))}
    context.request_processor = [RequestProcessor(dict(h)) for h in headers]
    return context


@pytest.fixture(scope="module")
def served(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[JaNerHandler, Path]:
    root = tmp_path_factory.mktemp("unpacked")
    (root / "model").symlink_to(tiny_model_dir)
    handler = JaNerHandler()
    handler.initialize(_context(root, [{}]))
    assert handler.pipeline is not None and handler.pipeline.settings.dtype == "float32"
    return handler, root


def _handle(served: tuple[JaNerHandler, Path], rows: list[tuple[dict, dict]]) -> list[tuple[int, Any]]:
    handler, root = served
    context = _context(root, [h for _, h in rows])
    context.metrics = None
    bodies = handler.handle([dict(r) for r, _ in rows], context)
    assert len(bodies) == len(rows)  # TorchServe needs exactly one body per request
    return [(context.get_response_status(i)[0], json.loads(b)) for i, b in enumerate(bodies)]


@pytest.fixture(scope="module")
def alone(served: tuple[JaNerHandler, Path]) -> list[tuple[int, Any]]:
    answers = [_handle(served, [row])[0] for row in GOOD_ROWS]
    assert all(status == 200 for status, _ in answers)
    return answers


def _rest_or_grpc(rng: random.Random) -> hostile.Case:
    while True:  # the frontend decodes url-encoded forms itself: not a row shape to make up here
        made = hostile.case(rng)
        if made.content_type != "application/x-www-form-urlencoded":
            return made


cases = st.randoms(use_true_random=False).map(_rest_or_grpc)
mixes = st.lists(st.one_of(st.integers(0, len(GOOD_ROWS) - 1), cases), min_size=1, max_size=8)


def check_batch(served: tuple[JaNerHandler, Path], alone: list[tuple[int, Any]], mix: list[Any]) -> None:
    rows = [GOOD_ROWS[item] if isinstance(item, int) else torchserve_row(item) for item in mix]
    for item, (status, body) in zip(mix, _handle(served, rows), strict=True):
        if isinstance(item, int):
            assert (status, body) == alone[item], "a hostile neighbour changed a good answer"
        elif status != 200 or item.refused:
            assert 400 <= status < 500, (item.kind, status, body)
            assert body["code"] == status and body["type"] in OUR_TYPES, body


@MODEL
@given(mix=mixes)
def test_handle_answers_hostile_rows_alone_and_good_rows_as_if_alone(served, alone, mix) -> None:
    check_batch(served, alone, mix)


def _case(kind: str, body: bytes | None = None, content_type: str | None = None, **kw: Any) -> hostile.Case:
    return hostile.Case(kind, True, body, content_type, **kw)


# Counter-examples (each failed before issue 22), shrunk: run every time, beside good rows.
REGRESSIONS = [
    pytest.param(_case("deep", b"[" * 5_000 + b"]" * 5_000, "application/json"), id="deep-array-recursion"),
    pytest.param(
        _case(
            "deep",
            b'{"text": "a", "options": {"aggregation": ' + b"[" * 3_000 + b"]" * 3_000 + b"}}",
            "application/json",
        ),
        id="deep-option-value-recursion",
    ),
    pytest.param(_case("deep", grpc={"data": b"{" + b'"a":[' * 2_000}), id="grpc-deep-unclosed"),
    pytest.param(
        _case("number", b'{"text": "a", "options": {"min_score": ' + b"1" * 5_000 + b"}}", "application/json"),
        id="int-over-4300-digits",
    ),
    pytest.param(_case("keys", b'{"\\ud800": 1}', "application/json"), id="surrogate-key-in-message"),
    pytest.param(_case("keys", grpc={"data": b"a", "options": b'{"\\udfff": 1}'}), id="surrogate-option-name"),
    pytest.param(
        _case("wide", b'{"text": "a", "options": {"aggregation": [' + b"1," * 100_000 + b"1]}}", "application/json"),
        id="huge-value-echoed-in-message",
    ),
    pytest.param(_case("wide", b"[" + b"{}," * 300_000 + b"{}]", "application/json"), id="memory-amplification"),
    pytest.param(_case("keys", b'{"text": "a", "text": "b"}', "application/json"), id="duplicated-key"),
    pytest.param(_case("keys", b'{"' + b"k" * 100_000 + b'": 1}', "application/json"), id="giant-key"),
]


@pytest.mark.parametrize("case", REGRESSIONS)
def test_regressions_fail_alone(served, alone, case: hostile.Case) -> None:
    check_batch(served, alone, [0, case, 1, case, 2, 3])


def test_issue22_twelve_deep_bodies_beside_twelve_good_requests(served, alone) -> None:
    """The issue's report: 12 good requests and 12 deeply nested JSON bodies in one batch; all 12 got 503."""
    deep = _case("deep", b"[" * 4_000 + b"]" * 4_000, "application/json")
    check_batch(served, alone, [i % len(GOOD_ROWS) for i in range(12)] + [deep] * 12)
