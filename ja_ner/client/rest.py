"""REST transport of the client (TorchServe inference API, default port 8080)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from ja_ner.client.results import (
    NerClient,
    NerClientError,
    Prediction,
    RetryPolicy,
    ServerUnreachable,
    batch_from_json,
    call_with_retries,
    decode_json,
    error_from_json,
    prediction_from_json,
    request_json,
)

log = logging.getLogger(__name__)

_RETRY_STATUS = 503


def _reason(exc: requests.ConnectionError) -> str:
    """A few words for a connection failure: the innermost OS error, not urllib3's whole chain."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop()
        if err is None or any(err is s for s in seen):
            continue
        seen.append(err)
        todo += [err.__cause__, err.__context__, getattr(err, "reason", None)]
        todo += [a for a in err.args if isinstance(a, BaseException)]
    inner = [e for e in seen if type(e).__module__ in ("builtins", "socket") and isinstance(e, OSError)]
    if not inner:
        return type(exc).__name__
    return inner[-1].strerror or str(inner[-1])


class _Unavailable(Exception):
    """A 503 answer, kept apart so it can be retried and then reported as NerClientError."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class RestClient(NerClient):
    """Client for ``POST {url}/predictions/{model}``.

    Args:
        url: base URL of the inference API, e.g. ``http://127.0.0.1:8080``.
        model: registered model name.
        model_version: a version, or None for the default one.
        token: inference key (``authorization: Bearer``), when token authorisation is on.
        tls_ca: PEM file to verify an https server with (None: the system store).
        timeout: seconds per attempt (connect and read).
        retry: backoff for connection failures and 503 answers.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        model: str = "ja_ner",
        model_version: str | None = None,
        token: str | None = None,
        tls_ca: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.model_version = model_version
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._session = requests.Session()
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        # Passed per request: a Session-level verify loses to REQUESTS_CA_BUNDLE in the environment.
        self._verify: str | bool = tls_ca or True

    def _path(self) -> str:
        version = f"/{self.model_version}" if self.model_version else ""
        return f"{self.url}/predictions/{self.model}{version}"

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        def attempt() -> requests.Response:
            response = self._session.request(method, url, timeout=self.timeout, verify=self._verify, **kwargs)
            if response.status_code == _RETRY_STATUS:
                raise _Unavailable(response)
            return response

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, (_Unavailable, requests.ConnectionError))

        def on_retry(exc: BaseException, delay: float) -> None:
            if isinstance(exc, requests.ConnectionError):  # one line each, not urllib3's whole chain
                log.info("%s %s: %s; retrying in %.2f s", method, url, _reason(exc), delay)
            else:
                log.warning("%s %s: 503 %s; retrying in %.2f s", method, url, exc, delay)

        try:
            return call_with_retries(attempt, retryable, self.retry, on_retry=on_retry)
        except _Unavailable as exc:
            return exc.response
        except requests.Timeout as exc:
            raise NerClientError(504, "Timeout", f"{method} {url}: no answer in {self.timeout} s") from exc
        except requests.ConnectionError as exc:
            raise ServerUnreachable(self.url, _reason(exc)) from None

    @staticmethod
    def _answer(response: requests.Response) -> Any:
        if response.status_code >= 400:
            try:
                error = error_from_json(response.json())
            except ValueError:
                error = None
            raise error or NerClientError(response.status_code, response.reason or "HTTPError", response.text[:500])
        return decode_json(response.content)

    def predict(self, text: str, **options: Any) -> Prediction:
        response = self._send("POST", self._path(), json=request_json(text, options=options))
        return prediction_from_json(self._answer(response))

    def predict_batch(self, texts: Sequence[str], **options: Any) -> list[Prediction]:
        response = self._send("POST", self._path(), json=request_json(texts=texts, options=options))
        return batch_from_json(self._answer(response), len(texts))

    def stream(self, text: str, **options: Any) -> Iterator[Prediction]:
        """REST has no partial messages here: yields the one final prediction."""
        yield self.predict(text, **options)

    def ping(self) -> bool:
        response = self._send("GET", f"{self.url}/ping")
        if response.status_code >= 400 and response.status_code != 500:
            self._answer(response)
        body = decode_json(response.content)
        return isinstance(body, dict) and body.get("status") == "Healthy"

    def close(self) -> None:
        self._session.close()
