"""gRPC API of the shared TorchServe (issue 4): inference, streaming, errors, management.

Uses the session fixture ``torchserve`` (token authorisation off, plain text). Token auth and
TLS need their own server: see test_grpc_secure.py.
"""

from __future__ import annotations

import json
import threading

import grpc
import pytest
import requests

from ja_ner.client import NerClientError, RestClient, RetryPolicy
from ja_ner.client import cli as ja_ner_cli
from ja_ner.client.grpc import GrpcClient
from ja_ner.proto_gen import inference_pb2, inference_pb2_grpc

pytestmark = pytest.mark.integration

TEXT = "鈴木一郎は熊本県の阿蘇山に登った。トヨタ自動車の本社は愛知県豊田市にある。"
SENTENCES = [
    "田中花子は二〇二三年に東京都の早稲田大学を卒業した。",
    "株式会社日立製作所は茨城県日立市で創業された。",
    "第一回東京オリンピックは一九六四年に開催された。",
    "佐藤首相は自由民主党の総裁として国会で演説した。",
    "大阪城は豊臣秀吉によって築かれた城である。",
]
# ~30 sentences: several windows of the default 256 tokens, so several stream messages.
LONG_TEXT = "".join(SENTENCES * 6)


@pytest.fixture(scope="module")
def client(torchserve):
    with GrpcClient(
        torchserve.grpc_target,
        model=torchserve.model_name,
        management_target=torchserve.grpc_mgmt_target,
        timeout=120,
    ) as c:
        yield c


@pytest.fixture(scope="module")
def stub(torchserve):
    """TorchServe's own way of calling: a bare stub, as its example client does."""
    with grpc.insecure_channel(torchserve.grpc_target) as channel:
        yield inference_pb2_grpc.InferenceAPIsServiceStub(channel)


def assert_offsets(text, prediction):
    for e in prediction.entities:
        assert text[e.start : e.end] == e.text


def worker_pids(client) -> list[int]:
    return [w["pid"] for w in client.describe_model()[0]["workers"]]


def test_ping(client):
    assert client.ping()


def test_predictions_single(client, torchserve):
    p = client.predict(TEXT)
    assert p.model == torchserve.model_name and p.model_version
    assert not p.partial
    assert_offsets(TEXT, p)


def test_predictions_plain_text_input_like_torchserve_client(stub, client, torchserve):
    reply = stub.Predictions(
        inference_pb2.PredictionsRequest(model_name=torchserve.model_name, input={"data": TEXT.encode()}), timeout=60
    )
    body = json.loads(reply.prediction)
    assert [tuple(e.values()) for e in body["entities"]] == [
        (e.type, e.text, e.start, e.end, e.score) for e in client.predict(TEXT).entities
    ]


def test_client_batch_matches_single_predictions(client):
    texts = [TEXT, SENTENCES[0], ""]
    batch = client.predict_batch(texts)
    assert [p.entities for p in batch] == [client.predict(t).entities for t in texts]
    for text, p in zip(texts, batch, strict=True):
        assert_offsets(text, p)


def test_stream_sends_windows_then_the_full_answer(client):
    messages = list(client.stream(LONG_TEXT))
    partial, final = messages[:-1], messages[-1]
    assert len(partial) >= 2, "a 30-sentence document spans several windows"
    assert all(m.partial for m in partial) and not final.partial
    assert [m.window for m in partial] == list(range(len(partial)))
    assert final.entities == client.predict(LONG_TEXT).entities
    for m in messages:
        assert_offsets(LONG_TEXT, m)
    # windows own disjoint token ranges, in order
    starts = [e.start for m in partial for e in m.entities]
    assert starts == sorted(starts)


def test_stream_of_a_short_text_is_one_window_then_final(client):
    messages = list(client.stream(TEXT))
    assert [m.partial for m in messages] == [True, False]
    assert messages[-1].entities == client.predict(TEXT).entities


