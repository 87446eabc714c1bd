"""Payload parsing as TorchServe hands requests over, and response rendering."""

import json

import pytest

from ja_ner.errors import InputTooLarge, InvalidInput
from ja_ner.options import Aggregation, OffsetUnit, parse_options
from ja_ner.request import MAX_JSON_DEPTH, admit, parse_request, render_response
from ja_ner.types import Document, DocumentResult, Entity

MODEL = {"model": "ja_ner", "model_version": "1.0"}


def _texts(body, content_type=None, max_texts=4):
    parsed = parse_request(body, content_type=content_type, max_texts=max_texts)
    return [d.text for d in parsed.documents], parsed.batch


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("東京", None, (["東京"], False)),  # text TorchServe decoded
        ({"text": "東京"}, "application/json", (["東京"], False)),  # JSON TorchServe parsed
        ({"texts": ["東京", "大阪"]}, None, (["東京", "大阪"], True)),
        (bytearray("東京".encode()), None, (["東京"], False)),  # raw bytes
        (bytearray(b' {"text": "x"}'), None, (["x"], False)),  # JSON sent without content type
        (b' {"text": "x"}', "application/octet-stream", (["x"], False)),
        (b'{"text": "x"}', "text/plain; charset=utf-8", (['{"text": "x"}'], False)),  # text/* is never JSON
        (b'{"texts": ["a"]}', "application/json; charset=UTF-8", (["a"], True)),
        (b'{"texts": ["a"]}', "application/vnd.ja-ner+json", (["a"], True)),
        (b"abc", "text/plain; charset=us-ascii", (["abc"], False)),
    ],
)
def test_accepted_bodies(body, content_type, expected):
    assert _texts(body, content_type) == expected


def test_options_in_json_and_in_a_separate_part():
    parsed = parse_request({"text": "a", "options": {"aggregation": "max", "offsets": "utf16"}}, max_texts=4)
    assert parsed.documents[0].options.aggregation is Aggregation.MAX
    parsed = parse_request(bytearray(b"a"), options=bytearray(b'{"include_tokens": true}'), max_texts=4)
    assert parsed.documents[0].options.include_tokens is True


@pytest.mark.parametrize(("raw", "expected"), [(None, None), (0, 0.0), (0.75, 0.75), (1, 1.0)])
def test_min_score_option(raw, expected):
    options = {} if raw is None else {"min_score": raw}
    parsed = parse_request({"text": "a", "options": options}, max_texts=4)
    assert parsed.documents[0].options.min_score == expected


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (None, "no request body"),
        (bytearray(b"\xff\xfe"), "not valid UTF-8"),
        (bytearray(b'{"text": '), "malformed JSON"),
        ({"text": 3}, '"text" must be a string'),
        ({"texts": "a"}, '"texts" must be a list'),
        ({"texts": ["a", 1]}, '"texts" must be a list'),
        ({"text": "a", "texts": ["b"]}, "exactly one"),
        ({"txt": "a"}, "unknown field(s): txt"),
        ({"text": "a", "options": {"bogus": 1}}, "unknown option(s): bogus"),
        ({"text": "a", "options": {"aggregation": "mean"}}, "'aggregation' must be one of"),
        ({"text": "a", "options": []}, "'options' must be a JSON object"),
        ({"text": "a", "options": {"include_tokens": "yes"}}, "include_tokens"),
        ({"text": "a", "options": {"min_score": "high"}}, "'min_score' must be a number from 0 to 1"),
        ({"text": "a", "options": {"min_score": 1.5}}, "'min_score' must be a number from 0 to 1"),
        ({"text": "a", "options": {"min_score": -0.1}}, "'min_score' must be a number from 0 to 1"),
        ({"text": "a", "options": {"min_score": True}}, "'min_score' must be a number from 0 to 1"),
    ],
)
def test_rejected_bodies_name_the_problem(body, needle):
    with pytest.raises(InvalidInput) as err:
        parse_request(body, max_texts=4)
    assert needle in err.value.message
    assert err.value.to_json()["code"] == 400


def test_client_batch_over_the_limit_is_413():
    with pytest.raises(InputTooLarge) as err:
        parse_request({"texts": ["a"] * 5}, max_texts=4)
    assert err.value.code == 413 and "limit is 4" in err.value.message


