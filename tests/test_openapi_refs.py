"""`$ref` wherever real specs put one: a spec split over many files builds the same tools as its bundle."""

from __future__ import annotations

import functools
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcp_anything.config import ConfigError
from mcp_anything.openapi.findings import LENIENT_REFERENCE
from tests.support.openapi import SPECS, load, minimal_spec

SPLIT = SPECS / "split"
BUNDLED = SPECS / "split-bundled.yaml"

# Arguments for every tool of the split spec, each through as many of its parts as possible.
CALLS: dict[str, dict[str, Any]] = {
    "things_list": {"per_page": 5, "page": 2, "kind": "gadget"},
    "things_create": {
        "name": "Lamp",
        "kind": "gizmo",
        "tags": [{"label": "new"}],
        "shape": {"shape": "circle", "radius": 2},
    },
    "things_get": {"thing_id": "t-1"},
    "things_delete": {"thing_id": "t-1", "X-Dry-Run": True},
    "get_v2_widgets_widget_id": {"widget_id": 3, "filter": {"color": "red"}},
    "widgets_update": {"widget_id": 3, "color": "red", "size": 2},
    "search": {"q": "lamp", "per_page": 3},
}


def _tools(source: Path | str, **upstream: Any) -> dict[str, Any]:
    return {t.name: t for t in load(source, tool_prefix="", **upstream).tools}


def test_the_split_spec_builds_the_tools_of_its_bundle() -> None:
    split, bundled = _tools(SPLIT / "openapi.yaml"), _tools(BUNDLED)
    assert list(split) == list(bundled) == list(CALLS)
    for name, tool in split.items():
        twin = bundled[name]
        assert tool.definition == twin.definition, name  # name, description, input and output schemas, hints
        assert (tool.description, tool.input_schema, tool.output_schema) == (
            twin.description,
            twin.input_schema,
            twin.output_schema,
        )
        tool.validate(CALLS[name])
        assert tool.build_request(CALLS[name]) == twin.build_request(CALLS[name]), name


def test_operations_given_as_refs_keep_everything() -> None:
    tools = _tools(SPLIT / "openapi.yaml")
    listing = tools["things_list"]
    assert listing.description == "List all things\n\nLists every thing, a page at a time."
    assert listing.tags == ("Things",)
    assert listing.input_schema["properties"]["per_page"]["maximum"] == 200  # a shared parameter file
    assert listing.input_schema["properties"]["page"]["description"] == "Which page."  # a ref to a ref
    assert listing.input_schema["properties"]["kind"]["enum"] == ["gadget", "gizmo"]  # from a sibling folder
    assert listing.output_schema["properties"]["things"]["items"]["required"] == ["name", "kind"]
    created = tools["things_create"].input_schema
    assert created["required"] == ["name", "kind"] and "id" not in created["properties"]  # readOnly left out
    label = created["properties"]["tags"]["items"]["properties"]["label"]
    assert label == {"type": "string", "maxLength": 20}  # `#/components/...` inside a JSON file, `~1` escape
    request = tools["widgets_update"].build_request(CALLS["widgets_update"])
    assert (request.method, request.path, request.body) == ("PATCH", "/v2/widgets/3", b"color=red&size=2")


@pytest.mark.slow
def test_refs_in_a_spec_served_over_http_resolve_against_its_url(tmp_path) -> None:
    root = tmp_path / "site"
    shutil.copytree(SPLIT, root)
    seen: list[tuple[str, str | None]] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("X-Key")))
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/openapi.yaml"
        remote = _tools(url, openapi={"source": url, "headers": {"X-Key": "k"}})
    finally:
        server.shutdown()
        server.server_close()
    local = _tools(SPLIT / "openapi.yaml")
    assert {n: t.definition for n, t in remote.items()} == {n: t.definition for n, t in local.items()}
    assert "/common/models/page%20links.yml" in [path for path, _ in seen]
    assert {key for _, key in seen} == {"k"}  # one origin: the configured headers go to every document


def _write(root: Path, files: dict[str, Any]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(content))
    return root / "openapi.yaml"


def _problems(source: Path) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load(source)
    return error.value.problems


OK = {"200": {"description": "ok"}}


def test_an_unresolvable_ref_fails_the_upstream_naming_the_ref_and_its_document(tmp_path) -> None:
    operation = {
        "operationId": "list",
        "parameters": [{"$ref": "../common/params.yaml#/nope"}],
        "responses": {
            "200": {"description": "ok"},
            # never used to build the tool (an error response, a header): still a broken spec
            "500": {"description": "x", "headers": {"X-Rate": {"$ref": "../common/headers.yaml#/rate"}}},
        },
    }
    source = _write(
        tmp_path,
        {
            "openapi.yaml": minimal_spec({"/a": {"get": {"$ref": "ops/list.yaml"}}}),
            "ops/list.yaml": operation,
            "common/params.yaml": {"yes": {"name": "q", "in": "query"}},
        },
    )
    found = _problems(source)
    assert len(found) == 2
    assert all(p.startswith("upstreams[0].openapi.source: GET /a (list): $ref ") for p in found)
    headers, params = sorted(found)
    assert f"'../common/headers.yaml#/rate' in {tmp_path}/ops/list.yaml does not resolve: file not found" in headers
    assert f"'../common/params.yaml#/nope' in {tmp_path}/ops/list.yaml does not resolve: no 'nope'" in params


