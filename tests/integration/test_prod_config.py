"""The production configuration (config.prod.properties), started for real and probed (issue 7).

One TorchServe runs config.prod.properties unchanged except for free ports (hosts and schemes
stay), a model store holding the shared test .mar, and a self-signed certificate made here with
the openssl CLI. The checks: token authorisation on every API (REST and gRPC), TLS on REST
inference and both gRPC services, management/metrics unreachable on a non-loopback address,
model API off, key rotation, and no request text in any log.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
import pytest
import requests
from google.protobuf import empty_pb2

from handler.archive import REPO
from handler.server import Server, free_port, read_properties, stop, wait_ready
from handler.server import start as start_server
from ja_ner.proto_gen import inference_pb2, inference_pb2_grpc, management_pb2, management_pb2_grpc

pytestmark = pytest.mark.integration

PROD = REPO / "config.prod.properties"
TEXT = "鈴木は熊本県の阿蘇山に登った"
LOOPBACK = ("127.0.0.1", "localhost")


# -- the file itself (no server) ---------------------------------------------------------------


def test_prod_file_settings() -> None:
    props = read_properties(PROD)
    assert props["disable_token_authorization"] == "false"
    assert props["enable_model_api"] == "false"
    assert props["install_py_dep_per_model"] == "false"
    assert props["enable_envvars_config"] == "false"
    assert urlsplit(props["management_address"]).hostname in LOOPBACK
    assert urlsplit(props["metrics_address"]).hostname in LOOPBACK
    assert props["grpc_management_address"] in LOOPBACK
    assert urlsplit(props["inference_address"]).scheme == "https"
    assert props["enable_grpc_ssl"] == "true" and props["certificate_file"] and props["private_key_file"]
    assert all(p.startswith("file:///") for p in props["allowed_urls"].split(",")), "no remote model URLs"
    assert int(props["max_request_size"]) <= 16 * 1024 * 1024
    assert int(props["token_expiration_min"]) >= 60


# -- a running production server -----------------------------------------------------------------


def non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine that is not loopback (None if it has none)."""
    try:  # the source address of the default route; a UDP connect sends nothing
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))
            addr = sock.getsockname()[0]
            if not addr.startswith("127.") and addr != "0.0.0.0":
                return addr
    except OSError:
        pass
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in out.splitlines():
        addr = line.split()[3].split("/")[0]
        if not addr.startswith("127."):
            return addr
    return None


def self_signed(directory: Path, extra_ip: str | None) -> tuple[Path, Path]:
    """A self-signed certificate (localhost, 127.0.0.1, ``extra_ip``) and its PKCS#8 key."""
    cert, key = directory / "server.crt", directory / "server.key"
    san = "DNS:localhost,IP:127.0.0.1" + (f",IP:{extra_ip}" if extra_ip else "")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost", "-addext", f"subjectAltName={san}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _on_free_port(address: str) -> str:
    parts = urlsplit(address)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{free_port()}"))


@dataclass
class Prod:
    server: Server
    props: dict[str, str]
    cert: Path
    ip: str | None

    def port(self, key: str) -> int:
        return int(self.props[key]) if key.endswith("_port") else int(urlsplit(self.props[key]).port or 0)

    @property
    def rest(self) -> str:
        return f"https://127.0.0.1:{self.port('inference_address')}"

    @property
    def mgmt(self) -> str:
        return f"http://127.0.0.1:{self.port('management_address')}"

    @property
    def metrics(self) -> str:
        return f"http://127.0.0.1:{self.port('metrics_address')}"

    def key(self, kind: str) -> str:
        key = self.server.token(kind)
        assert key is not None, f"no {kind} key in {self.server.key_file}"
        return key

    def predict(self, token: str | None, body: bytes = TEXT.encode(), content_type: str = "text/plain"):
        headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {token}"} if token else {})}
        return requests.post(
            f"{self.rest}/predictions/ja_ner", data=body, headers=headers, verify=str(self.cert), timeout=60
        )

    def channel(self, port_key: str) -> grpc.Channel:
        creds = grpc.ssl_channel_credentials(root_certificates=self.cert.read_bytes())
        return grpc.secure_channel(
            f"127.0.0.1:{self.props[port_key]}", creds, options=[("grpc.ssl_target_name_override", "localhost")]
        )