def test_stream_in_hf_format_ends_with_the_pipeline_list(stub, client, torchserve):
    body = json.dumps({"text": TEXT, "options": {"format": "hf"}}, ensure_ascii=False).encode()
    request = inference_pb2.PredictionsRequest(model_name=torchserve.model_name, input={"data": body, "stream": b"1"})
    *partials, final = (json.loads(r.prediction) for r in stub.StreamPredictions(request, timeout=60))
    assert partials and all(p["partial"] is True for p in partials)  # partial messages keep our shape
    assert [(e["word"], e["entity_group"]) for e in final] == [(e.text, e.type) for e in client.predict(TEXT).entities]


def test_plain_request_over_stream_predictions_gets_one_message_and_keeps_the_worker(stub, client, torchserve):
    before = worker_pids(client)
    request = inference_pb2.PredictionsRequest(model_name=torchserve.model_name, input={"data": TEXT.encode()})
    replies = list(stub.StreamPredictions(request, timeout=60))
    assert len(replies) == 1
    assert (
        json.loads(replies[0].prediction)["entities"]
        == json.loads(stub.Predictions(request, timeout=60).prediction)["entities"]
    )
    assert worker_pids(client) == before


def test_bad_input_is_error_json_in_an_ok_response(stub, client, torchserve):
    request = inference_pb2.PredictionsRequest(model_name=torchserve.model_name, input={"data": b"\xff\xfe"})
    body = json.loads(stub.Predictions(request, timeout=60).prediction)  # status OK: no exception
    assert body["code"] == 400 and body["type"] == "InvalidInput"
    with pytest.raises(NerClientError) as info:
        client.predict(TEXT, aggregation="nope")
    assert (info.value.code, info.value.type) == (400, "InvalidInput")
    assert "aggregation" in info.value.message
    with pytest.raises(NerClientError) as info:
        list(client.stream(TEXT, offsets="bytes"))
    assert info.value.code == 400


