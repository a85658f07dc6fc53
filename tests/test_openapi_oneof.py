"""`oneOf` as the spec wrote it: exactly one branch, the discriminator choosing it, errors that say which."""

from __future__ import annotations

import pytest

from mcp_anything.openapi.findings import SCHEMA_UNSATISFIABLE
from mcp_anything.tools import ArgumentError
from tests.support.gateway import GatewayFactory
from tests.support.mcp import mcp_client
from tests.support.openapi import SPECS, load, minimal_spec, tools_by_name
from tests.support.upstream import RecordingUpstream

pytestmark = pytest.mark.anyio
OK = {"200": {"description": "ok"}}


@pytest.fixture(scope="module")
def tools() -> dict:
    return tools_by_name(SPECS / "oneof.yaml", tool_prefix="")


def _problem(tool, arguments: dict) -> str:
    with pytest.raises(ArgumentError) as error:
        tool.validate(arguments)
    return str(error.value)


def test_advertised_as_any_of_with_titled_branches_and_validated_as_one_of(tools) -> None:
    reach = tools["add_contact"].input_schema["properties"]["reach"]
    assert "oneOf" not in reach
    assert [branch.get("title") for branch in reach["anyOf"]] == ["ByEmail", "ByPhone", None]
    pet = tools["add_pet"].input_schema["properties"]["body"]
    assert [branch["title"] for branch in pet["anyOf"]] == ["Cat", "Dog"]
    assert pet["discriminator"]["propertyName"] == "kind"
    tools["add_contact"].validate({"reach": {"email": "a@b.c"}})
    tools["add_pet"].validate({"body": {"kind": "dog"}})


def test_a_value_matching_several_branches_names_them_and_what_tells_them_apart(tools) -> None:
    problem = _problem(tools["add_contact"], {"reach": {"email": "a@b.c", "phone": "555"}})
    assert problem == (
        "argument 'reach' matches 2 of the oneOf branches (ByEmail, ByPhone); exactly one must match: "
        "for ByEmail, leave out phone; for ByPhone, leave out email"
    )


def test_overlapping_branches_without_a_way_out_are_said_to(tmp_path) -> None:
    note = {"note": {"type": "string"}}
    open_object = {"type": "object", "properties": note}
    closed = {"type": "object", "properties": note, "additionalProperties": False}
    body = {"required": True, "content": {"application/json": {"schema": {"oneOf": [open_object, closed]}}}}
    spec = minimal_spec({"/a": {"post": {"operationId": "a", "requestBody": body, "responses": OK}}})
    tool = tools_by_name(spec, tmp_path, tool_prefix="")["a"]
    assert _problem(tool, {"body": {"note": "n"}}).endswith(
        "exactly one must match: for branch 1, add a property branch 2 does not declare"
    )
    same = {"required": True, "content": {"application/json": {"schema": {"oneOf": [open_object, open_object]}}}}
    spec = minimal_spec({"/a": {"post": {"operationId": "a", "requestBody": same, "responses": OK}}})
    loaded = load(spec, tmp_path, tool_prefix="")
    assert _problem(loaded.tools[0], {"body": {}}).endswith(
        "the branches overlap: no change of properties makes it match exactly one"
    )
    (finding,) = loaded.findings  # known at load time: no call can succeed
    assert (finding.kind, finding.changes_calls) == (SCHEMA_UNSATISFIABLE, True)


def test_a_value_matching_no_branch_says_why_for_each(tools) -> None:
    problem = _problem(tools["add_contact"], {"reach": "long text"})
    assert problem.startswith("argument 'reach' matches none of the oneOf branches (ByEmail, ByPhone, branch 3)")
    assert "ByEmail: 'long text' is not of type 'object'" in problem
    assert "branch 3: 'long text' is longer than 3 characters" in problem


def test_the_discriminator_chooses_the_branch(tools) -> None:
    add_pet = tools["add_pet"]
    assert _problem(add_pet, {"body": {"purrs": True}}) == (
        "argument 'body': missing 'kind', which selects the oneOf branch: \"cat\" (Cat), \"dog\" (Dog)"
    )
    assert _problem(add_pet, {"body": {"kind": "cow"}}) == (
        'argument \'body\': kind "cow" selects no oneOf branch; expected "cat" (Cat), "dog" (Dog)'
    )
    assert _problem(add_pet, {"body": {"kind": "cat"}}) == (
        "argument 'body': kind \"cat\" selects Cat, which it does not match: 'purrs' is a required property"
    )


@pytest.mark.slow
async def test_through_the_gateway_an_ambiguous_argument_is_an_error_result_and_never_sent(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    config = {
        "groups": [
            {"name": "default", "endpoint": "/mcp", "upstreams": ["poly"], "inbound_auth": {"strategy": "none"}}
        ],
        "upstreams": [{"name": "poly", "base_url": upstream_url, "openapi": {"source": "oneof.yaml"}}],
    }
    with gateway(config) as url:
        async with mcp_client(url + "/mcp") as client:
            listed = {tool.name: tool for tool in (await client.list_tools()).tools}
            ambiguous = await client.call_tool("poly_add_contact", {"reach": {"email": "e", "phone": "555"}})
            exact = await client.call_tool("poly_add_contact", {"reach": {"phone": "555", "note": "after 5"}})
    assert "anyOf" in listed["poly_add_contact"].input_schema["properties"]["reach"]
    assert ambiguous.is_error is True
    assert "matches 2 of the oneOf branches (ByEmail, ByPhone)" in ambiguous.content[0].text
    assert exact.is_error is False
    assert [r.path for r in upstream.requests] == ["/contacts"]


def test_only_keywords_are_renamed_not_properties_called_one_of(tmp_path) -> None:
    named = {"type": "object", "properties": {"oneOf": {"type": "string"}, "anyOf": {"type": "integer"}}}
    body = {"required": True, "content": {"application/json": {"schema": named}}}
    spec = minimal_spec({"/a": {"post": {"operationId": "a", "requestBody": body, "responses": OK}}})
    tool = tools_by_name(spec, tmp_path, tool_prefix="")["a"]
    assert tool.input_schema["properties"] == {"oneOf": {"type": "string"}, "anyOf": {"type": "integer"}}
    tool.validate({"oneOf": "x", "anyOf": 1})
