"""The REST transport against a scripted local HTTP server (no TorchServe)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ja_ner.client import RestClient, connect
from ja_ner.client.results import NerClientError, RetryPolicy, ServerUnreachable

ANSWER = {
    "model": "ja_ner",
    "model_version": "1.0",
    "entities": [{"type": "PER", "text": "鈴木", "start": 0, "end": 2, "score": 0.97}],
    "truncated": False,
}


class Recorder(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        status, payload = self.server.script.pop(0) if self.server.script else (200, ANSWER)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    srv.seen, srv.script = [], []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def test_predict_posts_json_with_options_and_bearer_token(server):
    with RestClient(server.url, token="sekret", model_version="1.0") as client:
        p = client.predict("鈴木は熊本県に住む", offsets="utf16")
    assert p.entities[0].text == "鈴木"
    method, path, headers, body = server.seen[0]
    assert (method, path) == ("POST", "/predictions/ja_ner/1.0")
    assert headers["Authorization"] == "Bearer sekret"
    assert json.loads(body) == {"text": "鈴木は熊本県に住む", "options": {"offsets": "utf16"}}


def test_http_error_with_error_json_raises_it(server):
    server.script.append((413, {"code": 413, "type": "InputTooLarge", "message": "too long"}))
    with RestClient(server.url) as client, pytest.raises(NerClientError) as info:
        client.predict("x")
    assert (info.value.code, info.value.type, info.value.message) == (413, "InputTooLarge", "too long")


def test_http_error_without_json_keeps_status_and_text(server):
    server.script.append((401, b"Token Authorization failed"))
    with RestClient(server.url) as client, pytest.raises(NerClientError) as info:
        client.predict("x")
    assert info.value.code == 401 and "Token" in info.value.message


def test_503_is_retried_then_answered(server):
    server.script += [(503, {"code": 503, "type": "ServiceUnavailableException", "message": "busy"})] * 2
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, jitter=0.0)
    with RestClient(server.url, retry=policy) as client:
        assert client.predict("x").entities
    assert len(server.seen) == 3


def test_503_after_last_attempt_is_reported(server):
    server.script += [(503, {"code": 503, "type": "ServiceUnavailableException", "message": "busy"})] * 2
    with (
        RestClient(server.url, retry=RetryPolicy(max_attempts=2, initial_backoff=0.01)) as client,
        pytest.raises(NerClientError) as info,
    ):
        client.predict("x")
    assert info.value.type == "ServiceUnavailableException"


def test_batch_and_stream_fallback_and_ping(server):
    server.script.append((200, {"model": "ja_ner", "model_version": "1.0", "results": [ANSWER, ANSWER]}))
    server.script.append((200, ANSWER))
    server.script.append((200, {"status": "Healthy"}))
    with connect(server.url) as client:
        assert len(client.predict_batch(["a", "b"])) == 2
        assert [m.partial for m in client.stream("a")] == [False]
        assert client.ping()
    assert json.loads(server.seen[0][3]) == {"texts": ["a", "b"]}
    assert server.seen[2][:2] == ("GET", "/ping")


def test_connection_refused_is_one_plain_unreachable_error_not_a_503(caplog):
    """Regression (issue 15): a refused connection was reported as HTTP 503 after three WARNING
    lines, each carrying urllib3's whole exception chain."""
    caplog.set_level("INFO")
    with (
        RestClient("http://127.0.0.1:9", retry=RetryPolicy(max_attempts=3, initial_backoff=0.01)) as client,
        pytest.raises(ServerUnreachable) as info,
    ):
        client.ping()
    assert info.value.code != 503 and info.value.type == "Unreachable"
    assert str(info.value) == (
        "cannot reach a ja-ner server at http://127.0.0.1:9 (Connection refused); start one with `make serve`"
    )
    assert [r.levelname for r in caplog.records] == ["INFO", "INFO"]  # the two retries, quietly
    assert all("HTTPConnectionPool" not in r.getMessage() for r in caplog.records)