def test_an_unresolvable_operation_ref_and_a_ref_cycle_fail(tmp_path) -> None:
    source = _write(
        tmp_path,
        {
            "openapi.yaml": minimal_spec({"/a": {"get": {"$ref": "ops/missing.yaml"}}, "/b": {"$ref": "loop.yaml"}}),
            "loop.yaml": {"$ref": "openapi.yaml#/paths/~1b"},
        },
    )
    found = _problems(source)
    assert found[0].startswith("upstreams[0].openapi.source: paths./a.get: $ref 'ops/missing.yaml' in ")
    assert "file not found" in found[0]
    assert found[1].startswith("upstreams[0].openapi.source: paths./b: $ref cycle at ")


def test_an_example_ref_is_checked_but_example_values_are_data(tmp_path) -> None:
    media = {
        "schema": {"type": "object", "example": {"$ref": "not a reference: data"}},
        "examples": {"one": {"$ref": "examples.yaml#/missing"}},
    }
    body = {"content": {"application/json": media}}
    source = _write(
        tmp_path,
        {
            "openapi.yaml": minimal_spec({"/a": {"post": {"operationId": "a", "requestBody": body, "responses": OK}}}),
            "examples.yaml": {"present": {"value": 1}},
        },
    )
    (problem,) = _problems(source)
    assert "$ref 'examples.yaml#/missing'" in problem


def test_links_and_callbacks_are_not_followed(tmp_path) -> None:
    operation = {
        "operationId": "a",
        "callbacks": {"done": {"$ref": "nowhere.yaml"}},
        "responses": {"200": {"description": "ok", "links": {"next": {"$ref": "nowhere.yaml"}}}},
    }
    tools = load(minimal_spec({"/a": {"get": operation}}), tmp_path).tools
    assert [t.name for t in tools] == ["pets_a"]


def test_a_local_pointer_missing_from_its_file_falls_back_to_the_root_document_as_a_finding(tmp_path) -> None:
    spec = minimal_spec(
        {"/a": {"get": {"$ref": "ops/a.yaml"}}},
        components={"schemas": {"Thing": {"type": "object", "properties": {"id": {"type": "string"}}}}},
    )
    ok = {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}
    source = _write(tmp_path, {"openapi.yaml": spec, "ops/a.yaml": {"operationId": "a", "responses": {"200": ok}}})
    result = load(source)
    assert result.tools[0].output_schema == {"type": "object", "properties": {"id": {"type": "string"}}}
    (finding,) = result.findings
    assert finding.kind == LENIENT_REFERENCE and not finding.changes_calls
    assert "'#/components/schemas/Thing' in a.yaml" in finding.message


def test_a_remote_spec_cannot_reach_a_local_file_through_any_ref(tmp_path) -> None:
    from mcp_anything.openapi.documents import Documents, UnresolvedReference

    documents = Documents("https://example.com/specs/openapi.yaml")
    with pytest.raises(UnresolvedReference, match="remote specs may only reference URLs"):
        documents.resolve(f"file://{SPLIT}/openapi.yaml", "https://example.com/specs/ops/a.yaml")


def test_a_swagger_2_path_item_given_as_a_ref_is_refused_not_left_unconverted(tmp_path) -> None:
    spec = {"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {"/a": {"$ref": "a.yaml"}}}
    source = _write(tmp_path, {"openapi.yaml": spec, "a.yaml": {"get": {"responses": OK}}})
    assert _problems(source) == [
        "upstreams[0].openapi.source: paths./a: a Swagger 2.0 path item or operation given as a $ref is not"
        " supported; bundle the spec into one file"
    ]


def test_a_branch_from_a_whole_file_is_titled_with_the_file_name(tmp_path) -> None:
    body = {"content": {"application/json": {"schema": {"oneOf": [{"$ref": "cat.yaml"}, {"$ref": "./dog.yaml#"}]}}}}
    spec = minimal_spec({"/a": {"post": {"operationId": "a", "requestBody": body, "responses": OK}}})
    source = _write(tmp_path, {"openapi.yaml": spec, "cat.yaml": {"type": "string"}, "dog.yaml": {"type": "integer"}})
    body_schema = load(source).tools[0].input_schema["properties"]["body"]
    assert [branch["title"] for branch in body_schema["anyOf"]] == ["cat", "dog"]


def test_swagger_2_parameters_and_responses_in_other_files(tmp_path) -> None:
    operation = {
        "operationId": "list",
        "parameters": [{"$ref": "common.json#/parameters/ApiVersion"}, {"$ref": "common.json#/parameters/Top"}],
        "responses": {"200": {"$ref": "common.json#/responses/Page"}},
    }
    common = {
        "parameters": {
            "ApiVersion": {"name": "api-version", "in": "query", "required": True, "type": "string"},
            "Top": {
                "name": "$top",
                "in": "query",
                "type": "array",
                "items": {"type": "integer"},
                "collectionFormat": "csv",
            },
        },
        "responses": {"Page": {"description": "ok", "schema": {"type": "object"}}},
    }
    spec = {
        "swagger": "2.0",
        "info": {"title": "t", "version": "1"},
        "host": "example.com",
        "paths": {"/a": {"get": operation}},
    }
    loaded = load(_write(tmp_path, {"openapi.yaml": spec, "common.json": common}))
    tool = loaded.tools[0]
    assert tool.input_schema["properties"]["api-version"] == {"type": "string"}
    assert tool.input_schema["properties"]["top"] == {"type": "array", "items": {"type": "integer"}}
    assert tool.input_schema["required"] == ["api-version"]
    assert tool.build_request({"api-version": "1", "top": [1, 2]}).query == [("api-version", "1"), ("$top", "1,2")]
    (finding,) = loaded.findings  # the response's schema has no media type there: said, not dropped silently
    assert finding.message.startswith("no outputSchema: response 200 is in Swagger 2.0 form")
