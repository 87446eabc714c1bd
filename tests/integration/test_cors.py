"""CORS of the development configuration, as the session TorchServe answers it (no browser needed).

config.properties allows exactly the demo page's origin; the session server allows the origin of
the demo page its browser test serves (``torchserve.demo_port``). The production configuration
allows none: tests/integration/test_prod_config.py::test_no_cross_origin_access.
"""

from __future__ import annotations

import pytest
import requests

from demo.serve import origin

pytestmark = pytest.mark.integration


def test_answers_allow_exactly_the_demo_origin_and_the_json_preflight_passes(torchserve) -> None:
    page = origin(torchserve.demo_port)
    url = f"{torchserve.rest_url}/predictions/{torchserve.model_name}"
    answer = requests.post(url, json={"text": "鈴木"}, headers={"Origin": page}, timeout=60)
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == page  # one origin, never "*"
    preflight = requests.options(
        url,
        headers={
            "Origin": page,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=60,
    )
    assert preflight.status_code == 200  # TorchServe answers OPTIONS with the model's API description
    assert preflight.headers["Access-Control-Allow-Origin"] == page
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"].lower() == "content-type"
