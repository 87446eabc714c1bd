"""Token authorisation and TLS on gRPC, against one extra TorchServe started here (issue 4).

Both settings share one server start to keep the suite fast: TLS (``enable_grpc_ssl`` with a
self-signed certificate made by the ``openssl`` CLI inside the test) and token authorisation on
(keys in the server's key_file.json).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from handler.server import free_port, start_on_free_ports, stop
from ja_ner.client import NerClientError, RetryPolicy
from ja_ner.client import cli as ja_ner_cli
from ja_ner.client.grpc import GrpcClient

pytestmark = pytest.mark.integration

TEXT = "鈴木一郎は熊本県の阿蘇山に登った。"
NO_RETRY = RetryPolicy(max_attempts=1)


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost and its PKCS#8 key (what grpc-java reads)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def secure(torchserve, tmp_path_factory):
    """TorchServe with TLS on gRPC and token authorisation on, serving the shared .mar."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not found")
    root = tmp_path_factory.mktemp("grpc-secure")
    cert, key = self_signed(root, "server")
    overrides = {
        "load_models": f"{torchserve.model_name}={torchserve.model_name}.mar",
        "disable_token_authorization": "false",
        "enable_grpc_ssl": "true",
        "certificate_file": str(cert),
        "private_key_file": str(key),
        # worker sockets are /tmp/.ts.sock.<port> whatever TMPDIR says: keep clear of the shared server's
        "initial_worker_port": str(free_port()),
    }
    server = start_on_free_ports(overrides, torchserve.mar_dir, root / "work")
    try:
        yield server, cert, root
    finally:
        stop(server)


def grpc_client(server, cert, **kwargs) -> GrpcClient:
    kwargs.setdefault("retry", NO_RETRY)
    return GrpcClient(server.grpc_target, management_target=server.grpc_mgmt_target, tls_ca=str(cert), **kwargs)


def test_token_is_required_and_accepted(secure):
    server, cert, _ = secure
    for token in (None, "not-the-key"):
        with grpc_client(server, cert, token=token) as c, pytest.raises(NerClientError) as info:
            c.predict(TEXT)
        assert (info.value.code, info.value.type) == (403, "PERMISSION_DENIED")
    with grpc_client(server, cert, token=server.token("inference")) as c:
        assert c.ping()
        assert c.predict(TEXT).model
        assert list(c.stream(TEXT))[-1].partial is False


def test_management_needs_the_management_key(secure):
    server, cert, _ = secure
    with (
        grpc_client(server, cert, management_token=server.token("inference")) as c,
        pytest.raises(NerClientError) as info,
    ):
        c.list_models(limit=1)
    assert info.value.code == 403
    with grpc_client(server, cert, management_token=server.token("management")) as c:
        assert len(c.list_models(limit=1)["models"]) == 1


def test_tls_is_required_and_the_certificate_checked(secure):
    server, cert, root = secure
    token = server.token("inference")
    with (
        GrpcClient(server.grpc_target, token=token, retry=NO_RETRY, timeout=10) as plain,
        pytest.raises(NerClientError) as info,
    ):
        plain.predict(TEXT)  # plaintext to a TLS port
    assert info.value.code == 503
    other, _ = self_signed(root, "other")
    with grpc_client(server, other, token=token, timeout=10) as wrong_ca, pytest.raises(NerClientError) as info:
        wrong_ca.predict(TEXT)
    assert (info.value.code, info.value.type) == (503, "UNAVAILABLE")


def test_cli_with_tls_and_token(secure, capsys):
    server, cert, _ = secure
    argv = ["--grpc", "--target", server.grpc_target, "--tls-ca", str(cert), "--token", server.token("inference")]
    assert ja_ner_cli.main([*argv, TEXT]) == 0
    assert capsys.readouterr().out.startswith("entity")
    assert ja_ner_cli.main(["--grpc", "--target", server.grpc_target, "--tls-ca", str(cert), TEXT]) == 1
