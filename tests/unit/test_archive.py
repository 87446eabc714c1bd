"""handler/archive.py: local folders and the hub code path (exercised on a local cache)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from handler.archive import build, resolve_model

REPO = Path(__file__).resolve().parents[2]
HUB_ID = "tsmatz/xlm-roberta-ner-japanese"


def _fake_hub_cache(cache: Path, model_dir: Path) -> None:
    """The layout huggingface_hub leaves after a download: refs/main -> snapshots/<commit>/."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + HUB_ID.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for f in model_dir.iterdir():
        shutil.copy2(f, snapshot / f.name)


def test_local_directory_is_used_as_is(tiny_model_dir):
    assert resolve_model(str(tiny_model_dir)) == tiny_model_dir


def test_hub_id_resolves_through_huggingface_hub_offline(tiny_model_dir, tmp_path):
    cache = tmp_path / "hf-cache"
    _fake_hub_cache(cache, tiny_model_dir)
    # HF_HUB_OFFLINE is read when huggingface_hub is imported, hence a fresh interpreter.
    code = f"from handler.archive import resolve_model; print(resolve_model({HUB_ID!r}, cache_dir={str(cache)!r}))"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    resolved = Path(out.stdout.strip())
    assert resolved.parent.parent.name == "models--tsmatz--xlm-roberta-ner-japanese"
    assert (resolved / "config.json").exists() and (resolved / "tokenizer.json").exists()


def test_archive_holds_weights_tokenizer_handler_core_and_config(tiny_model_dir, tmp_path):
    mar = build(str(tiny_model_dir), "tiny", "2.0", tmp_path, REPO / "model-config.yaml")
    names = set(zipfile.ZipFile(mar).namelist())
    assert {"entry.py", "handler/__init__.py", "handler/handler.py", "handler/streaming.py"} <= names
    assert {"model-config.yaml", "MAR-INF/MANIFEST.json"} <= names
    assert not {"handler/archive.py", "handler/server.py"} & names  # build tools stay out
    assert {
        "model/model.safetensors",
        "model/config.json",
        "model/tokenizer.json",
        "model/tokenizer_config.json",
    } <= names
    assert {"ja_ner/pipeline.py", "ja_ner/forward.py"} <= names
    assert not any(n.startswith(("ja_ner/client", "ja_ner/proto_gen")) or n.endswith(".bin") for n in names)


def test_archive_refuses_a_model_without_a_fast_tokenizer(tiny_model_dir, tmp_path):
    broken = tmp_path / "no-tokenizer"
    broken.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(tiny_model_dir / name, broken / name)
    with pytest.raises((SystemExit, OSError, ValueError)):
        build(str(broken), "broken", "1.0", tmp_path / "store", REPO / "model-config.yaml")
