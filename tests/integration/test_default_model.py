"""The committed default model answers the widget sentences sensibly, through the server."""

from __future__ import annotations

import json

import pytest
import requests

from handler.archive import DEFAULT_MODEL

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ask(torchserve):
    if torchserve.model_dir != DEFAULT_MODEL:
        pytest.fail("the shared server must serve the committed default model")
    url = f"{torchserve.rest_url}/predictions/{torchserve.model_name}"
    return lambda text: [
        (e["type"], e["text"], e["start"], e["end"])
        for e in requests.post(url, data=text.encode(), headers={"Content-Type": "text/plain"}).json()["entities"]
    ]


def test_widget_sentence_people_and_places(ask):
    entities = ask("鈴木は4月の陽気の良い日に、鈴をつけて熊本県の阿蘇山に登った")
    assert ("PER", "鈴木", 0, 2) in entities
    assert ("LOC", "熊本県", 19, 22) in entities
    assert ("LOC", "阿蘇山", 23, 26) in entities


def test_widget_sentence_political_organisation(ask):
    entities = ask("中国では、中国共産党による一党統治が続く")
    assert ("ORG-P", "中国共産党", 5, 10) in entities
    assert ("LOC", "中国", 0, 2) in entities


def test_particles_stay_out_of_entities_and_min_score_is_per_request(torchserve):
    url = f"{torchserve.rest_url}/predictions/{torchserve.model_name}"
    text = "日本の首都は東京で、福岡ソフトバンクホークスの本拠地は福岡市にある。"

    def entities(**options):
        body = {"text": text, "options": options}
        reply = requests.post(url, json=body)
        assert reply.status_code == 200, reply.text
        return {(e["type"], e["text"], e["score"]) for e in reply.json()["entities"]}

    calibrated = json.loads((DEFAULT_MODEL / "config.json").read_text())["ner_min_score"]
    served = entities()
    assert {(t, s) for t, s, _ in served} >= {("LOC", "日本"), ("LOC", "東京"), ("LOC", "福岡市")}
    assert not any(s.endswith(("の", "は", "で")) for _, s, _ in served)
    assert all(score >= calibrated for *_, score in served)
    everything = entities(min_score=0)
    assert served <= everything
    assert entities(min_score=1) == set()


def test_challenge_set_through_the_server_matches_the_committed_scores(torchserve):
    """make eval-challenge URL=...: the served model scores each class as eval_scores.json records."""
    from training import challenge
    from training.evaluate import rest_predictor

    committed = json.loads((DEFAULT_MODEL / "eval_scores.json").read_text())["challenge"]
    items = challenge.load()
    by_class, _ = challenge.evaluate_challenge(
        items, rest_predictor(torchserve.rest_url, model_name=torchserve.model_name)
    )
    served = challenge.report_dict(by_class, items)
    assert {c: served[c]["support"] for c in served} == {c: committed[c]["support"] for c in committed}
    for cls, row in committed.items():
        assert served[cls]["f1"] == pytest.approx(row["f1"], abs=0.02), cls
