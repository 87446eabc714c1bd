"""Fixtures for the container tests (``make test-images``): real podman containers of the built images.

Every port is published on 127.0.0.1 only. The images must exist (``make images``, which
``make test-images`` runs first); where podman cannot run a container at all the tests skip with
the reason (``deploy/images.py preflight``), anywhere else a missing image or a failed start fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from imagekit import Container, built, readme_text, run_container

from deploy import images


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.images)


@pytest.fixture(scope="session", autouse=True)
def _podman_runs() -> None:
    reason = images.preflight()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def torchserve_image() -> str:
    return built("torchserve")


@pytest.fixture(scope="session")
def triton_image() -> str:
    return built("triton")


@pytest.fixture(scope="session")
def ts_container(torchserve_image: str) -> Iterator[Container]:
    """The TorchServe image as it ships (token authorisation on), healthy by its own HEALTHCHECK."""
    container = run_container(torchserve_image, [8080, 7070, 8082])
    try:
        container.wait_healthy()
        yield container
    finally:
        container.remove()


@pytest.fixture(scope="session")
def ts_readme_answer(ts_container: Container) -> bytes:
    """The container's answer to the README's request (raw bytes)."""
    answer = requests.post(
        f"{ts_container.url(8080)}/predictions/ja_ner",
        data=readme_text().encode(),
        headers={"Content-Type": "text/plain; charset=utf-8", "Authorization": f"Bearer {ts_container.key()}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return answer.content
