"""schemathesis hooks for the contract runs of docs/openapi.yaml (SCHEMATHESIS_HOOKS=tests.contract_hooks).

Used by tests/integration/test_openapi.py and ``make fuzz``.
"""

from __future__ import annotations

from typing import Any

import schemathesis

# TorchServe's Java frontend answers a multipart field whose name it reads as empty (empty, or
# only control characters and spaces) with a 500 before any handler runs (Netty's
# HttpPostRequestDecoder: "empty name"). Not ours to fix; docs/openapi.yaml records it. Only
# this exact answer is ignored: every other 5xx still fails the run.
TORCHSERVE_FORM_DECODER_500 = (b'"type": "ErrorDataDecoderException"', b"empty name")


def _not_utf8(body: Any) -> bool:
    if not isinstance(body, (bytes, bytearray)):
        return False
    try:
        bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _invalid_utf8_refused(case: Any, response: Any) -> bool:
    """Raw bytes are ``format: binary`` (what generators need to send bytes), but the handler reads
    them as UTF-8 text: bytes that are not UTF-8 get the documented 400, which is not a violation."""
    return (
        case.media_type == "application/octet-stream"
        and _not_utf8(response.request.body)  # the bytes as sent
        and response.status_code == 400
        and b"body is not valid UTF-8" in response.content
    )


def _torchserve_own_answer(case: Any, response: Any) -> bool:
    """TorchServe's documented answers that are not JSON or not 4xx (the frontend, not the handler).

    - a form field whose name it reads as empty: 500 (above);
    - a body over ``max_request_size`` (8 MiB): 413 with an empty body and no content type.
    """
    form_decoder = (
        case.media_type == "multipart/form-data"
        and response.status_code == 500
        and all(part in response.content for part in TORCHSERVE_FORM_DECODER_500)
    )
    too_large = response.status_code == 413 and not response.content
    return form_decoder or too_large


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Drop the failures that are documented answers (TorchServe's own, or bytes that are not UTF-8)."""
    return not (_torchserve_own_answer(case, response) or _invalid_utf8_refused(case, response))
