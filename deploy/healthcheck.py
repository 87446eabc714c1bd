"""Container health check: GET a URL, exit 0 on HTTP 200, else 1 (stdlib only).

    python healthcheck.py http://127.0.0.1:8080/ping            # TorchServe
    python healthcheck.py http://127.0.0.1:8000/v2/health/ready # Triton

TorchServe refuses even /ping without the inference key when token authorisation is on; the key
is read from key_file.json in the working directory (or the file named by TS_KEY_FILE) if present.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path


def inference_key(path: Path) -> str | None:
    """The TorchServe inference key in ``path``, or None if the file is absent or unreadable."""
    try:
        return str(json.loads(path.read_text())["inference"]["key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check(url: str, key_file: Path, timeout_s: float = 4.0) -> bool:
    """True if ``url`` answers 200 within ``timeout_s`` seconds."""
    key = inference_key(key_file)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str] | None = None) -> int:
    """Entry point: one URL argument."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: healthcheck.py URL\n")
        return 2
    return 0 if check(args[0], Path(os.environ.get("TS_KEY_FILE", "key_file.json"))) else 1


if __name__ == "__main__":
    sys.exit(main())
