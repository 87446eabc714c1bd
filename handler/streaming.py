"""gRPC ``StreamPredictions`` support for the TorchServe handler: thin wrappers over the ``ts`` API.

TorchServe 0.12 does not tell a handler which rpc a request came by: the frontend sends every
inference batch to the worker as the same ``'I'`` message, and the gRPC inference service adds
no request headers for ``Predictions``/``StreamPredictions`` (docs/grpc.md has the source
references). So the protocol of this bundle is:

* a client that wants one message per window calls ``StreamPredictions`` AND puts the key
  ``stream`` into the ``input`` map (its value is ignored; ``ja_ner.client`` sends ``true``);
* every gRPC request gets ``ts_stream_next=false`` on its final response (``mark_final``), so a
  plain request over ``StreamPredictions`` (TorchServe's own client) gets exactly one message,
  the full answer, instead of the frontend's NullPointerException and a worker restart.

The handler, for each request index ``i`` of a batch::

    if is_stream_request(context, i):
        for part in partial_answers:
            send_partial(context, i, part)
    ...
    mark_final(context, i)   # before returning the batch; a no-op for REST requests

Never send partial messages for a request that did not ask for them: on the unary
``Predictions`` rpc the first partial would complete the call and the second would make the
frontend drop the worker.
"""

from __future__ import annotations

import logging

from ts.handler_utils.utils import send_intermediate_predict_response

log = logging.getLogger(__name__)

# Input-map key by which a gRPC client asks for partial messages (value ignored).
STREAM_KEY = "stream"
# Response header the frontend reads to decide whether more messages follow (RequestInput.TS_STREAM_NEXT).
_STREAM_NEXT = "ts_stream_next"
# Request headers TorchServe itself adds to gRPC requests (StreamPredictions2 sequences only).
_TS_SEQUENCE_PREFIX = "ts_request_sequence"


def _request_headers(context, index: int) -> dict:
    return context.get_all_request_header(index) or {}


def is_grpc_request(context, index: int) -> bool:
    """Whether request ``index`` of the batch came over gRPC rather than REST.

    REST requests carry their HTTP headers (``Host``, ``Content-Length``, TorchServe's
    ``url_path``/``explain``) as string-valued request headers; a gRPC request has only one
    dict-valued entry per ``input`` key (the parameter's content type), plus string
    ``ts_request_sequence_*`` entries on ``StreamPredictions2``.
    """
    return not any(
        isinstance(value, str) and not str(key).startswith(_TS_SEQUENCE_PREFIX)
        for key, value in _request_headers(context, index).items()
    )


def is_stream_request(context, index: int) -> bool:
    """Whether request ``index`` asked for partial messages (gRPC with a ``stream`` input key).

    Only ``ja_ner.client``'s ``stream()`` (and documented callers of ``StreamPredictions``) set
    the key; REST requests are never streamed, whatever their form fields.
    """
    headers = _request_headers(context, index)
    return STREAM_KEY in headers and isinstance(headers[STREAM_KEY], dict) and is_grpc_request(context, index)


def send_partial(context, index: int, body: bytes) -> None:
    """Send one intermediate message for request ``index`` right now (TorchServe 0.12 API).

    ``body`` is the complete message (UTF-8 JSON). Only this request receives it: the request-id
    map passed to TorchServe holds ``index`` alone, and TorchServe marks that request's
    response ``ts_stream_next=true`` so the frontend keeps its stream open until the final
    return value of the handler arrives.
    """
    request_id = context.request_ids[index]
    send_intermediate_predict_response({index: body}, {index: request_id}, "Intermediate prediction", 200, context)
    log.debug("sent partial message of %d bytes for request %s", len(body), request_id)


def mark_final(context, index: int) -> None:
    """Mark the handler's return value for request ``index`` as the last message of its call.

    Call it for every request of the batch before returning. For gRPC requests it sets
    ``ts_stream_next=false``: harmless on ``Predictions``, and on ``StreamPredictions`` it is what
    lets the frontend close the stream (without it TorchServe 0.12 raises a
    NullPointerException in ``GRPCJob.response`` and restarts the worker). REST requests are
    left alone: on REST the header would turn the answer into a broken chunked response.
    """
    if is_grpc_request(context, index):
        context.set_response_header(index, _STREAM_NEXT, "false")
