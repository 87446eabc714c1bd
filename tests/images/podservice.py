"""A stand-in for a Kubernetes Service in front of ``podman kube play`` pods, on 127.0.0.1 only.

Each pod's ports are published on 127.0.0.1 (test_kube.render); the Service listens on another
loopback port and spreads new connections round-robin over the endpoints that are ready. An
endpoint removed (a pod being deleted) gets no new connection, while connections already open
stay, as with kube-proxy.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections import Counter


class PodConnector:
    """Opens TCP connections to a pod's container ports, published on 127.0.0.1 (container -> host port)."""

    def __init__(self, published: dict[int, int]) -> None:
        self.published = dict(published)

    def connect(self, port: int) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.published[port]), timeout=15)

    def close(self) -> None:
        pass


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((target, socket.SHUT_WR), (source, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                sock.shutdown(how)


class Service:
    """127.0.0.1:<port> -> PORT on each ready endpoint (pod name -> connector), round-robin."""

    def __init__(self, endpoints: dict[str, PodConnector], target_port: int) -> None:
        self.endpoints = dict(endpoints)
        self.ready = list(endpoints)
        self.target_port = target_port
        self.connections: Counter[str] = Counter()
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def remove(self, name: str) -> None:
        """Take ``name`` out of the endpoints (Kubernetes does so when a pod starts terminating)."""
        with self._lock:
            self.ready.remove(name)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                name = self.ready[next(self._turn) % len(self.ready)] if self.ready else None
            if name is None:
                client.close()
                continue
            try:
                upstream = self.endpoints[name].connect(self.target_port)
            except OSError:
                client.close()
                continue
            self.connections[name] += 1
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()

    def close(self) -> None:
        self._listener.close()