def test_render_single_batch_and_error():
    entity = Entity("PER", "鈴木", 0, 2, 0.97)
    single = parse_request("鈴木", max_texts=4)
    status, body = render_response(single, [DocumentResult((entity,))], MODEL)
    assert status == 200
    assert body == {**MODEL, "entities": [{"type": "PER", "text": "鈴木", "start": 0, "end": 2, "score": 0.97}],
                    "truncated": False}  # fmt: skip
    batch = parse_request({"texts": ["鈴木", "x"]}, max_texts=4)
    status, body = render_response(batch, [DocumentResult((entity,)), DocumentResult(())], MODEL)
    assert status == 200 and [len(r["entities"]) for r in body["results"]] == [1, 0]
    status, body = render_response(batch, [DocumentResult(()), InputTooLarge("too long")], MODEL)
    assert status == 413 and body == {"code": 413, "type": "InputTooLarge", "message": "too long"}
    json.dumps(body)


def test_options_defaults_and_enums():
    options = parse_options(None)
    assert options.aggregation is Aggregation.SIMPLE and options.offsets is OffsetUnit.CODEPOINT
    assert Document("a").options == options


def test_request_over_the_total_character_limit_is_413():
    payload = {"texts": ["あ" * 60, "い" * 50]}
    assert len(parse_request(payload, max_texts=4, max_request_chars=110).documents) == 2
    with pytest.raises(InputTooLarge) as err:
        parse_request(payload, max_texts=4, max_request_chars=109)
    assert "110 characters in all; the limit is 109" in err.value.message


def test_json_after_a_utf8_bom_is_read_as_json():
    parsed = parse_request(bytearray(b'\xef\xbb\xbf{"texts": ["a"]}'), max_texts=4)
    assert parsed.batch is True and parsed.documents[0].text == "a"


def test_every_option_is_parsed_and_offered_by_the_cli():
    from ja_ner.client.cli import build_parser
    from ja_ner.options import OPTION_NAMES, RequestOptions

    flags = {a.dest for a in build_parser()._actions}
    assert set(OPTION_NAMES) <= flags  # the CLI's option flags come from the same definition
    assert set(OPTION_NAMES) == set(RequestOptions.__dataclass_fields__)
    with pytest.raises(InvalidInput, match="known: aggregation, format, include_tokens, min_score, offsets"):
        parse_options({"colour": "red"})
    with pytest.raises(InvalidInput, match="'aggregation' must be one of 'simple', 'first', 'average', 'max'"):
        parse_options({"aggregation": None})  # null is "not set" only for min_score


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (bytearray(b"\x00"), "malformed JSON"),  # TorchServe could not parse it: raw bytes
        (bytearray(b""), "malformed JSON"),
        (bytearray(b"\xff"), "not valid UTF-8"),
        ("abc", "must be an object"),  # a JSON string, parsed by TorchServe
        (5, "must be an object"),
    ],
)
def test_a_body_declared_json_must_be_a_json_object(body, message) -> None:
    """Regression (schemathesis): `Content-Type: application/json` with a non-JSON body was read as text."""
    with pytest.raises(InvalidInput, match=message):
        parse_request(body, max_texts=4, content_type="application/json; charset=utf-8")
    assert parse_request(bytearray(b"\x00"), max_texts=4).documents[0].text == "\x00"  # undeclared: text
    assert parse_request({"text": "a"}, max_texts=4, content_type="application/json").documents[0].text == "a"


def test_hf_format_is_the_pipeline_list_for_one_text_and_a_batch():
    """format: hf answers what a Hugging Face TokenClassificationPipeline (aggregation set) returns."""
    text = "𠮷鈴木"
    result = DocumentResult((Entity("PER", "鈴木", 1, 3, 0.97),), tokens=())
    one = parse_request({"text": text, "options": {"format": "hf", "offsets": "utf16"}}, max_texts=4)
    assert render_response(one, [result], MODEL) == (
        200,
        [{"entity_group": "PER", "score": 0.97, "word": "鈴木", "start": 2, "end": 4}],  # utf16 offsets still apply
    )
    batch = parse_request({"texts": [text, "x"], "options": {"format": "hf"}}, max_texts=4)
    status, body = render_response(batch, [result, DocumentResult(())], MODEL)
    assert (status, body) == (200, [[{"entity_group": "PER", "score": 0.97, "word": "鈴木", "start": 1, "end": 3}], []])
    empty = parse_request({"texts": [], "options": {"format": "hf"}}, max_texts=4)
    assert render_response(empty, [], MODEL) == (200, [])
    native = parse_request({"text": text}, max_texts=4)
    assert render_response(native, [result], MODEL)[1]["entities"][0]["type"] == "PER"


@pytest.mark.parametrize(
    ("sizes", "budget", "expected"),
    [
        ([], 10, []),
        ([10], 10, [True]),
        ([6, 6], 10, [True, False]),
        ([6, 6, 4], 10, [True, False, True]),  # a small request after a refused one still fits
        ([3, 3, 4, 1], 10, [True, True, True, False]),  # exactly at the budget, then full
    ],
)
def test_issue13_admit_keeps_a_batch_within_its_character_budget(sizes, budget, expected):
    assert admit(sizes, budget) == expected


