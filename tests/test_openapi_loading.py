import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from mcp_anything.config import ConfigError
from tests.support.openapi import SPECS, load, minimal_spec

OK = {"200": {"description": "ok"}}


class _SpecServer(BaseHTTPRequestHandler):
    """Serves files from `root`, records the headers of every request."""

    root: Path
    seen: list[tuple[str, dict[str, str]]]

    def do_GET(self) -> None:
        self.seen.append((self.path, dict(self.headers)))
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_response(404)
            self.end_headers()
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def spec_server(tmp_path) -> Iterator[tuple[str, Path, list]]:
    seen: list = []
    handler = type("Handler", (_SpecServer,), {"root": tmp_path, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", tmp_path, seen
    server.shutdown()
    server.server_close()


def problems(spec, tmp_path=None, **upstream) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load(spec, tmp_path, **upstream)
    return error.value.problems


def test_missing_file_names_the_key_and_the_configured_path() -> None:
    assert problems("specs/nope.yaml") == ["upstreams[0].openapi.source: file not found: specs/nope.yaml"]


def test_not_an_openapi_document(tmp_path) -> None:
    (tmp_path / "x.yaml").write_text("just: [a, mapping]\n")
    assert problems(tmp_path / "x.yaml") == [
        "upstreams[0].openapi.source: not a valid OpenAPI document: missing `openapi: 3.x` version field"
    ]
    (tmp_path / "y.yaml").write_text("{{{ nope")
    assert "is neither valid JSON nor YAML" in problems(tmp_path / "y.yaml")[0]


def test_a_dangling_ref_names_the_operation(tmp_path) -> None:
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Missing"}}}}
    spec = minimal_spec({"/a": {"post": {"requestBody": body, "responses": OK}}})
    assert problems(spec, tmp_path) == [
        f"upstreams[0].openapi.source: POST /a: $ref '#/components/schemas/Missing' in {tmp_path}/spec.yaml"
        " does not resolve: no 'components' at #/components/schemas/Missing"
    ]


def test_yaml_is_read_as_yaml_12(tmp_path) -> None:
    (tmp_path / "s.yaml").write_text(
        """
openapi: 3.0.0
info: {title: t, version: "1"}
paths:
  /a:
    get:
      parameters:
        - {name: since, in: query, schema: {type: string, default: 2020-01-01}}
        - {name: on, in: query, schema: {type: string, enum: [yes, no, true]}}
      responses: {200: {description: ok, content: {application/json: {schema: {type: object}}}}}
"""
    )
    tool = load(tmp_path / "s.yaml").tools[0]
    assert tool.input_schema["properties"]["since"]["default"] == "2020-01-01"
    assert tool.input_schema["properties"]["on"]["enum"] == ["yes", "no", True]
    assert tool.output_schema == {"type": "object"}


def test_base_url_from_servers_with_variables() -> None:
    assert load(SPECS / "pets.yaml", base_url=None).base_url == "https://pets.example.com/v1"
    overridden = load(SPECS / "pets.yaml", base_url=None, server_variables={"scheme": "http", "version": "v2"})
    assert overridden.base_url == "http://pets.example.com/v2"
    assert load(SPECS / "pets.yaml", base_url="http://127.0.0.1:1/api/").base_url == "http://127.0.0.1:1/api"


def test_server_variable_errors() -> None:
    assert problems(SPECS / "pets.yaml", server_variables={"sheme": "http"}) == [
        "upstreams[0].base_url: server_variables ['sheme'] are not declared by the spec's first server "
        "(declared: ['scheme', 'version'])"
    ]
    assert problems(SPECS / "pets.yaml", base_url=None, server_variables={"scheme": "ftp"}) == [
        "upstreams[0].base_url: server variable 'scheme': 'ftp' is not one of ['https', 'http']"
    ]


def test_relative_server_url_needs_base_url_for_a_file(tmp_path) -> None:
    spec = minimal_spec({"/a": {"get": {"responses": OK}}}, servers=[{"url": "/api/v3"}])
    assert problems(spec, tmp_path, base_url=None) == [
        "upstreams[0].base_url: the spec's server URL '/api/v3' is not an absolute http(s) URL; set base_url"
    ]


def test_spec_by_url_with_headers_and_relative_server(spec_server) -> None:
    url, root, seen = spec_server
    spec = minimal_spec({"/a": {"get": {"operationId": "a", "responses": OK}}}, servers=[{"url": "/api/v3"}])
    (root / "spec.json").write_text(json.dumps(spec))
    result = load(f"{url}/spec.json", base_url=None, openapi={"source": f"{url}/spec.json", "headers": {"X-Key": "s3"}})
    assert [t.name for t in result.tools] == ["pets_a"]
    assert result.base_url == f"{url}/api/v3"
    assert seen[0][1]["X-Key"] == "s3"


def test_spec_url_errors_never_show_header_values(spec_server) -> None:
    url, _, _ = spec_server
    found = problems(f"{url}/missing.yaml", openapi={"source": f"{url}/missing.yaml", "headers": {"X-Key": "s3cr3t"}})
    assert found == [f"upstreams[0].openapi.source: fetching {url}/missing.yaml failed: HTTP 404"]


def test_hidden_operations_are_skipped() -> None:
    result = load(SPECS / "pets.yaml")
    assert result.operations == 9 and len(result.tools) == 8
    assert result.skipped == [("POST /admin/reset", "x-mcp-hidden")]


def test_include_and_exclude(tmp_path) -> None:
    ops = {
        "/pets": {"get": {"operationId": "listPets", "tags": ["pets"], "responses": OK}},
        "/admin/users": {"get": {"operationId": "listUsers", "tags": ["admin"], "responses": OK}},
        "/admin/users/{id}": {"delete": {"operationId": "deleteUser", "tags": ["admin"], "responses": OK}},
    }
    spec = minimal_spec(ops)
    result = load(spec, tmp_path, include=["pets", "delete /admin/*"], exclude=["deleteUser"])
    assert [t.name for t in result.tools] == ["pets_list_pets"]
    assert result.skipped == [
        ("GET /admin/users", "not matched by include"),
        ("DELETE /admin/users/{id}", "excluded by 'deleteUser'"),
    ]
    assert [t.name for t in load(spec, tmp_path, exclude=["* /admin/*"]).tools] == ["pets_list_pets"]
    assert problems(spec, tmp_path, exclude=["deleteUsr"]) == [
        "upstreams[0].exclude[0]: 'deleteUsr' matches no operationId, tag or `METHOD /path`"
    ]


def test_yaml_source(tmp_path) -> None:
    (tmp_path / "s.yml").write_text(yaml.safe_dump(minimal_spec({"/a": {"get": {"responses": OK}}})))
    assert [t.name for t in load(tmp_path / "s.yml").tools] == ["pets_get_a"]


def test_a_yaml_alias_bomb_is_refused(tmp_path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        name, previous = chr(97 + i), chr(96 + i)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    assert problems(tmp_path / "bomb.yaml")[0].endswith("YAML aliases expand to more than 20000000 nodes")