def _wait_ready(prod: Prod, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        token = prod.server.token("management")  # None until TorchServe has written key_file.json
        if token is None:
            time.sleep(0.5)
            continue
        try:
            resp = requests.get(f"{prod.mgmt}/models/ja_ner", headers={"Authorization": f"Bearer {token}"}, timeout=5)
            if resp.status_code == 200 and any(w["status"] == "READY" for w in resp.json()[0]["workers"]):
                return
        except (OSError, KeyError, ValueError, requests.RequestException):
            pass
        time.sleep(0.5)
    log = prod.server.workdir / "logs" / "model_log.log"
    raise TimeoutError(f"prod server not ready\n{log.read_text()[-3000:] if log.exists() else ''}")


@pytest.fixture(scope="module")
def prod(torchserve: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prod]:
    """config.prod.properties on free ports, serving the shared test .mar."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not found: cannot make the TLS certificate")
    root = tmp_path_factory.mktemp("prod")
    ip = non_loopback_ipv4()
    cert, key = self_signed(root, ip)
    props = read_properties(PROD)
    overrides = {
        key_: _on_free_port(props[key_]) for key_ in ("inference_address", "management_address", "metrics_address")
    }
    overrides |= {
        "grpc_inference_port": str(free_port()),
        "grpc_management_port": str(free_port()),
        "certificate_file": str(cert),
        "private_key_file": str(key),
        "allowed_urls": f"file://{torchserve.mar_dir.resolve()}/.*",
        # worker sockets are /tmp/.ts.sock.<port> whatever TMPDIR says: keep clear of other servers
        "initial_worker_port": str(free_port()),
    }
    server = start_server(PROD, torchserve.mar_dir, root / "work", overrides, wait=False)
    prod = Prod(server, server.props, cert, ip)
    try:
        _wait_ready(prod)
        yield prod
    finally:
        stop(server)


def test_rest_inference_needs_the_inference_key(prod: Prod) -> None:
    for token in (None, "not-the-key", prod.key("management")):
        resp = prod.predict(token)
        # TorchServe answers a missing or wrong key with 400 (not 401) and this type:
        assert resp.status_code == 400 and resp.json()["type"] == "InvalidKeyException", (token, resp.text)
    ping = requests.get(f"{prod.rest}/ping", verify=str(prod.cert), timeout=10)
    assert (
        ping.status_code == 400 and ping.json()["type"] == "InvalidKeyException"
    )  # even /ping: probes must send the key (docs/operations.md)
    resp = prod.predict(prod.key("inference"))
    assert resp.status_code == 200 and resp.json()["model"] == "ja_ner", resp.text


def test_no_cross_origin_access(prod: Prod) -> None:
    """No cors_* property: no Access-Control-Allow-* header, whatever the origin (the demo page's included)."""
    headers = {"Authorization": f"Bearer {prod.key('inference')}", "Origin": "http://127.0.0.1:8090"}
    resp = requests.post(f"{prod.rest}/predictions/ja_ner", data=TEXT.encode(), headers=headers,
                         verify=str(prod.cert), timeout=60)  # fmt: skip
    assert resp.status_code == 200
    assert not [h for h in resp.headers if h.lower().startswith("access-control-")], dict(resp.headers)


def test_rest_inference_is_https_only(prod: Prod) -> None:
    try:
        resp = requests.get(f"http://127.0.0.1:{prod.port('inference_address')}/ping", timeout=5)
        plain = f"{resp.status_code} {resp.text[:100]!r}"
    except requests.RequestException as exc:
        plain = type(exc).__name__
    print(f"plain http on the https port: {plain}")
    assert not plain.startswith("200")
    with pytest.raises(requests.exceptions.SSLError):  # our self-signed certificate is not trusted by default
        requests.get(f"{prod.rest}/ping", timeout=5)


def test_management_needs_the_management_key(prod: Prod) -> None:
    for token in (None, "not-the-key", prod.key("inference")):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = requests.get(f"{prod.mgmt}/models", headers=headers, timeout=10)
        assert resp.status_code == 400 and resp.json()["type"] == "InvalidKeyException", (token, resp.text)
    resp = requests.get(
        f"{prod.mgmt}/models", headers={"Authorization": f"Bearer {prod.key('management')}"}, timeout=10
    )
    assert resp.status_code == 200 and resp.json()["models"][0]["modelName"] == "ja_ner"


def test_grpc_inference_needs_tls_and_the_inference_key(prod: Prod) -> None:
    request = inference_pb2.PredictionsRequest(model_name="ja_ner", input={"data": TEXT.encode()})
    with prod.channel("grpc_inference_port") as channel:
        stub = inference_pb2_grpc.InferenceAPIsServiceStub(channel)
        for token in (None, "not-the-key", prod.key("management")):
            metadata = (("authorization", f"Bearer {token}"),) if token else ()
            with pytest.raises(grpc.RpcError) as info:
                stub.Predictions(request, metadata=metadata, timeout=30)
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, token
        good = (("authorization", f"Bearer {prod.key('inference')}"),)
        assert json.loads(stub.Predictions(request, metadata=good, timeout=30).prediction)["model"] == "ja_ner"
        assert "Healthy" in stub.Ping(empty_pb2.Empty(), metadata=good, timeout=10).health
    with grpc.insecure_channel(f"127.0.0.1:{prod.props['grpc_inference_port']}") as plain:
        with pytest.raises(grpc.RpcError) as info:
            inference_pb2_grpc.InferenceAPIsServiceStub(plain).Predictions(request, metadata=good, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # plaintext is refused by the TLS listener


def test_grpc_management_needs_the_management_key(prod: Prod) -> None:
    with prod.channel("grpc_management_port") as channel:
        stub = management_pb2_grpc.ManagementAPIsServiceStub(channel)
        request = management_pb2.ListModelsRequest(limit=10)
        for token in (None, prod.key("inference")):
            metadata = (("authorization", f"Bearer {token}"),) if token else ()
            with pytest.raises(grpc.RpcError) as info:
                stub.ListModels(request, metadata=metadata, timeout=30)
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        reply = stub.ListModels(request, metadata=(("authorization", f"Bearer {prod.key('management')}"),), timeout=30)
        assert "ja_ner" in reply.msg


def test_model_api_is_off(prod: Prod) -> None:
    """Registering a model is refused even with the management key (REST and gRPC)."""
    auth = {"Authorization": f"Bearer {prod.key('management')}"}
    resp = requests.post(f"{prod.mgmt}/models?url=ja_ner.mar&model_name=again", headers=auth, timeout=30)
    assert resp.status_code == 405, resp.text
    assert "disabled" in resp.text.lower() or "not allowed" in resp.text.lower(), resp.text
    resp = requests.delete(f"{prod.mgmt}/models/ja_ner", headers=auth, timeout=30)
    assert resp.status_code == 405, resp.text
    with prod.channel("grpc_management_port") as channel:
        stub = management_pb2_grpc.ManagementAPIsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.RegisterModel(
                management_pb2.RegisterModelRequest(url="ja_ner.mar", model_name="again"),
                metadata=(("authorization", f"Bearer {prod.key('management')}"),),
                timeout=30,
            )
        assert info.value.code() != grpc.StatusCode.OK


def _connect(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def test_management_and_metrics_unreachable_on_a_non_loopback_address(prod: Prod) -> None:
    if prod.ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address to probe from")
    # control: the inference listeners (0.0.0.0) ARE reachable on that address
    assert _connect(prod.ip, prod.port("inference_address"))
    assert _connect(prod.ip, prod.port("grpc_inference_port"))
    for key in ("management_address", "metrics_address", "grpc_management_port"):
        assert not _connect(prod.ip, prod.port(key)), f"{key} answers on {prod.ip}"
        assert _connect("127.0.0.1", prod.port(key)), f"{key} not listening on loopback"


def test_metrics_on_loopback(prod: Prod) -> None:
    resp = requests.get(f"{prod.metrics}/metrics", timeout=10)
    assert resp.status_code == 200
    assert "ts_inference_requests_total" in resp.text or "# TYPE" in resp.text


def test_no_request_text_in_any_log(prod: Prod) -> None:
    """A unique marker sent in good and bad requests (REST and gRPC) never reaches a log file."""
    marker = f"秘密{uuid.uuid4().hex[:12]}"
    token = prod.key("inference")
    texts = [f"鈴木{marker}は熊本県に住む", marker]
    for text in texts:
        assert prod.predict(token, text.encode()).status_code == 200
    assert prod.predict(token, json.dumps({"texts": texts}).encode(), "application/json").status_code == 200
    bad = json.dumps({"text": marker, "options": {marker: 1}}).encode()  # refused: unknown option
    assert prod.predict(token, bad, "application/json").status_code == 400
    assert prod.predict(token, marker.encode() + b"\xff", "text/plain").status_code == 400
    with prod.channel("grpc_inference_port") as channel:
        stub = inference_pb2_grpc.InferenceAPIsServiceStub(channel)
        for data in (texts[0].encode(), b'{"text": "' + marker.encode() + b'"'):
            stub.Predictions(
                inference_pb2.PredictionsRequest(model_name="ja_ner", input={"data": data}),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=30,
            )
    time.sleep(1.0)  # let the frontend write the worker's last lines
    logs = sorted((prod.server.workdir / "logs").glob("*.log")) + [prod.server.workdir / "torchserve.out"]
    assert logs
    needles = [marker, json.dumps(marker)[1:-1], marker.encode("unicode_escape").decode()]
    for log in logs:
        content = log.read_text(errors="replace") if log.exists() else ""
        for needle in needles:
            assert needle not in content, f"request text in {log.name}"


def test_server_tooling_sees_the_prod_server_ready(prod: Prod) -> None:
    """``make serve CONFIG=config.prod.properties`` waits with ``handler.server.wait_ready``.

    ``Server.rest_url`` turns https:// into http://, so /ping gets 403 "only accepts HTTPS"
    and the wait never ends (300 s, then TimeoutError). Fix in handler/server.py: keep the
    scheme, map host 0.0.0.0 to 127.0.0.1, and open https with an SSL context that trusts
    ``certificate_file`` (hostname check off for this local probe).
    """
    wait_ready(prod.server, ["ja_ner"], timeout=5)


def test_rest_client_trusts_its_tls_ca_whatever_the_environment(prod: Prod, monkeypatch: pytest.MonkeyPatch) -> None:
    """``RestClient(tls_ca=...)`` must verify with that file even when REQUESTS_CA_BUNDLE is set.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace ``Session.verify`` (psf/requests
    #3829), so today the client checks the server against the system store and fails with
    CERTIFICATE_VERIFY_FAILED. Fix: pass ``verify=tls_ca`` on each ``session.request`` call.
    """
    from ja_ner.client.rest import RestClient

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    with RestClient(prod.rest, token=prod.key("inference"), tls_ca=str(prod.cert)) as client:
        assert client.predict(TEXT).model == "ja_ner"


def test_inference_key_rotation(prod: Prod) -> None:
    """The API key rotates the inference key: the old key stops working, the new one works.

    Last in this module: it changes the key the other tests read.
    """
    old = prod.key("inference")
    resp = requests.get(
        f"{prod.mgmt}/token?type=inference", headers={"Authorization": f"Bearer {prod.key('API')}"}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    new = prod.key("inference")
    assert new != old
    assert prod.predict(old).json()["type"] == "InvalidKeyException"
    assert prod.predict(new).status_code == 200