def test_bad_request_does_not_fail_its_batch_neighbours(client):
    expected = client.predict(TEXT).entities
    results: dict[str, object] = {}
    start = threading.Barrier(6)

    def call(name, **options):
        start.wait()
        try:
            results[name] = client.predict(TEXT, **options).entities
        except NerClientError as exc:
            results[name] = exc

    threads = [threading.Thread(target=call, args=(f"good{i}",)) for i in range(3)]
    threads += [threading.Thread(target=call, args=(f"bad{i}",), kwargs={"aggregation": "nope"}) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(results[f"good{i}"] == expected for i in range(3))
    assert all(isinstance(results[f"bad{i}"], NerClientError) and results[f"bad{i}"].code == 400 for i in range(3))


def test_whole_request_failure_is_a_grpc_status(torchserve):
    client = GrpcClient(torchserve.grpc_target, model="no_such_model", retry=RetryPolicy(max_attempts=1))
    with client, pytest.raises(NerClientError) as info:
        client.predict(TEXT)
    # TorchServe 0.12 answers an unknown model with INTERNAL (InferenceImpl.prediction)
    assert (info.value.code, info.value.type) == (500, "INTERNAL")
    assert "no_such_model" in info.value.message


def test_management_describe_and_list_with_limit(client, torchserve):
    described = client.describe_model()
    assert described[0]["modelName"] == torchserve.model_name
    assert described[0]["batchSize"] == 8 and described[0]["workers"]
    listed = client.list_models(limit=1)
    assert [m["modelName"] for m in listed["models"]] == [torchserve.model_name]
    assert client.list_models(limit=0)["models"] == []  # 0 is "no models" on gRPC (not REST's default 100)


def test_rest_and_grpc_answers_are_identical(client, stub, torchserve):
    body = json.dumps({"text": TEXT, "options": {"offsets": "utf16"}}, ensure_ascii=False).encode()
    rest = requests.post(
        f"{torchserve.rest_url}/predictions/{torchserve.model_name}",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    grpc_reply = stub.Predictions(
        inference_pb2.PredictionsRequest(model_name=torchserve.model_name, input={"data": body}), timeout=60
    )
    assert rest.status_code == 200
    assert rest.content == grpc_reply.prediction  # byte for byte
    with RestClient(torchserve.rest_url, model=torchserve.model_name, timeout=60) as rest_client:
        assert rest_client.predict(TEXT) == client.predict(TEXT)
        assert rest_client.predict_batch([TEXT, SENTENCES[1]]) == client.predict_batch([TEXT, SENTENCES[1]])
        error = requests.post(f"{torchserve.rest_url}/predictions/{torchserve.model_name}", data=b"\xff", timeout=60)
        assert error.status_code == 400
        assert error.json() == json.loads(
            client._inference.Predictions(
                inference_pb2.PredictionsRequest(model_name=torchserve.model_name, input={"data": b"\xff"}), timeout=60
            ).prediction
        )


def test_hf_format_over_grpc_is_the_rest_answer(client, stub, torchserve):
    """format: hf (a Hugging Face pipeline's entity list) is the same bytes over gRPC as over REST."""
    body = json.dumps({"texts": [TEXT, SENTENCES[1]], "options": {"format": "hf"}}, ensure_ascii=False).encode()
    rest = requests.post(f"{torchserve.rest_url}/predictions/{torchserve.model_name}", data=body, timeout=60,
                         headers={"Content-Type": "application/json"})  # fmt: skip
    grpc_reply = stub.Predictions(
        inference_pb2.PredictionsRequest(model_name=torchserve.model_name, input={"data": body}), timeout=60
    )
    assert rest.status_code == 200 and rest.content == grpc_reply.prediction
    lists = rest.json()
    assert len(lists) == 2 and all(set(e) == {"entity_group", "score", "word", "start", "end"} for e in lists[0])
    assert [(e["word"], e["entity_group"]) for e in lists[0]] == [
        (e.text, e.type) for e in client.predict(TEXT).entities
    ]
    assert client.predict(TEXT, format="hf").entities == client.predict(TEXT).entities  # the client reads both


def test_cli_over_grpc_and_rest(torchserve, capsys):
    assert ja_ner_cli.main(["--grpc", "--target", torchserve.grpc_target, "--json", TEXT]) == 0
    over_grpc = json.loads(capsys.readouterr().out)
    assert ja_ner_cli.main(["--url", torchserve.rest_url, "--json", TEXT]) == 0
    assert json.loads(capsys.readouterr().out) == over_grpc
    assert ja_ner_cli.main(["--grpc", "--stream", "--target", torchserve.grpc_target, LONG_TEXT]) == 0
    out = capsys.readouterr().out
    assert out.count("# window") >= 2 and "entities" in out.splitlines()[-1]


def test_cli_many_texts_in_client_batches_over_rest_and_grpc(torchserve, tmp_path, capsys):
    source = tmp_path / "texts.jsonl"
    lines = [{"id": i, "text": t} for i, t in enumerate([TEXT, *SENTENCES[:4]])] + [
        {"id": "big", "text": "あ" * 100_001}
    ]
    source.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    rest_args = ["--jsonl", "--file", str(source), "--batch-size", "4", "--url", torchserve.rest_url, "--no-progress"]
    assert ja_ner_cli.main(rest_args) == 1  # the oversized text fails its own line only
    over_rest = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in over_rest] == [0, 1, 2, 3, 4, "big"]
    assert over_rest[-1]["error"]["type"] == "InputTooLarge" and "entities" not in over_rest[-1]
    assert all("entities" in r for r in over_rest[:-1])
    grpc_args = ["--grpc", "--target", torchserve.grpc_target, "--format", "hf", "--jsonl", "--file", str(source)]
    assert ja_ner_cli.main([*grpc_args, "--no-progress"]) == 1
    over_grpc = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for native, hf in zip(over_rest[:-1], over_grpc[:-1], strict=True):
        assert [(e["text"], e["type"], e["start"]) for e in native["entities"]] == [
            (e["word"], e["entity_group"], e["start"]) for e in hf["entities"]
        ]