# -- parse-time limits (issue 22): each refusal names its limit, decided before the JSON is parsed ---------


def _refusal(body, **kw) -> str:
    with pytest.raises((InvalidInput, InputTooLarge)) as err:
        parse_request(body, content_type="application/json", max_texts=4, **kw)
    return f"{err.value.code} {err.value.message}"


def test_nesting_up_to_the_limit_is_parsed_and_one_level_more_is_refused() -> None:
    assert MAX_JSON_DEPTH == 8
    at_limit = b'{"x": ' + b"[" * 7 + b"1" + b"]" * 7 + b"}"  # 8 levels: read, then refused for its shape
    assert _refusal(at_limit).startswith("400 unknown field(s): x")
    deeper = b'{"x": ' + b"[" * 8 + b"1" + b"]" * 8 + b"}"
    assert _refusal(deeper) == "400 JSON body is nested at least 9 levels deep; the limit is 8"
    assert "the limit is 8" in _refusal(b"[" * 100_000)  # no RecursionError: checked before json.loads
    assert "JSON options is nested" in _refusal(b"a", options=b'{"aggregation": ' + b"[" * 5_000 + b"]" * 5_000 + b"}")


def test_brackets_and_digits_inside_strings_do_not_count() -> None:
    body = json.dumps({"texts": ["[[[[[[[[[[[[", "1" * 200, 'a\\"[{', "x,y,z" * 100]}).encode()
    assert [len(d.text) for d in parse_request(body, content_type="application/json", max_texts=4).documents] == [
        12, 200, 5, 500
    ]  # fmt: skip


def test_number_literals_up_to_64_characters() -> None:
    zeros = "0." + "0" * 62  # 64 characters: read (min_score 0.0)
    parsed = parse_request(f'{{"text": "a", "options": {{"min_score": {zeros}}}}}'.encode(), max_texts=4)
    assert parsed.options.min_score == 0.0
    assert _refusal(f'{{"text": "a", "options": {{"min_score": {zeros}0}}}}'.encode()) == (
        "400 JSON body has a number of 65 characters; the limit is 64"
    )
    assert "the limit is 64" in _refusal(b'{"text": ' + b"1" * 5_000 + b"}")  # not Python's 4,300-digit ValueError


def test_long_and_duplicated_keys() -> None:
    assert _refusal(json.dumps({"k" * 64: 1}).encode()).startswith(
        "400 unknown field(s): " + repr("k" * 40) + "... (64 characters);"
    )
    assert _refusal(json.dumps({"k" * 65: 1}).encode()) == "400 a JSON object key has 65 characters; the limit is 64"
    assert _refusal(b'{"text": "a", "text": "b"}') == "400 duplicated key 'text' in a JSON object"
    assert "duplicated key 'aggregation'" in _refusal(
        b'{"text": "a", "options": {"aggregation": "max", "aggregation": "first"}}'
    )


def test_items_beyond_max_texts_plus_64_are_413_before_parsing() -> None:
    assert _refusal(json.dumps({"texts": ["a"] * 5}).encode()) == '413 "texts" has 5 items; the limit is 4'
    many = _refusal(json.dumps({"texts": ["a"] * 100}).encode())
    assert many.startswith("413 JSON body has at least") and "the limit is 68 (max_texts + 64)" in many
    assert "the limit is 68" in _refusal(b"[" + b"{}," * 1_000 + b"{}]")


def test_json_parsed_elsewhere_gets_the_same_limits_without_recursion() -> None:
    deep: list = []
    node = deep
    for _ in range(100_000):  # deeper than the interpreter could recurse
        node.append([])
        node = node[0]
    assert "nested more than 8 levels" in _refusal({"text": "a", "x": deep})
    assert "the limit is 68" in _refusal({"texts": ["a"] * 100})
    assert "key has 65 characters" in _refusal({"k" * 65: 1})
    assert "number longer than 64" in _refusal({"text": "a", "options": {"min_score": 10**300}})


def test_messages_show_client_values_bounded_and_escaped() -> None:
    unknown = _refusal(json.dumps({f"f{i}": 1 for i in range(30)}).encode())
    assert unknown.startswith("400 unknown field(s): f0, f1, f10, f11, f12 and 25 more;")
    assert "'\\ud800'" in _refusal(b'{"\\ud800": 1}')  # escaped: the answer stays valid UTF-8
    value = _refusal(json.dumps({"text": "a", "options": {"aggregation": "z" * 10_000}}).encode())
    assert value.endswith("got " + repr("z" * 40) + "... (10000 characters)") and len(value) < 200
    assert _refusal(b'{"text": "a", "options": {"aggregation": [' + b"1," * 50 + b"1]}}").endswith("got an array")
