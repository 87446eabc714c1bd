"""Start-up and clean shutdown of a TorchServe of its own (the shared one must stay up)."""

from __future__ import annotations

import socket
import time

import psutil
import pytest
import requests

from handler.archive import build_mar
from handler.server import start_on_free_ports, stop

pytestmark = pytest.mark.integration


def _port_open(url: str) -> bool:
    host, port = url.rsplit("//", 1)[1].split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def test_start_answers_then_stops_cleanly(tiny_model_dir, tmp_path):
    store = tmp_path / "store"
    build_mar(tiny_model_dir, store, "tiny")
    started = time.monotonic()
    server = start_on_free_ports({"load_models": "tiny=tiny.mar"}, store, tmp_path / "work")
    startup_s = time.monotonic() - started
    pid = int((server.workdir / "tmp" / ".model_server.pid").read_text())
    java = psutil.Process(pid)
    workers = [p for p in java.children(recursive=True) if "model_service_worker" in " ".join(p.cmdline())]
    assert workers, "TorchServe started no Python worker"
    assert requests.get(f"{server.rest_url}/ping", timeout=5).json()["status"] == "Healthy"
    assert requests.post(f"{server.rest_url}/predictions/tiny", data="東京".encode()).status_code == 200

    stop(server)
    assert not java.is_running() or java.status() == psutil.STATUS_ZOMBIE
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    assert not _port_open(server.rest_url)
    print(f"startup to ready: {startup_s:.1f}s")
