import orjson
import pytest

from mcp_anything.tools import ArgumentError
from tests.support.openapi import SPECS, load, minimal_spec, tools_by_name

OK = {"200": {"description": "ok"}}


@pytest.fixture(scope="module")
def pets() -> dict:
    return tools_by_name(SPECS / "pets.yaml")


def call(tool, arguments):
    tool.validate(arguments)
    return tool.build_request(arguments)


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("../admin", "..%2Fadmin"),
        ("a/b", "a%2Fb"),
        ("x?y=1#z", "x%3Fy%3D1%23z"),
        ("%2e%2e", "%252e%252e"),
        ("caf\u00e9 ok", "caf%C3%A9%20ok"),
    ],
)
def test_path_values_stay_in_their_segment(pets, value, segment) -> None:
    request = call(pets["pets_pets_files_get"], {"path": value, "name": "n"})
    assert request.path == f"/files/{segment}/n.json"
    assert request.method == "GET" and request.query == []


@pytest.mark.parametrize("value", [".", "..", ""])
def test_dot_segments_and_empty_values_are_rejected(pets, value) -> None:
    with pytest.raises(ArgumentError, match="argument 'path'"):
        call(pets["pets_pets_files_get"], {"path": value, "name": "n"})


def test_query_header_and_cookie_parameters(pets) -> None:
    request = call(
        pets["pets_list_pets"],
        {"limit": 5, "tags": ["a", "b c"], "includeArchived": False, "X-Request-Id": "r1", "session": "s;1"},
    )
    assert request.path == "/pets"
    assert request.query == [("limit", "5"), ("tags", "a"), ("tags", "b c"), ("includeArchived", "false")]
    assert request.headers == {"X-Request-Id": "r1", "Accept": "application/json"}
    assert request.cookies == {"session": "s%3B1"}
    assert request.body is None


def test_header_values_cannot_inject_lines(pets) -> None:
    with pytest.raises(ArgumentError, match="argument 'X-Request-Id': header values cannot contain control characters"):
        call(pets["pets_list_pets"], {"X-Request-Id": "a\r\nHost: evil"})


def test_content_parameters_are_sent_as_json(pets) -> None:
    request = call(pets["pets_pets_files_get"], {"path": "p", "name": "n", "filter": {"a": 1}})
    assert request.query == [("filter", '{"a":1}')]


def test_flattened_json_body_with_renamed_clashes(pets) -> None:
    request = call(
        pets["pets_http_server_update_pet"], {"petId": 7, "query_petId": "q", "body_petId": 8, "name": "Rex"}
    )
    assert request.method == "PUT" and request.path == "/pets/7"
    assert request.query == [("petId", "q")]
    assert orjson.loads(request.body) == {"petId": 8, "name": "Rex"}
    assert request.headers["Content-Type"] == "application/json"


def test_optional_body_is_left_out_when_no_body_argument_is_given(pets) -> None:
    request = call(pets["pets_http_server_update_pet"], {"petId": 7})
    assert request.body is None and "Content-Type" not in request.headers


def test_whole_body_argument(pets) -> None:
    request = call(pets["pets_post_pets_pet_id_tags"], {"petId": "p", "body": ["x", "y"]})
    assert orjson.loads(request.body) == ["x", "y"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"petId": "abc"}, "argument 'petId': 'abc' is not of type 'integer'"),
        ({}, "missing required argument 'petId'"),
        ({"petId": 1, "foo": 2}, "unknown argument 'foo'"),
    ],
)
def test_invalid_arguments_name_the_argument(pets, arguments, message) -> None:
    with pytest.raises(ArgumentError) as error:
        pets["pets_get_pet_by_id"].validate(arguments)
    assert str(error.value) == message


def test_a_partial_optional_body_needs_its_required_properties(pets) -> None:
    with pytest.raises(ArgumentError, match="'name'"):
        pets["pets_http_server_update_pet"].validate({"petId": 1, "body_petId": 2})


def test_nested_errors_name_the_path_and_huge_values_are_truncated(pets) -> None:
    with pytest.raises(ArgumentError) as error:
        pets["pets_create_pet"].validate({"name": "x", "owner": {"name": "y" * 10_000, "email": 5}})
    assert "argument 'owner.email': 5 is not of type" in str(error.value)
    with pytest.raises(ArgumentError) as error:
        pets["pets_create_pet"].validate({"name": ["z" * 10_000]})
    assert len(str(error.value)) < 400 and "argument 'name'" in str(error.value)


