import json

import jsonschema_rs
import pytest

from mcp_anything.config import ConfigError
from tests.support.openapi import SHARED_SPECS, SPECS, load, minimal_spec, tools_by_name

OK = {"200": {"description": "ok"}}


@pytest.fixture(scope="module")
def pets() -> dict:
    return tools_by_name(SPECS / "pets.yaml")


def test_parameters_of_every_location_are_arguments(pets) -> None:
    schema = pets["pets_list_pets"].input_schema
    assert list(schema["properties"]) == [
        "limit",
        "tags",
        "includeArchived",
        "status",
        "X-Request-Id",
        "X-Static",
        "session",
    ]
    assert schema["required"] == ["X-Request-Id"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["limit"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    assert schema["properties"]["status"] == {"type": "string", "enum": ["available", "sold"]}


def test_gateway_owned_headers_are_never_arguments(tmp_path) -> None:
    properties = load(SPECS / "pets.yaml", headers={"x-static": "1"}).tools[0].input_schema["properties"]
    assert "Authorization" not in properties and "Host" not in properties and "X-Static" not in properties


def test_path_level_parameters_are_merged_and_clashes_renamed(pets) -> None:
    schema = pets["pets_http_server_update_pet"].input_schema
    assert list(schema["properties"]) == ["petId", "query_petId", "body_petId", "name", "note"]
    assert schema["properties"]["petId"]["description"] == "The pet's id."
    assert schema["properties"]["note"] == {"type": ["string", "null"]}
    # the body is optional: its required properties are required once any body property is given
    assert schema["required"] == ["petId"]
    assert schema["dependentRequired"]["note"] == ["name", "body_petId"]


def test_object_body_is_flattened_without_read_only_properties(pets) -> None:
    schema = pets["pets_create_pet"].input_schema
    assert list(schema["properties"]) == ["name", "status", "secret", "owner"]
    assert schema["required"] == ["name"]
    owner = schema["properties"]["owner"]  # allOf of a $ref and an inline object, merged
    assert owner["type"] == "object" and set(owner["properties"]) == {"name", "email", "since"}
    assert owner["properties"]["email"]["type"] == ["string", "null"]


def test_non_object_body_is_one_body_argument(pets) -> None:
    schema = pets["pets_post_pets_pet_id_tags"].input_schema
    assert schema["properties"]["body"] == {"type": "array", "items": {"type": "string"}}
    assert schema["required"] == ["petId", "body"]


def test_output_schema_object_and_wrapped(pets) -> None:
    pet = pets["pets_get_pet_by_id"]
    assert pet.output_schema["type"] == "object" and pet.output_schema["required"] == ["id", "name"]
    assert "secret" in pet.output_schema["properties"]  # writeOnly: allowed in a response, never required
    assert "id" in pet.output_schema["properties"] and not pet.wraps_result
    listing = pets["pets_list_pets"]
    assert listing.wraps_result
    assert listing.output_schema["required"] == ["result"]
    assert listing.output_schema["properties"]["result"]["type"] == "array"


def test_output_schema_is_omitted_when_uncertain(pets) -> None:
    assert pets["pets_http_server_update_pet"].output_schema is None  # a 204 next to the 200
    assert pets["pets_pets_files_get"].output_schema is None  # text/plain
    assert "outputSchema" not in pets["pets_remove_pet"].definition


def test_recursion_becomes_permissive_after_a_bounded_depth(pets) -> None:
    tree = pets["pets_get_tree"].output_schema
    level2 = tree["properties"]["children"]["items"]
    cut = level2["properties"]["children"]["items"]
    assert cut == {"type": "object", "description": "Node: recursive structure, not expanded further."}


def test_openapi_30_dialect_is_converted(pets) -> None:
    depth = pets["pets_get_tree"].input_schema["properties"]["depth"]
    assert depth == {"type": "integer", "exclusiveMinimum": 0}


def test_annotations(pets) -> None:
    assert pets["pets_list_pets"].annotations == {"readOnlyHint": True}
    assert pets["pets_remove_pet"].annotations == {"destructiveHint": True, "idempotentHint": True}
    assert pets["pets_http_server_update_pet"].annotations == {"idempotentHint": True}
    assert pets["pets_create_pet"].annotations == {}
    assert pets["pets_get_pet_by_id"].annotations == {"readOnlyHint": True, "openWorldHint": False}


def test_extensions(pets) -> None:
    remove = pets["pets_remove_pet"]
    assert remove.description == "Delete a pet for good."
    assert remove.auth_required is False and pets["pets_list_pets"].auth_required is True
    assert pets["pets_list_pets"].description == "List pets\n\nReturns every pet, optionally filtered."
    assert pets["pets_get_pet_by_id"].description == "GET /pets/{petId}"


def test_definition_is_the_tools_list_entry(pets) -> None:
    tool = pets["pets_list_pets"]
    assert set(tool.definition) == {"name", "description", "inputSchema", "annotations", "outputSchema"}
    assert tool.definition["inputSchema"] is tool.input_schema
    json.dumps(tool.definition)


def test_unknown_annotation_keys_are_an_error(tmp_path) -> None:
    spec = minimal_spec({"/a": {"get": {"x-mcp-annotations": {"readOnly": True}, "responses": OK}}})
    with pytest.raises(ConfigError, match=r"x-mcp-annotations: unknown key\(s\) \['readOnly'\]"):
        load(spec, tmp_path)


def test_cyclic_and_mutually_recursive_schemas_stay_small(tmp_path) -> None:
    schemas = {
        "A": {
            "type": "object",
            "properties": {"b": {"$ref": "#/components/schemas/B"}, "a": {"$ref": "#/components/schemas/A"}},
        },
        "B": {
            "type": "object",
            "properties": {"a": {"$ref": "#/components/schemas/A"}, "c": {"$ref": "#/components/schemas/C"}},
        },
        "C": {"$ref": "#/components/schemas/C"},
    }
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}
    spec = minimal_spec({"/a": {"post": {"requestBody": body, "responses": OK}}}, components={"schemas": schemas})
    tool = load(spec, tmp_path).tools[0]
    assert len(json.dumps(tool.input_schema)) < 3000
    jsonschema_rs.validator_for(tool.input_schema)


@pytest.mark.corpus
def test_every_shared_30_and_31_spec_compiles() -> None:
    for version in ("3.0", "3.1"):
        for path in sorted((SHARED_SPECS / "oas-examples" / version).glob("*.json")):
            result = load(path)
            assert len(result.tools) + len(result.skipped) == result.operations, path
            for tool in result.tools:
                if tool.output_schema is not None:
                    jsonschema_rs.validator_for(tool.output_schema)


def test_equal_schemas_compile_once_per_spec() -> None:
    from mcp_anything.openapi.validation import SchemaCompiler

    compile_schema = SchemaCompiler()
    first = compile_schema({"type": "object", "properties": {"a": {"type": "integer"}}})
    same = compile_schema({"properties": {"a": {"type": "integer"}}, "type": "object"})  # key order differs
    other = compile_schema({"type": "object", "properties": {"a": {"type": "string"}}})
    assert first is same
    assert other is not first
    assert first.is_valid({"a": 1}) and not other.is_valid({"a": 1})
