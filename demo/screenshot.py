"""Screenshot of the demo page with a real answer (docs/demo.png), taken with headless Chromium.

    make serve && make demo-screenshot        # python -m demo.screenshot --out docs/demo.png

Serves the page itself on ``--port`` (the origin TorchServe must allow) and drives Debian's
``chromium`` through Playwright: picks an example text, submits it, waits for the answer.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from demo.serve import DEFAULT_API, DEFAULT_PORT, serve_in_thread

log = logging.getLogger("demo.screenshot")

# Debian's chromium (Playwright cannot download its own browser here), headless, quiet: also what
# tests/integration/test_demo_page.py launches.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def take(out: Path, *, port: int, api: str, example: str = "news", width: int = 1000) -> Path:
    """Load the page, run ``example``, open the raw JSON block and save a PNG of the page to ``out``."""
    from playwright.sync_api import sync_playwright

    server, url = serve_in_thread(port, api)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": 800})
            page.goto(url)
            page.wait_for_selector("body[data-ready=true]")
            page.select_option("#example", example)
            page.click("#run")
            page.wait_for_selector("mark.ent, #error:not([hidden])")
            if page.locator("#error").is_visible():
                raise RuntimeError(f"the page shows an error: {page.locator('#error').inner_text()}")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="screenshot of the demo page with a real answer")
    parser.add_argument("--out", type=Path, default=Path("docs/demo.png"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--api", default=DEFAULT_API)
    parser.add_argument("--example", default="news", choices=["widget", "news", "wiki", "long"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="demo: %(message)s")
    log.info("saved %s", take(args.out, port=args.port, api=args.api, example=args.example))


if __name__ == "__main__":
    main()
