"""handler/streaming.py against TorchServe 0.12's own worker-side encoder (no frontend).

The frames the worker would send to the frontend are captured on a socket pair and decoded, so
the test pins what the frontend's GRPCJob/BatchAggregator read: which request ids get a
message, and the ``ts_stream_next`` header of each (docs/grpc.md explains why it matters).
"""

from __future__ import annotations

import socket
import struct

import pytest

pytest.importorskip("ts")
from ts.context import Context, RequestProcessor  # noqa: E402
from ts.protocol.otf_message_handler import create_predict_response  # noqa: E402

from handler import streaming  # noqa: E402

# What TorchServe 0.12's Service.retrieve_data_for_inference builds per request: one dict entry
# per input key / parameter, plus string HTTP headers for REST.
GRPC_PLAIN = {"data": {"content-type": None}}
GRPC_STREAM = {"data": {"content-type": None}, "stream": {"content-type": None}}
REST = {"body": {"content-type": "application/json"}, "Host": "127.0.0.1:8080", "url_path": "", "explain": "False"}
REST_FORM_STREAM = {"stream": {"content-type": None}, "Content-Type": "multipart/form-data", "url_path": ""}
STREAM2 = {"data": {"content-type": None}, "ts_request_sequence_id": "seq-1", "ts_request_sequence_start": "true"}


def make_context(headers: list[dict]) -> tuple[Context, socket.socket]:
    context = Context("ja_ner", "/tmp", {}, len(headers), None, "0.12.0")
    context.request_ids = {i: f"req-{i}" for i in range(len(headers))}
    context.request_processor = [RequestProcessor(h) for h in headers]
    ours, theirs = socket.socketpair()
    context.cl_socket = ours
    return context, theirs


def decode(frame: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    """(request id, response headers, body) of every prediction in one worker->frontend frame."""
    pos = 0

    def take_int() -> int:
        nonlocal pos
        (value,) = struct.unpack_from("!i", frame, pos)
        pos += 4
        return value

    def take_bytes() -> bytes:
        nonlocal pos
        n = take_int()
        out = frame[pos : pos + n]
        pos += n
        return out

    take_int()  # batch code
    take_bytes()  # message
    out = []
    while True:
        n = take_int()
        if n == -1:
            return out
        request_id = frame[pos : pos + n].decode()
        pos += n
        take_bytes()  # content type
        take_int()  # status code
        take_bytes()  # phrase
        headers = {}
        for _ in range(take_int()):
            key = take_bytes().decode()
            headers[key] = take_bytes().decode()
        out.append((request_id, headers, take_bytes()))


def receive(sock: socket.socket) -> bytes:
    sock.settimeout(2)
    return sock.recv(1 << 16)


def test_request_kinds_are_told_apart_from_request_headers():
    context, _ = make_context([GRPC_PLAIN, GRPC_STREAM, REST, REST_FORM_STREAM, STREAM2])
    assert [streaming.is_grpc_request(context, i) for i in range(5)] == [True, True, False, False, True]
    assert [streaming.is_stream_request(context, i) for i in range(5)] == [False, True, False, False, False]


def test_partial_goes_to_its_request_only_and_keeps_the_stream_open():
    context, peer = make_context([GRPC_PLAIN, GRPC_STREAM])
    streaming.send_partial(context, 1, b'{"partial": true, "window": 0}')
    assert decode(receive(peer)) == [("req-1", {"ts_stream_next": "true"}, b'{"partial": true, "window": 0}')]


def test_final_frame_closes_streamed_and_plain_grpc_requests_but_leaves_rest_alone():
    context, peer = make_context([GRPC_PLAIN, GRPC_STREAM, REST])
    streaming.send_partial(context, 1, b"p0")
    receive(peer)
    for i in range(3):
        streaming.mark_final(context, i)
    frame = create_predict_response([b"a", b"b", b"c"], context.request_ids, "Prediction success", 200, context)
    decoded = decode(bytes(frame))
    assert [(rid, h.get("ts_stream_next"), body) for rid, h, body in decoded] == [
        ("req-0", "false", b"a"),  # plain request over StreamPredictions gets exactly one message
        ("req-1", "false", b"b"),  # last message of a real stream
        ("req-2", None, b"c"),  # REST: a ts_stream_next header would turn it into a chunked reply
    ]
