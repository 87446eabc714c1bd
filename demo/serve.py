"""Serve the demo page on 127.0.0.1 and tell it where the NER REST API is.

    python -m demo.serve                          # http://127.0.0.1:8090/ -> TorchServe on :8080
    python -m demo.serve --port 9000 --api http://127.0.0.1:8443

The page (demo/static/) is plain HTML, CSS and JavaScript: nothing is built or fetched from the
network. It reads ``config.json`` from this server for the API's base URL and model name (the URL
query ``?api=...&model=...`` overrides both). The browser calls TorchServe directly, so TorchServe
must allow this page's origin: config.properties sets ``cors_allowed_origin`` to
``http://127.0.0.1:8090`` (DEFAULT_PORT); a different port needs the same change there.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import urllib.error
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("demo.serve")

STATIC = Path(__file__).resolve().parent / "static"
HOST = "127.0.0.1"
DEFAULT_PORT = 8090
DEFAULT_API = "http://127.0.0.1:8080"


def origin(port: int) -> str:
    """The page's origin as browsers send it (what TorchServe's ``cors_allowed_origin`` must name)."""
    return f"http://{HOST}:{port}"


class _Handler(SimpleHTTPRequestHandler):
    """Static files from STATIC, plus ``/config.json`` built from the command line."""

    def __init__(self, *args: Any, config: dict[str, str], **kwargs: Any) -> None:
        self._config = json.dumps(config).encode()
        super().__init__(*args, directory=str(STATIC), **kwargs)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path.split("?", 1)[0] == "/config.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self._config)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(self._config)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("%s " + format, self.address_string(), *args)


def make_server(port: int = DEFAULT_PORT, api: str = DEFAULT_API, model: str = "ja_ner") -> ThreadingHTTPServer:
    """A server for the page on ``127.0.0.1:port`` (0: any free port); call ``serve_forever``."""
    handler = partial(_Handler, config={"api": api.rstrip("/"), "model": model})
    return ThreadingHTTPServer((HOST, port), handler)


def serve_in_thread(port: int, api: str, model: str = "ja_ner") -> tuple[ThreadingHTTPServer, str]:
    """Start the page server in a daemon thread; returns it and the page URL (stop: ``shutdown()``)."""
    server = make_server(port, api, model)
    threading.Thread(target=server.serve_forever, name="demo-page", daemon=True).start()
    return server, f"{origin(server.server_address[1])}/"


def api_healthy(api: str) -> bool:
    """True when ``{api}/ping`` answers Healthy (no token: the development config)."""
    try:
        with urllib.request.urlopen(f"{api.rstrip('/')}/ping", timeout=3) as resp:
            return json.load(resp).get("status") == "Healthy"
    except (OSError, ValueError, urllib.error.URLError):
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="serve the ja-ner demo page on 127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="page port (default: %(default)s)")
    parser.add_argument("--api", default=DEFAULT_API, help="TorchServe REST base URL (default: %(default)s)")
    parser.add_argument("--model", default="ja_ner", help="model name (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="demo: %(message)s")
    server = make_server(args.port, args.api, args.model)
    if not api_healthy(args.api):
        log.warning("no healthy TorchServe at %s yet: start one with `make serve`", args.api)
    log.info("demo page: %s/  (API %s, model %s; Ctrl+C stops)", origin(args.port), args.api, args.model)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
