"""Build archives and start real TorchServe instances for the integration tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from handler import archive
from handler.server import Server, free_port, start, stop

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "models" / "ja-ner-small"

__all__ = ["Server", "build_mar", "port_overrides", "start_torchserve", "stop", "REPO", "DEFAULT_MODEL"]


def build_mar(model_dir: Path, store: Path, name: str = "ja_ner", **model_config: object) -> Path:
    """Archive ``model_dir`` into ``store`` with model-config.yaml updated by ``model_config``.

    Keys of ``model_config`` named like TorchServe's (batchSize, maxBatchDelay, ...) go to the top
    level; ``handler`` replaces entries of the handler: section.
    """
    config = yaml.safe_load((REPO / "model-config.yaml").read_text())
    handler = {**config.get("handler", {}), **dict(model_config.pop("handler", {}) or {})}  # type: ignore[arg-type]
    config.update(model_config)
    config["handler"] = handler
    store.mkdir(parents=True, exist_ok=True)
    cfg = store / f"{name}-model-config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    return archive.build(str(model_dir), name, "1.0", store, cfg)


def port_overrides() -> dict[str, str]:
    """config.properties entries that move every listener to a free loopback port."""
    rest, mgmt, metrics, grpc_inf, grpc_mgmt, worker = (free_port() for _ in range(6))
    return {
        # The frontend names worker sockets /tmp/.ts.sock.<port> whatever TMPDIR says.
        "initial_worker_port": str(worker),
        "inference_address": f"http://127.0.0.1:{rest}",
        "management_address": f"http://127.0.0.1:{mgmt}",
        "metrics_address": f"http://127.0.0.1:{metrics}",
        "grpc_inference_port": str(grpc_inf),
        "grpc_management_port": str(grpc_mgmt),
    }


def start_torchserve(
    config_overrides: dict[str, str], mar_dir: Path, workdir: Path, config: Path | None = None
) -> Server:
    """Start TorchServe from ``config`` (default: config.properties) on free ports plus overrides."""
    if workdir.exists():
        shutil.rmtree(workdir)
    overrides = {**port_overrides(), **config_overrides}
    return start(config or REPO / "config.properties", mar_dir, workdir, overrides)
