"""The client installs and runs on its own: the ``client`` extra, and no torch-bound import."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What the serving side needs and a client machine must not: blocked in the child interpreter.
SERVER_ONLY = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "fugashi", "huggingface_hub", "ts")

PROBE = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVER_ONLY!r}:
            raise ImportError("server-only module imported by the client: " + name)
sys.meta_path.insert(0, Block())
import ja_ner.client, ja_ner.client.cli, ja_ner.client.rest, ja_ner.client.grpc
from ja_ner.client import cli
assert cli.main(["--url", "http://127.0.0.1:9", "--timeout", "2", "x"]) == 1  # runs, reports unreachable
print("ok")
"""


def test_the_client_and_cli_import_nothing_server_side() -> None:
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "ok"
    assert "cannot reach a ja-ner server at http://127.0.0.1:9" in run.stderr


def test_client_extra_has_what_the_client_imports_and_no_torch() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    client = {req.split("==")[0].lower() for req in project["optional-dependencies"]["client"]}
    assert {"requests", "grpcio", "protobuf", "googleapis-common-protos", "tqdm"} <= client
    assert not client & {"torch", "transformers", "tokenizers", "numpy", "torchserve"}
    base = {req.split("==")[0].lower() for req in project["dependencies"]}
    assert "torch" not in base  # extras only add: a torch in the base would reach every client install
    assert project["scripts"]["ja-ner"] == "ja_ner.client.cli:main"
