"""CORS in the shipped configs, and the demo page server (no browser: see test_demo_page.py)."""

from __future__ import annotations

import json
import urllib.request

from demo.serve import DEFAULT_PORT, STATIC, origin, serve_in_thread
from handler.archive import REPO
from handler.server import read_properties

CORS_KEYS = ("cors_allowed_origin", "cors_allowed_methods", "cors_allowed_headers")


def test_development_config_allows_exactly_the_demo_origin() -> None:
    props = read_properties(REPO / "config.properties")
    assert props["cors_allowed_origin"] == origin(DEFAULT_PORT) == "http://127.0.0.1:8090"
    assert "*" not in props["cors_allowed_origin"] and "," not in props["cors_allowed_origin"]
    assert "POST" in props["cors_allowed_methods"]
    assert props["cors_allowed_headers"] == "Content-Type"  # the JSON body's preflight


def test_production_config_allows_no_origin() -> None:
    props = read_properties(REPO / "config.prod.properties")
    assert not any(key in props for key in CORS_KEYS)


def test_page_server_serves_the_static_page_and_its_config() -> None:
    server, url = serve_in_thread(0, "http://127.0.0.1:9/", "ja_ner")
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "config.json") as resp:
            assert json.load(resp) == {"api": "http://127.0.0.1:9", "model": "ja_ner"}
        with urllib.request.urlopen(url) as resp:
            page = resp.read().decode()
        assert '<script src="demo.js"></script>' in page
    finally:
        server.shutdown()
        server.server_close()


def test_page_fetches_nothing_from_the_network() -> None:
    """No CDN: every src/href in the page's files is relative (the API URL comes from config.json)."""
    for path in STATIC.iterdir():
        text = path.read_text()
        assert "https://" not in text and "//cdn" not in text, path
