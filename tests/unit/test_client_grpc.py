"""The gRPC transport against an in-process gRPC server speaking our proto (no TorchServe).

The server records what the client sent (input keys, options, metadata, deadline) and answers
scripted bodies; UNAVAILABLE is scripted only to pin the retry policy.
"""

from __future__ import annotations

import json
from concurrent import futures

import grpc
import pytest

from ja_ner.client.grpc import GrpcClient, error_from_rpc
from ja_ner.client.results import NerClientError, RetryPolicy, ServerUnreachable
from ja_ner.proto_gen import inference_pb2, inference_pb2_grpc, management_pb2, management_pb2_grpc

TEXT = "鈴木は熊本県に住む"
ENTITIES = [
    {"type": "PER", "text": "鈴木", "start": 0, "end": 2, "score": 0.97},
    {"type": "LOC", "text": "熊本県", "start": 3, "end": 6, "score": 0.91},
]
ANSWER = {"model": "ja_ner", "model_version": "1.0", "entities": ENTITIES, "truncated": False}


class Scripted(inference_pb2_grpc.InferenceAPIsServiceServicer, management_pb2_grpc.ManagementAPIsServiceServicer):
    def __init__(self) -> None:
        self.requests: list[inference_pb2.PredictionsRequest] = []
        self.metadata: list[dict[str, str]] = []
        self.deadlines: list[float | None] = []
        self.answers: list[object] = []  # bytes body, or a grpc.StatusCode to abort with
        self.stream_answers: list[bytes] = []

    def _record(self, request, context) -> None:
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))
        self.deadlines.append(context.time_remaining())

    def _next(self, context) -> bytes:
        answer = self.answers.pop(0) if self.answers else json.dumps(ANSWER).encode()
        if isinstance(answer, grpc.StatusCode):
            context.abort(answer, f"scripted {answer.name}")
        return answer

    def Ping(self, request, context):
        self._record(request, context)
        return inference_pb2.TorchServeHealthResponse(health=json.dumps({"status": "Healthy"}))

    def Predictions(self, request, context):
        self._record(request, context)
        return inference_pb2.PredictionResponse(prediction=self._next(context))

    def StreamPredictions(self, request, context):
        self._record(request, context)
        for body in self.stream_answers:
            yield inference_pb2.PredictionResponse(prediction=body)

    def ListModels(self, request, context):
        self._record(request, context)
        models = [{"modelName": f"m{i}", "modelUrl": f"m{i}.mar"} for i in range(request.limit)]
        return management_pb2.ManagementResponse(msg=json.dumps({"models": models}))

    def DescribeModel(self, request, context):
        self._record(request, context)
        return management_pb2.ManagementResponse(msg=json.dumps([{"modelName": request.model_name}]))


@pytest.fixture
def server():
    scripted = Scripted()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    inference_pb2_grpc.add_InferenceAPIsServiceServicer_to_server(scripted, srv)
    management_pb2_grpc.add_ManagementAPIsServiceServicer_to_server(scripted, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    scripted.target = f"127.0.0.1:{port}"
    yield scripted
    srv.stop(grace=None)


def client(server, **kwargs) -> GrpcClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=1))
    return GrpcClient(server.target, management_target=server.target, **kwargs)


def test_predict_sends_text_options_model_token_and_deadline(server):
    with client(server, token="sekret", model_version="1.0", timeout=7.0) as c:
        p = c.predict(TEXT, aggregation="max", offsets="utf16")
    assert [e.text for e in p.entities] == ["鈴木", "熊本県"]
    request = server.requests[0]
    assert (request.model_name, request.model_version) == ("ja_ner", "1.0")
    assert set(request.input) == {"data", "options"}
    assert json.loads(request.input["data"]) == {"text": TEXT}
    assert json.loads(request.input["options"]) == {"aggregation": "max", "offsets": "utf16"}
    assert server.metadata[0]["authorization"] == "Bearer sekret"
    # time_remaining() is read on the server's clock after the call arrived: a few ms of slack either way
    assert 6.0 < server.deadlines[0] <= 7.1


def test_no_token_no_options_sends_only_data(server):
    with client(server) as c:
        c.predict("{not json but text}")
    assert set(server.requests[0].input) == {"data"}
    assert json.loads(server.requests[0].input["data"]) == {"text": "{not json but text}"}
    assert "authorization" not in server.metadata[0]


