"""Model directories for the benchmark's TorchServe, cached under build/bench/mars by what went into them.

``ours`` is built once per model by the project's own archiver (``handler.archive.build_mar``)
and unpacked; ``baseline`` by a direct torch-model-archiver call
(``--archive-format no-archive``) with the model files in the root and batchSize 1. A server's
model store gets one folder per mode, made of hard links to the cached files, with its own
MANIFEST.json and model-config.yaml: a variant of ours (other settings) costs no new archive.
TorchServe loads such an unpacked folder as it would the .mar (the "no-archive" format).
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
import zipfile
from pathlib import Path

import yaml

from handler.archive import build_mar, merge_model_config

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "build" / "bench" / "mars"
BASELINE_CONFIG = {"minWorkers": 1, "maxWorkers": 1, "batchSize": 1, "maxBatchDelay": 0, "responseTimeout": 120}
# Files whose content changes the archive of each kind.
_SOURCES = {
    "ours": ["handler", "model-config.yaml", "ja_ner"],
    "baseline": ["bench/baseline_handler.py", "bench/archive.py"],
}
_MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json")  # fmt: skip
MANIFEST = Path("MAR-INF") / "MANIFEST.json"

log = logging.getLogger(__name__)


def cache_key(kind: str, model_dir: Path) -> str:
    """A digest of the kind, the model files (name, size, mtime) and the sources of the handler."""
    digest = hashlib.sha256(kind.encode())
    for path in sorted(p for p in model_dir.iterdir() if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for source in _SOURCES[kind]:
        paths = sorted((REPO / source).rglob("*.py")) if (REPO / source).is_dir() else [REPO / source]
        for path in paths:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build(kind: str, model_dir: Path) -> Path:
    """The cached, unpacked archive of ``kind`` (ours or baseline) for ``model_dir``; built on first use."""
    if kind not in _SOURCES:
        raise ValueError(f"unknown archive kind {kind!r}")
    target = CACHE / cache_key(kind, model_dir) / kind
    if (target / MANIFEST).is_file():
        return target
    staging = target.parent.with_name(target.parent.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log.info("archiving %s from %s (cached in %s)", kind, model_dir, target.parent)
    if kind == "ours":
        mar = build_mar(model_dir, staging, kind)
        with zipfile.ZipFile(mar) as packed:
            packed.extractall(staging / kind)
        mar.unlink()
    else:
        _build_baseline(model_dir, staging, kind)
    shutil.rmtree(target.parent, ignore_errors=True)
    staging.rename(target.parent)
    return target


def _build_baseline(model_dir: Path, store: Path, name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-mar-") as tmp:
        extra = Path(tmp) / "extra"
        extra.mkdir()
        for file in _MODEL_FILES:
            if (model_dir / file).is_file():
                _link_or_copy(model_dir / file, extra / file)
        config = Path(tmp) / "model-config.yaml"
        config.write_text(yaml.safe_dump(BASELINE_CONFIG))
        cmd = [
            sys.executable, "-m", "model_archiver.model_packaging",
            "--model-name", name, "--version", "1.0",
            "--handler", str(REPO / "bench" / "baseline_handler.py"),
            "--extra-files", str(extra),
            "--config-file", str(config),
            "--export-path", str(store), "--archive-format", "no-archive", "--force",
        ]  # fmt: skip
        subprocess.run(cmd, check=True)


def stage(unpacked: Path, store: Path, name: str, overrides: dict | None = None) -> Path:
    """``store/name``: hard links to ``unpacked``, registered as ``name``, config updated by ``overrides``."""
    manifest = json.loads((unpacked / MANIFEST).read_text())
    config_name = manifest["model"].get("configFile")
    config = yaml.safe_load((unpacked / config_name).read_text()) if config_name else {}
    target = store / name
    shutil.rmtree(target, ignore_errors=True)
    for path in unpacked.rglob("*"):
        if path.is_file() and path.relative_to(unpacked) not in (MANIFEST, Path(config_name or "")):
            (target / path.relative_to(unpacked)).parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(path, target / path.relative_to(unpacked))
    (target / MANIFEST).parent.mkdir(parents=True, exist_ok=True)
    manifest["model"]["modelName"] = name
    manifest["model"]["configFile"] = f"{name}-model-config.yaml"
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2))
    (target / f"{name}-model-config.yaml").write_text(yaml.safe_dump(merge_model_config(config, overrides or {})))
    return target


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)
