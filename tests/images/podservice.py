"""A stand-in for a Kubernetes Service in front of ``podman kube play`` pods, on 127.0.0.1 only.

podman publishes no port of a Deployment's pods (no ``hostPort`` in the manifests), and its pods
have no Service. This reaches each pod the way its own containers do, on the pod's loopback
interface: a connector thread enters the pod's network namespace (``setns``, needs root) and
opens the sockets there; the listener stays on the host's 127.0.0.1. New connections are spread
round-robin over the endpoints that are ready, and an endpoint removed (a pod being deleted) gets
no new connection, while connections already open stay, as with kube-proxy.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import queue
import socket
import threading
from collections import Counter
from concurrent.futures import Future

CLONE_NEWNET = 0x40000000


class PodConnector:
    """Opens TCP connections to 127.0.0.1:PORT inside the network namespace of process ``pid``."""

    def __init__(self, pid: int) -> None:
        self._jobs: queue.Queue[tuple[int, Future[socket.socket]] | None] = queue.Queue()
        self._fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        ready: Future[None] = Future()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.result(timeout=10)

    def _serve(self, ready: Future[None]) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(self._fd, CLONE_NEWNET) != 0:  # this thread only
            ready.set_exception(OSError(ctypes.get_errno(), "setns into the pod's network namespace"))
            return
        ready.set_result(None)
        while (job := self._jobs.get()) is not None:
            port, result = job
            try:
                result.set_result(socket.create_connection(("127.0.0.1", port), timeout=10))
            except OSError as err:
                result.set_exception(err)

    def connect(self, port: int) -> socket.socket:
        result: Future[socket.socket] = Future()
        self._jobs.put((port, result))
        sock = result.result(timeout=15)
        sock.settimeout(None)
        return sock

    def close(self) -> None:
        self._jobs.put(None)
        os.close(self._fd)


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
