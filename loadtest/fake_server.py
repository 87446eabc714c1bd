"""A stand-in NER server speaking the bundle's wire format (REST, gRPC, /metrics), for testing the
load test itself without a model: every katakana or Latin-capital run is an ``ORG`` entity.

    python -m loadtest.fake_server --rest-port 18080 --grpc-port 17070 --delay-ms 50

``--wrong-every N`` shifts the entities of every Nth answer by one character (a wrong answer
the checker must catch). It never stands in for TorchServe in figures.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ENTITY = re.compile(r"[ァ-ヺー]{2,}|[A-ZＡ-Ｚ][A-Za-zＡ-Ｚａ-ｚ]+")


class Fake:
    """The answer logic shared by both transports (thread-safe)."""

    def __init__(self, delay_ms: float, wrong_every: int) -> None:
        self.delay_s = delay_ms / 1000.0
        self.wrong_every = wrong_every
        self._lock = threading.Lock()
        self.answers = 0

    def answer(self, raw: bytes, json_body: bool | None) -> bytes:
        """The response body for one request (``json_body`` None: guess from a leading ``{``)."""
        time.sleep(self.delay_s)
        with self._lock:
            self.answers += 1
            wrong = self.wrong_every > 0 and self.answers % self.wrong_every == 0
        text = raw.decode("utf-8")
        if json_body or (json_body is None and text.lstrip().startswith("{")):
            obj = json.loads(text)
            if "texts" in obj:
                results = [{"entities": _entities(t, wrong), "truncated": False} for t in obj["texts"]]
                return _dumps({"model": "ja_ner", "model_version": "1.0", "results": results})
            text = obj["text"]
        return _dumps(
            {"model": "ja_ner", "model_version": "1.0", "entities": _entities(text, wrong), "truncated": False}
        )

    def metrics(self) -> bytes:
        lines = [
            "# TYPE ts_inference_requests_total counter",
            f'ts_inference_requests_total{{model_name="ja_ner",hostname="fake"}} {self.answers}',
            "# TYPE NerBatches counter",
            f'NerBatches{{ModelName="ja_ner",Level="Model",Hostname="fake"}} {self.answers}',
            "# TYPE NerBatchRequests counter",
            f'NerBatchRequests{{ModelName="ja_ner",Level="Model",Hostname="fake"}} {self.answers}',
        ]
        return ("\n".join(lines) + "\n").encode()


def _entities(text: str, wrong: bool) -> list[dict[str, Any]]:
    shift = 1 if wrong else 0
    return [
        {"type": "ORG", "text": m.group(), "start": m.start() + shift, "end": m.end() + shift, "score": 0.9}
        for m in _ENTITY.finditer(text)
        if m.end() + shift <= len(text)
    ]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _rest_handler(fake: Fake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are written separately

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/ping":
                self._send(200, b'{"status": "Healthy"}')
            elif self.path == "/metrics":
                self._send(200, fake.metrics(), "text/plain; version=0.0.4")
            else:
                self._send(404, b'{"code": 404, "type": "NotFound", "message": "no such path"}')

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.startswith("/predictions/"):
                self._send(404, b'{"code": 404, "type": "NotFound", "message": "no such path"}')
                return
            kind = self.headers.get("Content-Type", "")
            self._send(200, fake.answer(raw, True if "json" in kind else (False if kind.startswith("text/") else None)))

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients (Locust at shutdown) reset connections; nothing to report


def serve(rest_port: int, grpc_port: int, delay_ms: float = 0.0, wrong_every: int = 0) -> tuple[Any, Any]:
    """Start both transports on 127.0.0.1; returns (http server, grpc server), already serving."""
    import grpc

    from ja_ner.proto_gen import inference_pb2, inference_pb2_grpc

    fake = Fake(delay_ms, wrong_every)

    class Servicer(inference_pb2_grpc.InferenceAPIsServiceServicer):
        def Predictions(self, request: Any, context: Any) -> Any:  # noqa: N802
            return inference_pb2.PredictionResponse(prediction=fake.answer(request.input["data"], None))

    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    inference_pb2_grpc.add_InferenceAPIsServiceServicer_to_server(Servicer(), grpc_server)
    grpc_server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    grpc_server.start()
    http_server = _QuietServer(("127.0.0.1", rest_port), _rest_handler(fake))
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    return http_server, grpc_server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rest-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="sleep per request (a slow model)")
    parser.add_argument("--wrong-every", type=int, default=0, help="every Nth answer has shifted offsets")
    args = parser.parse_args(argv)
    http_server, grpc_server = serve(args.rest_port, args.grpc_port, args.delay_ms, args.wrong_every)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    http_server.shutdown()
    grpc_server.stop(0)


if __name__ == "__main__":
    main()
