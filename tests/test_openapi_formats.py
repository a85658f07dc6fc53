"""Swagger 2.0, multi-file specs, 3.1 and composed schemas."""

import base64
import json
from urllib.parse import parse_qsl

import jsonschema_rs
import orjson
import pytest

from mcp_anything.tools import ArgumentError
from tests.support.openapi import SHARED_SPECS, SPECS, load, minimal_spec, tools_by_name

OK = {"200": {"description": "ok"}}


def call(tool, arguments):
    tool.validate(arguments)
    return tool.build_request(arguments)


def test_swagger_2_is_converted() -> None:
    result = load(SPECS / "swagger2.yaml", base_url=None, tool_prefix="")
    assert result.base_url == "https://old.example.com/v1"
    tools = {t.name: t for t in result.tools}
    update = tools["update_pet"]
    assert list(update.input_schema["properties"]) == ["id", "ids", "tags", "sep", "name", "nick", "friend"]
    assert update.input_schema["properties"]["nick"]["type"] == ["string", "null"]
    assert update.output_schema["properties"]["friend"]["type"] == "object"
    request = call(update, {"id": "p", "ids": [1, 2], "tags": ["a", "b"], "sep": ["x", "y"], "name": "n"})
    assert request.query == [("ids", "1,2"), ("tags", "a"), ("tags", "b"), ("sep", "x|y")]
    assert orjson.loads(request.body) == {"name": "n"}

    upload = tools["upload_photo"]
    assert upload.input_schema["required"] == ["id", "file"]
    request = call(upload, {"id": "p", "file": {"content": base64.b64encode(b"img").decode()}, "note": "hi"})
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b"img" in request.body and b'name="note"' in request.body

    login = tools["login"]
    request = call(login, {"limit": 5, "user": "u"})
    assert request.query == [("limit", "5")]
    assert parse_qsl(request.body.decode()) == [("user", "u")]
    assert login.output_schema is None


@pytest.mark.corpus
def test_every_shared_swagger_2_spec_loads() -> None:
    for path in sorted((SHARED_SPECS / "oas-examples" / "2.0").glob("*.json")):
        result = load(path)
        assert result.tools and len(result.tools) + len(result.skipped) == result.operations, path


def test_multi_file_refs_resolve_relative_to_their_document() -> None:
    result = load(SPECS / "multi" / "main.yaml", base_url=None, tool_prefix="")
    assert result.base_url == "http://127.0.0.1:9/api"
    tools = {t.name: t for t in result.tools}
    add = tools["add_pet"]
    assert list(add.input_schema["properties"]) == ["name", "owner"]  # id is readOnly
    owner = add.input_schema["properties"]["owner"]
    assert owner["properties"]["pets"]["items"] == {
        "type": "object",
        "description": "Pet: recursive structure, not expanded further.",
    }
    odd = tools["odd"]  # `#/components/parameters/a~1b~0c` is the parameter named `a/b~c`
    assert odd.input_schema["properties"]["odd"] == {"type": ["string", "null"]}
    assert "id" in odd.output_schema["properties"]
    jsonschema_rs.validator_for(add.input_schema)


def test_discriminators_are_kept_and_one_of_becomes_any_of(tmp_path) -> None:
    schemas = {
        "Cat": {"type": "object", "properties": {"kind": {"type": "string"}, "purrs": {"type": "boolean"}}},
        "Dog": {"type": "object", "properties": {"kind": {"type": "string"}, "barks": {"type": "boolean"}}},
        "Pet": {
            "oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
            "discriminator": {"propertyName": "kind", "mapping": {"cat": "#/components/schemas/Cat"}},
        },
    }
    body = {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}
    spec = minimal_spec({"/pets": {"post": {"requestBody": body, "responses": OK}}}, components={"schemas": schemas})
    tool = load(spec, tmp_path).tools[0]
    pet = tool.input_schema["properties"]["body"]
    assert pet["discriminator"]["propertyName"] == "kind"
    # advertised as anyOf (see docs/openapi.md), each alternative with the discriminator value that selects it;
    # validated as oneOf, which the pinned values make exact
    assert [set(s["properties"]) for s in pet["anyOf"]] == [{"kind", "purrs"}, {"kind", "barks"}]
    assert [s["properties"]["kind"] for s in pet["anyOf"]] == [
        {"type": "string", "enum": ["cat"]},
        {"type": "string", "enum": ["Dog"]},
    ]
    assert all(s["required"] == ["kind"] for s in pet["anyOf"])
    with pytest.raises(ArgumentError, match="argument 'body'"):
        tool.validate({"body": {"kind": "Cat", "purrs": True}})
    assert orjson.loads(call(tool, {"body": {"kind": "cat", "purrs": True}}).body) == {"kind": "cat", "purrs": True}


def test_all_of_with_conflicts_is_kept_as_all_of(tmp_path) -> None:
    schema = {"allOf": [{"type": "object"}, {"type": "string"}]}
    param = {"name": "x", "in": "query", "schema": schema}
    tool = load(minimal_spec({"/a": {"get": {"parameters": [param], "responses": OK}}}), tmp_path).tools[0]
    assert tool.input_schema["properties"]["x"] == schema


@pytest.mark.corpus
def test_31_schemas_keep_their_types() -> None:
    tools = tools_by_name(SHARED_SPECS / "oas-examples" / "3.1" / "schema-types.json")
    text = json.dumps([t.input_schema for t in tools.values()])
    assert '"null"' in text
    for tool in tools.values():
        jsonschema_rs.validator_for(tool.input_schema)
