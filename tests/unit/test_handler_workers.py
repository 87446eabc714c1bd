"""The workers the TorchServe handler sizes its threads for (issues 21, 23): TorchServe's own order."""

import pytest

pytest.importorskip("ts")
from handler.handler import worker_count  # noqa: E402
from ja_ner import hardware  # noqa: E402


def test_min_workers_in_model_config_wins():
    assert worker_count({"minWorkers": 3}, {"TS_DEFAULT_WORKERS_PER_MODEL": "1"}) == (
        3,
        "minWorkers in model-config.yaml",
    )


@pytest.mark.parametrize("value", ["1", "4"])
def test_the_environment_names_what_torchserve_starts(value):
    # a Deployment's "one worker per pod": the handler must give that worker every core of the pod
    assert worker_count({}, {"TS_DEFAULT_WORKERS_PER_MODEL": value}) == (int(value), "TS_DEFAULT_WORKERS_PER_MODEL")


@pytest.mark.parametrize("value", ["", "0", "two"])
def test_otherwise_the_auto_rule(value):
    expected = int(hardware.workers(hardware.detect()).value)
    assert worker_count({}, {"TS_DEFAULT_WORKERS_PER_MODEL": value}) == (expected, "auto workers")
    assert worker_count({}, {}) == (expected, "auto workers")