def test_enum_and_bounds_are_enforced(pets) -> None:
    with pytest.raises(ArgumentError, match="argument 'limit'"):
        pets["pets_list_pets"].validate({"X-Request-Id": "r", "limit": 0})
    with pytest.raises(ArgumentError, match="argument 'status'"):
        pets["pets_list_pets"].validate({"X-Request-Id": "r", "status": "lost"})


@pytest.mark.parametrize(
    ("param", "value", "path", "query"),
    [
        ({"in": "path", "style": "simple"}, [1, 2], "/x/1,2", []),
        ({"in": "path", "style": "simple", "explode": True}, {"a": 1, "b": "c/d"}, "/x/a=1,b=c%2Fd", []),
        ({"in": "path", "style": "label"}, ["a", "b"], "/x/.a,b", []),
        ({"in": "path", "style": "label", "explode": True}, ["a", "b"], "/x/.a.b", []),
        ({"in": "path", "style": "matrix"}, 5, "/x/;v=5", []),
        ({"in": "path", "style": "matrix", "explode": True}, [1, 2], "/x/;v=1;v=2", []),
        ({"in": "query"}, [1, 2], "/x", [("v", "1"), ("v", "2")]),
        ({"in": "query", "explode": False}, [1, 2], "/x", [("v", "1,2")]),
        ({"in": "query", "style": "spaceDelimited", "explode": False}, [1, 2], "/x", [("v", "1 2")]),
        ({"in": "query", "style": "pipeDelimited", "explode": False}, [1, 2], "/x", [("v", "1|2")]),
        (
            {"in": "query", "style": "deepObject", "explode": True},
            {"a": 1, "b": True},
            "/x",
            [("v[a]", "1"), ("v[b]", "true")],
        ),
        ({"in": "query"}, {"a": 1}, "/x", [("a", "1")]),
        ({"in": "query", "explode": False}, {"a": 1, "b": 2}, "/x", [("v", "a,1,b,2")]),
        ({"in": "query", "style": "spaceDelimited", "explode": False}, {"a": 1, "b": 2}, "/x", [("v", "a 1 b 2")]),
        ({"in": "query", "style": "pipeDelimited", "explode": False}, {"a": 1, "b": 2}, "/x", [("v", "a|1|b|2")]),
    ],
)
def test_parameter_styles(tmp_path, param, value, path, query) -> None:
    template = "/x/{v}" if param["in"] == "path" else "/x"
    param = {"name": "v", "required": True, "schema": {}, **param}
    tool = load(minimal_spec({template: {"get": {"parameters": [param], "responses": OK}}}), tmp_path).tools[0]
    request = call(tool, {"v": value})
    assert (request.path, request.query) == (path, query)


def test_required_body_properties_missing_from_properties_are_still_arguments(tmp_path) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"]}
    body = {"required": True, "content": {"application/json": {"schema": schema}}}
    tool = load(minimal_spec({"/x": {"post": {"requestBody": body, "responses": OK}}}), tmp_path).tools[0]
    assert tool.input_schema["required"] == ["a", "b"] and "b" in tool.input_schema["properties"]
    assert orjson.loads(call(tool, {"a": "x", "b": [1]}).body) == {"a": "x", "b": [1]}


def test_undeclared_path_template_variables_become_string_arguments(tmp_path) -> None:
    tool = load(minimal_spec({"/x/{id}": {"get": {"responses": OK}}}), tmp_path).tools[0]
    assert tool.input_schema["required"] == ["id"]
    assert call(tool, {"id": "a b"}).path == "/x/a%20b"


def test_json_is_asked_for_when_a_2xx_response_offers_it(pets) -> None:
    assert call(pets["pets_get_tree"], {"depth": 1}).headers == {"Accept": "application/json"}
    assert "Accept" not in call(pets["pets_pets_files_get"], {"path": "p", "name": "n"}).headers  # text/plain


def test_path_parameters_are_declared_non_empty(pets) -> None:
    assert pets["pets_pets_files_get"].input_schema["properties"]["path"] == {"type": "string", "minLength": 1}
    with pytest.raises(ArgumentError, match="argument 'path': '' is shorter than 1 character"):
        pets["pets_pets_files_get"].validate({"path": "", "name": "n"})
