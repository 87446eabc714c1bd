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
COMPONENT = "#/components/schemas/"


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def test_the_document_is_valid_openapi_3_1() -> None:
    document, _ = read_from_filename(str(SPEC_PATH))
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def _resolve(spec: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.removeprefix(COMPONENT)] if ref else schema


def test_options_are_the_request_options_of_the_code(spec: dict) -> None:
    options = spec["components"]["schemas"]["Options"]["properties"]
    assert set(options) == {f.name for f in fields(RequestOptions)}
    defaults = RequestOptions()
    for name, enum in (("aggregation", Aggregation), ("offsets", OffsetUnit), ("format", OutputFormat)):
        schema = _resolve(spec, options[name])
        assert schema["enum"] == [member.value for member in enum]
        assert schema["default"] == getattr(defaults, name).value


def test_no_option_is_required_or_defaulted_on_its_own_property(spec: dict) -> None:
    """Every option may be left out: no ``required``, and no ``default`` beside the property.

    openapi-typescript (default settings) types a property that carries its own ``default`` as
    always present, so a client could not leave it out; the named enums carry their default.
    """
    options = spec["components"]["schemas"]["Options"]
    assert "required" not in options
    assert all("default" not in prop for prop in options["properties"].values())


def test_limits_are_the_default_settings(spec: dict) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["Text"]["maxLength"] == Settings().max_chars
    assert schemas["BatchRequest"]["properties"]["texts"]["maxItems"] == Settings().max_texts


def test_every_error_status_has_a_json_error_body(spec: dict) -> None:
    responses = spec["paths"]["/predictions/{model}"]["post"]["responses"]
    assert {"200", "400", "404", "413", "500", "503"} <= set(responses)
    for status, response in responses.items():
        if status != "200":
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_every_body_form_of_the_readme_is_described(spec: dict) -> None:
    forms = spec["paths"]["/predictions/{model}"]["post"]["requestBody"]["content"]
    assert set(forms) == {"application/json", "text/plain", "application/octet-stream", "multipart/form-data"}


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_ref_names_a_whole_component(spec: dict) -> None:
    """Generators resolve ``#/components/schemas/X``, not a path into another schema's properties."""
    for ref in _refs(spec):
        name = ref.removeprefix(COMPONENT)
        assert ref.startswith(COMPONENT) and "/" not in name, ref
        assert name in spec["components"]["schemas"], ref


def test_every_json_body_and_answer_is_a_named_component(spec: dict) -> None:
    """One text, client batch, form, each answer shape and the error each have a name of their own."""
    schemas = spec["components"]["schemas"]
    post = spec["paths"]["/predictions/{model}"]["post"]
    body = post["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": COMPONENT + "PredictRequest"}
    assert body["multipart/form-data"]["schema"] == {"$ref": COMPONENT + "PredictForm"}
    assert schemas["PredictRequest"]["oneOf"] == [{"$ref": COMPONENT + n} for n in ("TextRequest", "BatchRequest")]
    answer = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": COMPONENT + "PredictResponse"}
    shapes = ("Prediction", "BatchPrediction", "HfEntities", "HfBatch")
    assert schemas["PredictResponse"]["anyOf"] == [{"$ref": COMPONENT + n} for n in shapes]
    # a title would become a generated class's name in place of the component's
    assert not [name for name, schema in schemas.items() if "title" in schema]
