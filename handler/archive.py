"""Build a TorchServe .mar from a local model directory or a Hugging Face hub id.

    python -m handler.archive --model models/ja-ner-small --name ja_ner --export-path model_store

The archive holds the entry module (``entry.py``, the manifest's handler), the adapter package
(``handler/``: handler.py, streaming.py), the core package, model-config.yaml and, under ``model/``,
the weights as safetensors, the config, every tokenizer file and the ONNX graph ONNX Runtime serves
(``model.onnx``, exported here, never on the request path; ``--no-onnx`` leaves it out), so the
worker never touches the network. A hub id is fetched once, here, with huggingface_hub.

``build_mar`` is the one way tests, the benchmark and tools archive a model with model-config.yaml
settings changed.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "models" / "ja-ner-small"
DEFAULT_CONFIG = REPO / "model-config.yaml"
# The adapter modules packed as the ``handler`` package (archive.py and server.py are build tools).
ADAPTER_FILES = ("__init__.py", "handler.py", "streaming.py")
# Files a tokenizer may need; everything else in a model folder (other weight formats,
# training state, READMEs) stays out of the archive.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)
log = logging.getLogger("archive")


def resolve_model(source: str, cache_dir: str | None = None) -> Path:
    """A local directory as is; otherwise a hub id downloaded with huggingface_hub.

    Only the files a served model needs are fetched (config, safetensors/bin weights,
    tokenizer files). ``HF_HUB_OFFLINE=1`` with a populated ``cache_dir`` resolves from the cache.
    """
    path = Path(source)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download  # build-time only: never imported by the worker

    patterns = ["config.json", "*.safetensors", "pytorch_model*.bin", *TOKENIZER_FILES]
    return Path(snapshot_download(repo_id=source, allow_patterns=patterns, cache_dir=cache_dir))


def stage_model(source: Path, target: Path, *, onnx: bool = True) -> None:
    """Write weights as safetensors plus config and tokenizer files into ``target``.

    With ``onnx`` the graph ONNX Runtime serves (``ja_ner.forward.export_onnx``, float32) is
    written beside them as ``model.onnx``, exported once per model content (cached).

    Raises:
        SystemExit: the folder is not a token-classification model with a fast tokenizer.
    """
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    if not any((source / f).is_file() for f in TOKENIZER_FILES):
        raise SystemExit(f"{source}: no tokenizer files ({', '.join(TOKENIZER_FILES)})")
    tokenizer = AutoTokenizer.from_pretrained(source)
    if not tokenizer.is_fast:
        raise SystemExit(f"{source}: a fast tokenizer (tokenizer.json) is required for character offsets")
    model = AutoModelForTokenClassification.from_pretrained(source, dtype="auto")
    target.mkdir(parents=True)
    model.save_pretrained(target)  # safetensors, whatever format the source used
    copied = [f for f in TOKENIZER_FILES if (source / f).is_file()]
    for name in copied:
        shutil.copy2(source / name, target / name)
    if "tokenizer.json" not in copied:
        tokenizer.save_pretrained(target)  # the fast tokenizer was converted from slow files
    if onnx:
        add_onnx(target)
    log.info("staged %s (%s) with %s", source, model.config.model_type, ", ".join(copied))


def add_onnx(model_dir: Path) -> Path:
    """Put the model's ONNX graph (exported once per model content, cached) into ``model_dir``."""
    from ja_ner.forward import cached_onnx
    from ja_ner.plan import ONNX_FILE

    graph = cached_onnx(model_dir)
    shutil.copy2(graph, model_dir / ONNX_FILE)
    log.info("added %s (%.0f MB)", ONNX_FILE, graph.stat().st_size / 1e6)
    return model_dir / ONNX_FILE


def build(model: str, name: str, version: str, export_path: Path, config: Path, *, onnx: bool = True) -> Path:
    """Stage code and model, run torch-model-archiver; returns the .mar path."""
    source = resolve_model(model)
    export_path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mar-") as tmp:
        stage = Path(tmp) / "extra"
        stage.mkdir()
        shutil.copytree(
            REPO / "ja_ner", stage / "ja_ner", ignore=shutil.ignore_patterns("__pycache__", "client", "proto_gen")
        )
        (stage / "handler").mkdir()
        for file in ADAPTER_FILES:
            shutil.copy2(REPO / "handler" / file, stage / "handler" / file)
        stage_model(source, stage / "model", onnx=onnx)
        cmd = [
            str(Path(sys.executable).parent / "torch-model-archiver"),
            "--model-name", name, "--version", version,
            "--handler", str(REPO / "handler" / "entry.py"),
            "--extra-files", str(stage),  # its contents land in the archive root
            "--config-file", str(config),
            "--export-path", str(export_path), "--force",
        ]  # fmt: skip
        # torch-model-archiver stages files in $TMPDIR/<name> and wipes it first: give each build
        # its own TMPDIR so two builds of one name at the same moment cannot mix their files.
        subprocess.run(cmd, check=True, env={**os.environ, "TMPDIR": tmp})
    return export_path / f"{name}.mar"


def merge_model_config(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``config`` (a model-config.yaml) with TorchServe keys replaced and ``handler:`` entries updated.

    ``overrides["handler"]``, if any, updates the handler section entry by entry; every other key of
    ``overrides`` (batchSize, maxBatchDelay, minWorkers, ...) replaces the top-level value.
    """
    merged = {**config, **{k: v for k, v in overrides.items() if k != "handler"}}
    merged["handler"] = {**(config.get("handler") or {}), **(overrides.get("handler") or {})}
    if not merged["handler"]:
        del merged["handler"]
    return merged


def build_mar(model_dir: Path, store: Path, name: str = "ja_ner", **model_config: Any) -> Path:
    """Archive ``model_dir`` into ``store`` as ``name`` with model-config.yaml updated by ``model_config``.

    Keys are merged by ``merge_model_config`` (e.g. ``batchSize=8, handler={"dtype": "bfloat16"}``);
    the merged file is written beside the archive as ``<name>-model-config.yaml``.
    """
    config = merge_model_config(yaml.safe_load(DEFAULT_CONFIG.read_text()), model_config)
    store.mkdir(parents=True, exist_ok=True)
    path = store / f"{name}-model-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return build(str(model_dir), name, "1.0", store, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="local model directory or hub id")
    parser.add_argument("--name", default="ja_ner")
    parser.add_argument("--version", default="1.0")
    parser.add_argument("--export-path", type=Path, default=REPO / "model_store")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--no-onnx", action="store_true", help="leave out the ONNX graph (torch only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    mar = build(args.model, args.name, args.version, args.export_path, args.config, onnx=not args.no_onnx)
    log.info("wrote %s (%.1f MB)", mar, mar.stat().st_size / 1e6)


if __name__ == "__main__":
    main()
