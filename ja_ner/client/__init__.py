"""Python client of the ja-ner service: one result type, two transports (REST and gRPC).

    from ja_ner.client import connect
    with connect("127.0.0.1:7070", grpc=True) as client:
        for entity in client.predict("鈴木は熊本県に住む").entities:
            print(entity.type, entity.text, entity.start, entity.end)

The gRPC transport needs the generated stubs (``make protos``); it is imported on first use so
the REST client works without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ja_ner.client.rest import RestClient
from ja_ner.client.results import NerClient, NerClientError, Prediction, RetryPolicy, ServerUnreachable
from ja_ner.types import Entity

if TYPE_CHECKING:
    from ja_ner.client.grpc import GrpcClient

__all__ = [
    "Entity",
    "GrpcClient",
    "NerClient",
    "NerClientError",
    "Prediction",
    "RestClient",
    "RetryPolicy",
    "ServerUnreachable",
    "connect",
]


def connect(address: str | None = None, *, grpc: bool = False, **kwargs: Any) -> NerClient:
    """A client for ``address``: a base URL for REST, ``host:port`` for gRPC (defaults: local ports).

    Keyword arguments go to ``RestClient`` or ``GrpcClient``.
    """
    if grpc:
        from ja_ner.client.grpc import GrpcClient

        return GrpcClient(address or "127.0.0.1:7070", **kwargs)
    return RestClient(address or "http://127.0.0.1:8080", **kwargs)


def __getattr__(name: str) -> Any:
    if name == "GrpcClient":
        from ja_ner.client.grpc import GrpcClient

        return GrpcClient
    raise AttributeError(name)
