"""The API reference a partner developer reads: every operation has a request and response
example and a curl command, every field and parameter is described, and every example is valid
against the schemas the API itself loads and dumps with (marshmallow) and against the OpenAPI
document (as JSON Schema)."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import jsonschema_rs  # schemathesis's validator, already a test dependency
import pytest
from markupsafe import escape
from marshmallow import RAISE

from webapp.api import OPERATIONS
from webapp.api.core import Operation
from webapp.api.errors import CODES
from webapp.api.examples import EXAMPLES
from webapp.api.openapi import build_spec

SPEC = build_spec()


def _op_id(op: Operation) -> str:
    return op.endpoint.split(".", 1)[1]


def _openapi(op: Operation) -> dict[str, Any]:
    return SPEC["paths"][op.openapi_path][op.method.lower()]


def _json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as plain JSON Schema: references inlined, ``nullable`` as a type."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _json_schema(SPEC["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]])
    out = {k: _json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "$ref" in node or ("type" not in out and "enum" not in out):
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _validate(schema: dict, instance: Any) -> None:
    validator = jsonschema_rs.Draft4Validator(_json_schema(schema), validate_formats=True)
    errors = [str(e) for e in validator.iter_errors(instance)]
    assert not errors, errors


OPS = pytest.mark.parametrize("op", OPERATIONS, ids=_op_id)


@OPS
def test_every_operation_has_examples_and_a_curl_command(op):
    example = EXAMPLES.get(_op_id(op))
    assert example is not None, f"no example for {_op_id(op)} in webapp/api/examples.py"
    document = _openapi(op)
    path_names = set(re.findall(r"\{(\w+)\}", op.openapi_path))
    assert set(example.get("path", {})) == path_names
    if op.body is not None:
        assert (
            document["requestBody"]["content"]["application/json"]["example"]
            == (example["request"])
        )
    else:
        assert "request" not in example
    if op.status != 204:
        success = document["responses"][str(op.status)]["content"]["application/json"]
        assert success["example"] == example["response"]
    (sample,) = document["x-codeSamples"]
    assert sample["lang"] == "Shell" and sample["label"] == "curl"
    words = shlex.split(sample["source"].replace("\\\n", " "))
    assert words[:3] == ["curl", "-X", op.method]
    url = words[3]
    assert url.startswith("$RENDEZVOUS_URL" + op.openapi_path.split("{")[0])
    assert "{" not in url and "Authorization: Bearer $RENDEZVOUS_TOKEN" in words
    if op.body is not None:
        assert json.loads(words[words.index("-d") + 1]) == example["request"]
    for name in example.get("query", {}):
        assert f"{name}=" in url


@OPS
def test_every_example_is_valid_against_its_schemas(op):
    example = EXAMPLES[_op_id(op)]
    document = _openapi(op)
    if op.body is not None:
        op.body(unknown=RAISE).load(example["request"])  # what the API itself would accept
        _validate(
            document["requestBody"]["content"]["application/json"]["schema"], example["request"]
        )
    if "query" in example:
        assert op.query is not None
        op.query(unknown=RAISE).load(example["query"])
        params = {p["name"]: p for p in document["parameters"] if p["in"] == "query"}
        for name, value in example["query"].items():
            assert params[name]["example"] == value
            _validate(params[name]["schema"], value)
    for p in document["parameters"]:
        if p["in"] == "path":
            assert p["example"] == example["path"][p["name"]]
            _validate(p["schema"], p["example"])
    if op.status != 204:
        assert op.response is not None
        # Loading what the API would dump: every required field present, none unknown.
        op.response(unknown=RAISE).load(example["response"])
        schema = document["responses"][str(op.status)]["content"]["application/json"]["schema"]
        _validate(schema, example["response"])


def test_the_examples_name_no_unknown_operation():
    assert set(EXAMPLES) == {_op_id(op) for op in OPERATIONS}


def test_an_invalid_example_would_be_caught():
    """The check above can fail: a wrong type, a missing field and an unknown field are refused."""
    from marshmallow import ValidationError

    from webapp.api.schemas.scheduling import InterviewSchema

    good = EXAMPLES["create_interview"]["response"]
    schema = SPEC["components"]["schemas"]["Interview"]
    for bad in (
        {**good, "start": "next Tuesday"},
        {k: v for k, v in good.items() if k != "uid"},
        {**good, "panel_link_ids": "41"},
    ):
        with pytest.raises(AssertionError):
            _validate(schema, bad)
    with pytest.raises(ValidationError):
        InterviewSchema(unknown=RAISE).load({**good, "surprise": 1})


def test_error_responses_have_valid_examples():
    for status in CODES:
        content = SPEC["components"]["responses"][f"Error{status}"]["content"]["application/json"]
        assert content["example"]["error"]["code"] == CODES[status][0]
        _validate(content["schema"], content["example"])


def test_every_field_and_parameter_is_described():
    undescribed = [
        f"{name}.{field}"
        for name, schema in SPEC["components"]["schemas"].items()
        for field, prop in schema.get("properties", {}).items()
        if not prop.get("description", "").strip()
    ]
    undescribed += [
        f"{op['operationId']}: {p['in']} {p['name']}"
        for methods in SPEC["paths"].values()
        for op in methods.values()
        for p in op.get("parameters", [])
        if not p.get("description", "").strip()
    ]
    assert undescribed == []


def test_the_docs_page_shows_examples_curl_and_field_descriptions(client):
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "<script" not in page
    assert "export RENDEZVOUS_URL=http://localhost/" not in page  # no trailing slash doubled
    assert "export RENDEZVOUS_URL=http://localhost" in page
    for op in OPERATIONS:
        section = page.split(f'id="{_op_id(op)}"', 1)[1].split("</article>", 1)[0]
        source = _openapi(op)["x-codeSamples"][0]["source"]
        assert str(escape(source)) in section
        if op.body is not None:
            request = json.dumps(EXAMPLES[_op_id(op)]["request"], indent=2, ensure_ascii=False)
            assert str(escape(request)) in section
        if op.status != 204:
            response = json.dumps(EXAMPLES[_op_id(op)]["response"], indent=2, ensure_ascii=False)
            assert str(escape(response)) in section
    assert str(escape("The calendar event's title")) in page
    assert "in_calendar" in page
