"""The demo page in a real headless Chromium against the session TorchServe (CORS included).

Needs Debian's ``chromium`` (Playwright cannot download its own browser here) and the pinned
``playwright`` package. The page is served by demo/serve.py from the one origin the session
TorchServe allows (``cors_allowed_origin``), so every call below is a real cross-origin call.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.screenshot import CHROMIUM, CHROMIUM_ARGS
from demo.serve import serve_in_thread
from handler.server import free_port

pytestmark = pytest.mark.integration

WIDGET = "鈴木は4月の陽気の良い日に、鈴をつけて熊本県の阿蘇山に登った"
WIDGET_ENTITIES = [("鈴木", "PER"), ("熊本県", "LOC"), ("阿蘇山", "LOC")]

if not Path(CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium is missing: `apt-get update && apt-get install -y chromium` (.ci/run does this)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright missing: `make install` pins it")


@pytest.fixture(scope="module")
def page_url(torchserve) -> Iterator[str]:
    server, url = serve_in_thread(torchserve.demo_port, torchserve.rest_url, torchserve.model_name)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, page_url: str):
    context = browser.new_context()
    page = context.new_page()
    page.goto(page_url)
    page.wait_for_selector("body[data-ready=true]")
    yield page
    context.close()


def _entities(page) -> list[tuple[str, str]]:
    return [(m.locator(".ent-text").inner_text(), m.get_attribute("data-type")) for m in page.locator("mark.ent").all()]


def _submit(page, text: str, *, keyboard: bool = False) -> None:
    page.fill("#text", text)
    if keyboard:
        page.press("#text", "Control+Enter")
    else:
        page.click("#run")
    page.wait_for_function("() => !document.getElementById('run').disabled && document.getElementById('status')"
                           ".textContent !== 'Asking the model…'")  # fmt: skip


def test_widget_sentence_highlighted_with_types_legend_and_raw_json(page) -> None:
    _submit(page, WIDGET)
    assert _entities(page) == WIDGET_ENTITIES
    assert page.locator("#error").is_hidden()
    counts = {
        li.get_attribute("data-type"): int(li.locator(".count").inner_text()) for li in page.locator("#legend li").all()
    }
    assert counts == {"PER": 1, "ORG": 0, "ORG-P": 0, "ORG-O": 0, "LOC": 2, "INS": 0, "PRD": 0, "EVT": 0}
    title = page.locator("mark.ent").first.get_attribute("title")
    assert title.startswith("PER · score 0.")
    assert '"entities"' in page.locator("#raw").text_content()
    assert "ms (request time)" in page.locator("#status").inner_text()


def test_astral_characters_before_entities_keep_offsets_right(page) -> None:
    """UTF-16 offsets: an emoji and 𠮷 (two code units each) ahead of the entities shift nothing."""
    text = "😀 𠮷 " + WIDGET
    _submit(page, text, keyboard=True)
    found = _entities(page)
    assert found[-3:] == WIDGET_ENTITIES  # the model may also read 𠮷 (a kanji of surnames) as a name
    assert not any("😀" in surface for surface, _ in found)  # an emoji never edges an entity
    name = page.locator("mark.ent", has_text="鈴木")
    assert (name.get_attribute("data-start"), name.get_attribute("data-end")) == ("6", "8")  # JS string units
    assert page.locator("#output").inner_text().replace("PER", "").replace("LOC", "") == text


def test_errors_in_plain_words(page, torchserve) -> None:
    page.fill("#min-score", "2")
    _submit(page, WIDGET)
    error = page.locator("#error")
    assert error.is_visible()
    assert "could not use this request (400)" in error.inner_text()
    assert "min_score" in error.inner_text()
    assert page.locator("mark.ent").count() == 0

    page.fill("#min-score", "")
    page.fill("#text", "あ" * 100_001)
    page.click("#run")
    page.wait_for_function("() => !document.getElementById('error').hidden")
    assert "too long for the server (413)" in error.inner_text()


def test_server_down_is_reported_with_how_to_start_it(browser, page_url: str) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{page_url}?api=http://127.0.0.1:{free_port()}")
        page.wait_for_selector("body[data-ready=true]")
        _submit(page, WIDGET)
        message = page.locator("#error").inner_text()
        assert "Cannot reach the NER server" in message and "make serve" in message
    finally:
        context.close()
