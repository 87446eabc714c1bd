"""docs/openapi.yaml is a valid OpenAPI 3.1 document and agrees with the code it describes."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from ja_ner.options import Aggregation, OffsetUnit, OutputFormat, RequestOptions
from ja_ner.settings import Settings

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def test_the_document_is_valid_openapi_3_1() -> None:
    document, _ = read_from_filename(str(SPEC_PATH))
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_options_are_the_request_options_of_the_code(spec: dict) -> None:
    options = spec["components"]["schemas"]["Options"]["properties"]
    assert set(options) == {f.name for f in fields(RequestOptions)}
    assert options["aggregation"]["enum"] == [a.value for a in Aggregation]
    assert options["aggregation"]["default"] == RequestOptions().aggregation.value
    assert options["offsets"]["enum"] == [o.value for o in OffsetUnit]
    assert options["offsets"]["default"] == RequestOptions().offsets.value
    assert options["format"]["enum"] == [f.value for f in OutputFormat]
    assert options["format"]["default"] == RequestOptions().format.value


def test_limits_are_the_default_settings(spec: dict) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["Text"]["maxLength"] == Settings().max_chars
    batch = next(s for s in schemas["PredictRequest"]["oneOf"] if "texts" in s["properties"])
    assert batch["properties"]["texts"]["maxItems"] == Settings().max_texts


def test_every_error_status_has_a_json_error_body(spec: dict) -> None:
    responses = spec["paths"]["/predictions/{model}"]["post"]["responses"]
    assert {"200", "400", "404", "413", "500", "503"} <= set(responses)
    for status, response in responses.items():
        if status != "200":
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_every_body_form_of_the_readme_is_described(spec: dict) -> None:
    forms = spec["paths"]["/predictions/{model}"]["post"]["requestBody"]["content"]
    assert set(forms) == {"application/json", "text/plain", "application/octet-stream", "multipart/form-data"}
