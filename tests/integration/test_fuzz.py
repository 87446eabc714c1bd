"""Hostile requests beyond the schema with good neighbours in the same batches, on the shared server (issue 22).

A short seeded run of ``fuzz.run`` (JA_NER_HOSTILE_SECONDS, default 25; JA_NER_HOSTILE_SEED, default 22);
``make fuzz`` runs the same for longer on a server of its own. Goals: every hostile request gets the
answer it must (a 4xx JSON error where it cannot be read, 200 or 4xx where it may be read as text,
TorchServe's own documented answers aside), no good neighbour's answer differs from its answer
alone, no worker restarts, and the server is healthy afterwards.
"""

from __future__ import annotations

import json
import os

import pytest

from fuzz.run import Target, run

pytestmark = pytest.mark.integration


def test_hostile_requests_fail_alone_and_never_restart_the_worker(torchserve) -> None:
    seconds = float(os.environ.get("JA_NER_HOSTILE_SECONDS", "25"))
    seed = int(os.environ.get("JA_NER_HOSTILE_SEED", "22"))
    target = Target(torchserve.rest_url, torchserve.grpc_target, torchserve.mgmt_url, torchserve.model_name,
                    torchserve.token(), torchserve.token("management"))  # fmt: skip
    report = run(target, seconds=seconds, seed=seed)
    summary = report.summary()
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    assert report.hostile > 0 and report.good > 0
    assert summary["hostile_failures"] == 0, summary["hostile_failure_samples"]
    assert summary["good_neighbour_failures"] == 0, summary["good_failure_samples"]
    assert summary["worker_restarts"] == 0
    assert summary["healthy_after"]
