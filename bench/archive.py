"""Archives for the benchmark, cached under build/bench/mars by what went into them.

``ours`` is built by the project's own archiver (handler/archive.py through tests/serverutil,
with model-config.yaml overrides); ``baseline`` by a direct torch-model-archiver call with the
model files in the archive root and batchSize 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "build" / "bench" / "mars"
BASELINE_CONFIG = {"minWorkers": 1, "maxWorkers": 1, "batchSize": 1, "maxBatchDelay": 0, "responseTimeout": 120}
# Files whose content changes an archive of each kind.
_SOURCES = {
    "ours": ["handler/handler.py", "handler/streaming.py", "handler/archive.py", "model-config.yaml", "ja_ner"],
    "baseline": ["bench/baseline_handler.py"],
}
_MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json")  # fmt: skip

log = logging.getLogger(__name__)


def cache_key(kind: str, model_dir: Path, overrides: dict) -> str:
    """A digest of the kind, the overrides, the model files (name, size, mtime) and the sources."""
    digest = hashlib.sha256(json.dumps([kind, overrides], sort_keys=True).encode())
    for path in sorted(p for p in model_dir.iterdir() if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for source in _SOURCES[kind]:
        paths = sorted((REPO / source).rglob("*.py")) if (REPO / source).is_dir() else [REPO / source]
        for path in paths:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build(kind: str, model_dir: Path, name: str, overrides: dict | None = None) -> Path:
    """The cached .mar of ``kind`` (ours or baseline) for ``model_dir``; built on first use."""
    overrides = overrides or {}
    target = CACHE / cache_key(kind, model_dir, overrides) / f"{name}.mar"
    if target.is_file():
        return target
    staging = target.parent.with_name(target.parent.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log.info("archiving %s (%s) from %s", name, kind, model_dir)
    if kind == "ours":
        from tests.serverutil import build_mar

        build_mar(model_dir, staging, name, **overrides)
    elif kind == "baseline":
        _build_baseline(model_dir, staging, name, overrides)
    else:
        raise ValueError(f"unknown archive kind {kind!r}")
    staging.rename(target.parent)
    return target


def _build_baseline(model_dir: Path, store: Path, name: str, overrides: dict) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-mar-") as tmp:
        extra = Path(tmp) / "extra"
        extra.mkdir()
        for file in _MODEL_FILES:
            if (model_dir / file).is_file():
                _link_or_copy(model_dir / file, extra / file)
        config = Path(tmp) / "model-config.yaml"
        config.write_text(yaml.safe_dump({**BASELINE_CONFIG, **overrides}))
        cmd = [
            sys.executable, "-m", "model_archiver.model_packaging",
            "--model-name", name, "--version", "1.0",
            "--handler", str(REPO / "bench" / "baseline_handler.py"),
            "--extra-files", str(extra),
            "--config-file", str(config),
            "--export-path", str(store), "--force",
        ]  # fmt: skip
        subprocess.run(cmd, check=True)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def link_into(mar: Path, store: Path) -> Path:
    """Hard-link (or copy) a cached archive into a server's model store."""
    store.mkdir(parents=True, exist_ok=True)
    target = store / mar.name
    target.unlink(missing_ok=True)
    _link_or_copy(mar, target)
    return target