def test_error_json_in_an_ok_response_raises_with_its_code(server):
    server.answers.append(json.dumps({"code": 400, "type": "InvalidInput", "message": "bad option"}).encode())
    with client(server) as c, pytest.raises(NerClientError) as info:
        c.predict(TEXT, aggregation="nope")
    assert (info.value.code, info.value.type, info.value.message) == (400, "InvalidInput", "bad option")


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 413),
        (grpc.StatusCode.INTERNAL, 500),
    ],
)
def test_failed_call_maps_grpc_status_to_http_like_code(server, status, code):
    server.answers.append(status)
    with client(server) as c, pytest.raises(NerClientError) as info:
        c.predict(TEXT)
    assert (info.value.code, info.value.type) == (code, status.name)
    assert "scripted" in info.value.message


def test_batch_sends_texts_as_json_body(server):
    server.answers.append(json.dumps({"model": "ja_ner", "model_version": "1.0", "results": [ANSWER, ANSWER]}).encode())
    with client(server) as c:
        results = c.predict_batch(["a", "b"], include_tokens=False)
    assert len(results) == 2
    assert json.loads(server.requests[0].input["data"]) == {"texts": ["a", "b"]}
    assert json.loads(server.requests[0].input["options"]) == {"include_tokens": False}


def test_unavailable_is_retried_with_backoff_then_succeeds(server):
    server.answers += [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.05, multiplier=2.0, jitter=0.0)
    with client(server, retry=policy, sleep=slept.append) as c:
        assert c.predict(TEXT).entities
    assert slept == pytest.approx([0.05, 0.1])
    assert len(server.requests) == 3


def test_unavailable_after_last_attempt_raises_503(server):
    server.answers += [grpc.StatusCode.UNAVAILABLE] * 2
    with (
        client(server, retry=RetryPolicy(max_attempts=2, jitter=0.0), sleep=lambda s: None) as c,
        pytest.raises(NerClientError) as info,
    ):
        c.predict(TEXT)
    assert (info.value.code, info.value.type) == (503, "UNAVAILABLE")


def test_other_errors_are_not_retried(server):
    server.answers.append(grpc.StatusCode.INVALID_ARGUMENT)
    with (
        client(server, retry=RetryPolicy(max_attempts=5), sleep=lambda s: pytest.fail("slept")) as c,
        pytest.raises(NerClientError),
    ):
        c.predict(TEXT)
    assert len(server.requests) == 1


def test_stream_marks_request_and_yields_partials_then_final(server):
    partial = [{**ANSWER, "entities": [e], "partial": True, "window": i} for i, e in enumerate(ENTITIES)]
    server.stream_answers = [json.dumps(m).encode() for m in [*partial, ANSWER]]
    with client(server) as c:
        messages = list(c.stream(TEXT))
    assert [m.partial for m in messages] == [True, True, False]
    assert [m.window for m in messages[:2]] == [0, 1]
    assert messages[-1].entities == tuple(e for m in messages[:2] for e in m.entities)
    assert server.requests[0].input["stream"] == b"true"


def test_stream_from_a_server_that_does_not_stream_is_one_final_message(server):
    server.stream_answers = [json.dumps(ANSWER).encode()]
    with client(server) as c:
        assert [m.partial for m in c.stream(TEXT)] == [False]


def test_stream_error_message_raises(server):
    server.stream_answers = [json.dumps({"code": 413, "type": "InputTooLarge", "message": "too long"}).encode()]
    with client(server) as c, pytest.raises(NerClientError) as info:
        list(c.stream(TEXT))
    assert info.value.code == 413


def test_stream_without_final_message_is_a_bad_response(server):
    server.stream_answers = [json.dumps({**ANSWER, "partial": True, "window": 0}).encode()]
    with client(server) as c, pytest.raises(NerClientError, match="before its final message"):
        list(c.stream(TEXT))


def test_ping_and_management(server):
    with client(server, management_token="mkey") as c:
        assert c.ping()
        assert len(c.list_models(limit=2)["models"]) == 2
        assert c.describe_model() == [{"modelName": "ja_ner"}]
    assert server.requests[1].limit == 2
    assert server.metadata[1]["authorization"] == "Bearer mkey"


def test_error_from_rpc_on_an_unknown_status():
    class Odd(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.DATA_LOSS

        def details(self):
            return ""

    error = error_from_rpc(Odd())
    assert (error.code, error.type, error.message) == (500, "DATA_LOSS", "DATA_LOSS")


def test_nothing_listening_is_unreachable_not_a_503():
    """Regression (issue 15): a refused connection was reported as 503 UNAVAILABLE."""
    with (
        GrpcClient("127.0.0.1:9", timeout=5, retry=RetryPolicy(max_attempts=1)) as client,
        pytest.raises(ServerUnreachable) as info,
    ):
        client.ping()
    assert info.value.code == 0 and "127.0.0.1:9 (Connection refused)" in str(info.value)
    assert "make serve" in str(info.value)
