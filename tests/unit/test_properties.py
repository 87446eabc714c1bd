"""Property tests (hypothesis) of the core on the tiny random model: offsets, robustness, batching.

The tiny model's predictions are random but deterministic, which is what these properties need:
they are about plumbing (offsets, normalisation, windows, batches), not accuracy. Small windows
(``max_tokens=24``) make even short generated texts cross window edges.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ja_ner.errors import InvalidInput, NerError
from ja_ner.normalise import normalise, to_original_span
from ja_ner.offsets import utf16_positions, utf16_to_codepoint
from ja_ner.options import Aggregation, OffsetUnit, RequestOptions
from ja_ner.pipeline import Pipeline
from ja_ner.request import render_result
from ja_ner.settings import Settings
from ja_ner.types import Document, DocumentResult

_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
# The model runs on 2 shared CPU cores: few examples for tests that call it, more for pure functions.
MODEL_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=_QUIET)
PURE_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=_QUIET)

# Characters that stress normalisation and offsets: Japanese scripts, half-width katakana and
# voiced marks, NFKC expansions (㈱ ㍻ ﬁ), combining marks, astral CJK and emoji (with ZWJ,
# skin tones, flags), bidi and zero-width marks, controls, NUL, odd spaces and line breaks.
TRICKY = (
    "鈴木太郎東京都大阪府株式会社トヨタ阿蘇山ｶﾞｲﾄﾞﾊﾟﾝＡＢＣ１２３"
    "㈱㍻ﬁ①Ⅻ\u3099\u309a\u0301\u0308\u20dd"
    "𠮷𩸽😀👍🏽👨\u200d👩\u200d👧🇯🇵"
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202e\u2066\u2069\ufeff"
    "\x00\x01\x1b\x7f\x85\u2028\u2029\n\r\t \u3000\u00a0"
    "。、！？「」（）・ーabc .,"
)
tricky_text = st.text(alphabet=st.sampled_from(TRICKY), max_size=80)
any_text = st.one_of(st.text(max_size=80), tricky_text)  # st.text: any code point but surrogates
with_surrogates = st.text(alphabet=st.characters(codec=None, categories=None), max_size=40)


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir):
    return Pipeline.load(tiny_model_dir, Settings(max_tokens=24, overlap_tokens=4, max_chars=2000, token_budget=256))


def check_result(text: str, result: DocumentResult) -> None:
    """Every entity points into ``text``; entities are sorted and never overlap."""
    last_end = 0
    for e in result.entities:
        assert 0 <= e.start < e.end <= len(text), e
        assert text[e.start : e.end] == e.text, e
        assert e.start >= last_end, f"overlapping or unsorted: {result.entities}"
        last_end = e.end


# -- pipeline --------------------------------------------------------------------------------------


@MODEL_SETTINGS
@given(text=any_text, strategy=st.sampled_from(list(Aggregation)))
def test_any_text_gives_valid_entities(pipeline, text, strategy):
    [outcome] = pipeline.predict([Document(text, RequestOptions(aggregation=strategy))])
    assert isinstance(outcome, DocumentResult), outcome
    check_result(text, outcome)


@MODEL_SETTINGS
@given(text=with_surrogates)
def test_lone_surrogates_are_an_error_never_an_exception(pipeline, text):
    [outcome] = pipeline.predict([Document(text)])
    if any(unicodedata.category(ch) == "Cs" for ch in text):
        assert isinstance(outcome, InvalidInput) and "surrogate" in outcome.message
    else:
        assert isinstance(outcome, DocumentResult)
        check_result(text, outcome)


@MODEL_SETTINGS
@given(text=any_text)
def test_utf16_offsets_convert_back_exactly(pipeline, text):
    doc = Document(text, RequestOptions(offsets=OffsetUnit.UTF16))
    [outcome] = pipeline.predict([doc])
    assert isinstance(outcome, DocumentResult)
    units = text.encode("utf-16-le")
    for entity in render_result(doc, outcome)["entities"]:
        start, end = entity["start"], entity["end"]
        assert units[2 * start : 2 * end].decode("utf-16-le") == entity["text"]
        cp_start, cp_end = utf16_to_codepoint(text, start), utf16_to_codepoint(text, end)
        assert text[cp_start:cp_end] == entity["text"]


@PURE_SETTINGS
@given(text=any_text)
def test_utf16_positions_round_trip(text):
    positions = utf16_positions(text)
    assert len(positions) == len(text) + 1
    assert positions[-1] == len(text.encode("utf-16-le")) // 2
    for i in range(len(text) + 1):
        assert utf16_to_codepoint(text, positions[i]) == i


def _entities(outcome: object) -> list[tuple[str, int, int, str]]:
    assert isinstance(outcome, DocumentResult)
    return [(e.type, e.start, e.end, e.text) for e in outcome.entities]


@MODEL_SETTINGS
@given(a=any_text, b=any_text, c=any_text)
def test_answer_does_not_depend_on_batch_company(pipeline, a, b, c):
    """``predict([a]) == predict([b, a, c])[1]``: padding and neighbours never leak.

    Spans and types must be identical; scores may differ by float noise from a different
    padded length, so they are compared to 1e-3.
    """
    [alone] = pipeline.predict([Document(a)])
    together = pipeline.predict([Document(b), Document(a), Document(c)])[1]
    assert _entities(alone) == _entities(together)
    assert isinstance(alone, DocumentResult) and isinstance(together, DocumentResult)
    for x, y in zip(alone.entities, together.entities, strict=True):
        assert abs(x.score - y.score) <= 1e-3


@MODEL_SETTINGS
@given(good=st.text(alphabet=st.sampled_from("東京都の鈴木さん"), min_size=1, max_size=30), junk=tricky_text)
def test_a_bad_neighbour_does_not_change_a_good_answer(pipeline, good, junk):
    bad = junk + "\udc00" + junk  # a lone surrogate: refused, while its neighbour is answered
    [alone] = pipeline.predict([Document(good)])
    outcomes = pipeline.predict([Document(bad), Document(good), Document(bad)])
    assert isinstance(outcomes[0], NerError) and isinstance(outcomes[2], NerError)
    assert _entities(alone) == _entities(outcomes[1])


# -- normalise -------------------------------------------------------------------------------------


@PURE_SETTINGS
@given(text=any_text)
def test_normalise_map_is_monotone_and_in_bounds(text):
    norm = normalise(text)
    n = len(norm.text)
    assert norm.original == text
    assert len(norm.to_original) == n and len(norm.to_original_end) == n
    for i in range(n):
        assert 0 <= norm.to_original[i] < norm.to_original_end[i] <= len(text)
        if i:
            assert norm.to_original[i - 1] <= norm.to_original[i]
            assert norm.to_original_end[i - 1] <= norm.to_original_end[i]


@PURE_SETTINGS
@given(text=any_text, data=st.data())
def test_normalised_spans_map_to_the_source_characters(text, data):
    """Any span maps back onto original characters whose own normalisation contains it."""
    norm = normalise(text)
    assume(norm.text)
    start = data.draw(st.integers(0, len(norm.text) - 1))
    end = data.draw(st.integers(start + 1, len(norm.text)))
    o_start, o_end = to_original_span(norm, start, end)
    assert 0 <= o_start < o_end <= len(text)
    assert o_start == norm.to_original[start] and o_end == norm.to_original_end[end - 1]
    # the normalised span is inside the normalisation of the original span it maps to
    again = normalise(text[o_start:o_end]).text
    assert norm.text[start:end] in again


@PURE_SETTINGS
@given(text=any_text)
def test_normalise_drops_invisible_marks_and_controls(text):
    out = normalise(text).text
    assert not any(ch in out for ch in "\u200b\u200e\u200f\u202a\u202e\u2066\u2069\ufeff")
    assert not any(unicodedata.category(ch) == "Cc" and ch not in "\n" for ch in out)


@PURE_SETTINGS
@given(text=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60))
def test_normalise_is_identity_on_printable_ascii(text):
    norm = normalise(text)
    assert norm.text == text
    assert list(norm.to_original) == list(range(len(text)))


# -- regressions found while writing these tests (fixes belong to ja_ner/request.py) ---------------


def test_json_body_with_a_utf8_bom_is_read_as_json():
    """TorchServe cannot parse a BOM-prefixed application/json body and hands over bytes;
    ``parse_request`` then sees "\\ufeff{" and analyses the JSON syntax as text (200, junk entities)."""
    from ja_ner.request import parse_request

    parsed = parse_request(bytearray(b'\xef\xbb\xbf{"text": "a"}'), max_texts=64)
    assert [d.text for d in parsed.documents] == ["a"]
