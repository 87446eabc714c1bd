"""The whole core flow on a tiny random model: plumbing, offsets, limits, batching."""

import pytest

from ja_ner.errors import InputTooLarge, InvalidInput
from ja_ner.options import Aggregation, OffsetUnit, RequestOptions
from ja_ner.pipeline import Pipeline
from ja_ner.request import render_result
from ja_ner.settings import Settings
from ja_ner.types import Document, DocumentResult, Entity

TEXTS = [
    "鈴木は4月の陽気の良い日に、鈴をつけて熊本県の阿蘇山に登った",
    "ＡＢＣ株式会社 ｶﾞｲﾄﾞ 𠮷野家 😀 Tokyo",
    "中国では、中国共産党による一党統治が続く",
]


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir):
    return Pipeline.load(tiny_model_dir, Settings(max_tokens=48, overlap_tokens=8, max_chars=5000, token_budget=256))


def _check(text: str, result: DocumentResult) -> None:
    last = 0
    for e in result.entities:
        assert 0 <= last <= e.start < e.end <= len(text)
        assert text[e.start : e.end] == e.text
        last = e.end


@pytest.mark.parametrize("strategy", list(Aggregation))
def test_entities_point_into_the_original_text(pipeline, strategy):
    docs = [Document(t, RequestOptions(aggregation=strategy)) for t in TEXTS]
    for doc, result in zip(docs, pipeline.predict(docs), strict=True):
        assert isinstance(result, DocumentResult)
        _check(doc.text, result)


def test_empty_and_whitespace_only_give_no_entities(pipeline):
    results = pipeline.predict([Document(""), Document(" \u3000\n\t")])
    assert results == [DocumentResult(()), DocumentResult(())]


def test_bad_documents_fail_alone(pipeline):
    results = pipeline.predict([Document("x" * 5001), Document(TEXTS[0]), Document("a\ud800b")])
    assert isinstance(results[0], InputTooLarge) and results[0].code == 413
    assert isinstance(results[1], DocumentResult)
    assert isinstance(results[2], InvalidInput) and "surrogate" in results[2].message


def test_answer_does_not_depend_on_batch_company(pipeline):
    alone = pipeline.predict([Document(TEXTS[2])])[0]
    together = pipeline.predict([Document(t) for t in TEXTS * 3])[2]
    assert alone == together


def test_long_text_is_windowed_not_truncated(pipeline):
    text = ("東京都の鈴木さんは大阪の会社に勤めている。" * 40) + "最後に阿蘇山"
    result = pipeline.predict([Document(text)])[0]
    assert isinstance(result, DocumentResult) and result.truncated is False
    _check(text, result)
    tokens = pipeline.predict([Document(text, RequestOptions(include_tokens=True))])[0].tokens
    assert tokens[-1].end == len(text)  # the last characters were seen by the model


def test_stream_ends_with_the_same_answer_as_predict(pipeline):
    text = "今日は東京で会議があった。" * 30
    messages = list(pipeline.predict_stream(Document(text)))
    assert [final for final, _ in messages].count(True) == 1 and messages[-1][0] is True
    assert len(messages) > 2
    assert messages[-1][1] == pipeline.predict([Document(text)])[0]


def test_utf16_offsets_count_astral_characters_twice():
    doc = Document("𠮷野家と東京", RequestOptions(offsets=OffsetUnit.UTF16))
    result = DocumentResult((Entity("ORG", "𠮷野家", 0, 3, 0.9), Entity("LOC", "東京", 4, 6, 0.8)))
    rendered = render_result(doc, result)["entities"]
    assert [(e["start"], e["end"]) for e in rendered] == [(0, 4), (5, 7)]
    utf16 = doc.text.encode("utf-16-le")
    assert [utf16[e["start"] * 2 : e["end"] * 2].decode("utf-16-le") for e in rendered] == ["𠮷野家", "東京"]
