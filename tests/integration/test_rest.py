"""The REST API of a real TorchServe serving the .mar built by the tests."""

from __future__ import annotations

import re
import threading

import pytest
import requests

pytestmark = pytest.mark.integration

WIDGET = "鈴木は4月の陽気の良い日に、鈴をつけて熊本県の阿蘇山に登った"


@pytest.fixture(scope="module")
def url(torchserve) -> str:
    return f"{torchserve.rest_url}/predictions/{torchserve.model_name}"


def _assert_entities(text: str, entities: list[dict]) -> None:
    last = 0
    for e in entities:
        assert last <= e["start"] < e["end"] <= len(text)
        assert text[e["start"] : e["end"]] == e["text"]
        assert 0.0 < e["score"] <= 1.0
        last = e["end"]


def test_ping(torchserve):
    reply = requests.get(f"{torchserve.rest_url}/ping", timeout=10)
    assert reply.status_code == 200 and reply.json()["status"] == "Healthy"


@pytest.mark.parametrize(
    "send",
    [
        lambda u: requests.post(u, data=WIDGET.encode(), headers={"Content-Type": "text/plain; charset=utf-8"}),
        lambda u: requests.post(u, json={"text": WIDGET}),
        lambda u: requests.post(u, data=WIDGET.encode(), headers={"Content-Type": "application/octet-stream"}),
        lambda u: requests.post(u, data=WIDGET.encode()),  # no content type at all
        lambda u: requests.post(u, files={"data": ("t.txt", WIDGET.encode())}),  # multipart field "data"
    ],
    ids=["text-plain", "json", "bytes", "no-content-type", "multipart-data"],
)
def test_every_input_form_gives_the_same_answer(url, send):
    reply = send(url)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == "ja_ner" and body["model_version"] == "1.0" and body["truncated"] is False
    _assert_entities(WIDGET, body["entities"])
    reference = requests.post(url, json={"text": WIDGET}).json()
    assert body["entities"] == reference["entities"]


def test_client_batch_answers_in_order(url):
    texts = [WIDGET, "", "中国では、中国共産党による一党統治が続く", WIDGET]
    reply = requests.post(url, json={"texts": texts})
    assert reply.status_code == 200
    results = reply.json()["results"]
    assert len(results) == 4 and results[1]["entities"] == []
    assert results[0] == results[3]
    for text, result in zip(texts, results, strict=True):
        _assert_entities(text, result["entities"])
    single = requests.post(url, json={"text": texts[2]}).json()
    assert results[2]["entities"] == single["entities"]


def test_options_utf16_and_tokens(url):
    text = "𠮷野家の" + WIDGET
    plain = requests.post(url, json={"text": text}).json()["entities"]
    utf16 = requests.post(url, json={"text": text, "options": {"offsets": "utf16", "include_tokens": True}}).json()
    assert [e["start"] + 1 for e in plain if e["start"] >= 1] == [
        e["start"] for e in utf16["entities"] if e["start"] >= 2
    ]
    assert utf16["tokens"] and all(t["token"] for t in utf16["tokens"])


def _metric(torchserve, name: str) -> float:
    text = requests.get(f"{torchserve.metrics_url}/metrics", timeout=10).text
    values = [float(m.group(1)) for m in re.finditer(rf"^{name}\{{[^}}]*\}} ([0-9.e+-]+)$", text, re.M)]
    return sum(values)


def test_bad_request_in_a_concurrent_batch_fails_alone(torchserve, url):
    before = _metric(torchserve, "NerBatchRequests"), _metric(torchserve, "NerBatches")
    payloads = [{"json": {"text": f"{WIDGET}{i}"}} for i in range(7)]
    payloads.insert(3, {"data": b'{"text": 42}', "headers": {"Content-Type": "application/json"}})
    barrier = threading.Barrier(len(payloads))
    replies: dict[int, requests.Response] = {}

    def send(i: int) -> None:
        barrier.wait()
        replies[i] = requests.post(url, timeout=60, **payloads[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert replies[3].status_code == 400
    assert replies[3].json() == {"code": 400, "type": "InvalidInput", "message": '"text" must be a string, got int'}
    for i in set(replies) - {3}:
        assert replies[i].status_code == 200, replies[i].text
        _assert_entities(payloads[i]["json"]["text"], replies[i].json()["entities"])
    requests_delta = _metric(torchserve, "NerBatchRequests") - before[0]
    batches_delta = _metric(torchserve, "NerBatches") - before[1]
    assert requests_delta == len(payloads)
    assert batches_delta < len(payloads)  # some requests really shared a TorchServe batch


def test_text_over_the_size_limit_is_413(url):
    reply = requests.post(url, data=("あ" * 100_001).encode(), headers={"Content-Type": "text/plain"})
    assert reply.status_code == 413
    assert reply.json()["type"] == "InputTooLarge" and "100000" in reply.json()["message"]


def test_client_batch_over_the_limit_is_413(url):
    reply = requests.post(url, json={"texts": ["a"] * 65})
    assert reply.status_code == 413 and "limit is 64" in reply.json()["message"]


def test_unknown_option_is_400_naming_it(url):
    reply = requests.post(url, json={"text": "a", "options": {"colour": "red"}})
    assert reply.status_code == 400 and "colour" in reply.json()["message"]


def test_long_document_is_answered_whole(url):
    text = "東京都に本社を置くトヨタ自動車の社長は、大阪で講演した。" * 60
    body = requests.post(url, data=text.encode(), headers={"Content-Type": "text/plain"}).json()
    assert body["truncated"] is False
    _assert_entities(text, body["entities"])


def test_stage_histograms_and_entities_per_type_reach_prometheus(torchserve, url):
    from loadtest.prom import parse

    def entities(samples) -> dict[str, float]:
        return {s.label("EntityType"): s.value for s in samples if s.name.removesuffix("_total") == "NerEntities"}

    before = entities(parse(requests.get(f"{torchserve.metrics_url}/metrics", timeout=10).text))
    found = requests.post(url, json={"text": WIDGET}, timeout=60).json()["entities"]
    samples = parse(requests.get(f"{torchserve.metrics_url}/metrics", timeout=10).text)
    buckets = [s for s in samples if s.name == "NerStageSeconds_bucket"]
    assert {s.label("Stage") for s in buckets} >= {"normalise", "encode", "segment", "forward", "aggregate"}
    assert any(s.label("le") == "0.005" for s in buckets)  # Prometheus' default buckets, in seconds
    after = entities(samples)
    grown = {t: after[t] - before.get(t, 0.0) for t in after if after[t] != before.get(t, 0.0)}
    assert grown == {t: float(sum(e["type"] == t for e in found)) for t in {e["type"] for e in found}}
