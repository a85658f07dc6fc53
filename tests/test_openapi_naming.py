import re

import pytest

from mcp_anything.config import ConfigError
from mcp_anything.openapi.naming import argument_name, path_slug, shorten, snake_case
from tests.support.openapi import minimal_spec, tools_by_name

OK = {"200": {"description": "ok"}}


@pytest.mark.parametrize(
    ("operation_id", "expected"),
    [
        ("getPetById", "get_pet_by_id"),
        ("list-pets", "list_pets"),
        ("HTTPServer", "http_server"),
        ("getHTTPServerStatus", "get_http_server_status"),
        ("pets.list", "pets_list"),
        ("list all pets", "list_all_pets"),
        ("ListAccount", "list_account"),
        ("getV2Pets", "get_v2_pets"),
        ("__weird__--name", "weird_name"),
    ],
)
def test_snake_case(operation_id: str, expected: str) -> None:
    assert snake_case(operation_id) == expected


def test_path_slug() -> None:
    assert path_slug("GET", "/pets/{petId}/photos") == "get_pets_pet_id_photos"
    assert path_slug("DELETE", "/") == "delete_root"


def test_long_names_are_shortened_on_word_boundaries_with_a_stable_hash() -> None:
    name = "pets_" + "_".join(["really_long_operation_name"] * 4)
    short = shorten(name)
    assert len(short) <= 64
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", short)
    assert short == shorten(name)
    words, suffix = short.rsplit("_", 1)
    assert name.startswith(words + "_") and re.fullmatch(r"[0-9a-f]{6}", suffix)
    assert shorten(name + "_x") != short
    assert shorten("short_name") == "short_name"
    assert len(shorten("x" * 100)) == 64


def test_argument_names_are_valid_keys() -> None:
    assert argument_name("petId") == "petId"
    assert argument_name("StartTime<") == "StartTime_lt"
    assert argument_name("StartTime>=") == "StartTime_gte"
    assert argument_name("filter[name]") == "filter_name"
    assert argument_name("$$$") == "arg"


def test_tool_names_from_extensions_operation_ids_and_paths(tmp_path) -> None:
    spec = minimal_spec(
        {
            "/pets/{petId}": {
                "get": {"operationId": "getPetById", "responses": OK},
                "delete": {"x-mcp-name": "remove", "operationId": "deletePet", "responses": OK},
                "put": {"responses": OK},
            },
            "/very/long/" + "/".join(["segment"] * 20): {"get": {"responses": OK}},
        }
    )
    names = set(tools_by_name(spec, tmp_path))
    assert {"pets_get_pet_by_id", "pets_remove", "pets_put_pets_pet_id"} <= names
    long_name = next(n for n in names if n.startswith("pets_get_very_long"))
    assert len(long_name) <= 64 and re.search(r"_segment_[0-9a-f]{6}$", long_name)
    assert set(tools_by_name(spec, tmp_path, tool_prefix="")) >= {"get_pet_by_id", "remove"}


def test_a_name_clash_is_an_error_naming_both_operations(tmp_path) -> None:
    spec = minimal_spec(
        {
            "/a": {"get": {"operationId": "pets_x", "responses": OK}},
            "/b": {"get": {"x-mcp-name": "pets_x", "responses": OK}},
        }
    )
    with pytest.raises(ConfigError) as error:
        tools_by_name(spec, tmp_path, tool_prefix="")
    assert error.value.problems == ["upstreams[0]: operations GET /a and GET /b both become tool pets_x"]


def test_an_invalid_explicit_name_is_an_error(tmp_path) -> None:
    spec = minimal_spec({"/a": {"get": {"x-mcp-name": "no spaces please", "responses": OK}}})
    with pytest.raises(ConfigError, match=r"upstreams\[0\]\.openapi\.source: GET /a: x-mcp-name 'no spaces please'"):
        tools_by_name(spec, tmp_path)
