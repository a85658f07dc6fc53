"""Never degrade silently: whatever a tool approximates is a finding on its operation, and the CLI reports it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcp_anything.openapi import findings as kinds
from tests.support.cli import run_cli
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.metrics import scrape
from tests.support.openapi import SPECS, load, minimal_spec

OK = {"200": {"description": "ok"}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _found(spec: dict[str, Any], tmp_path: Path) -> dict[str, set[tuple[str, bool]]]:
    """Findings by operation, as (kind, changes what can be called)."""
    out: dict[str, set[tuple[str, bool]]] = {}
    for finding in load(spec, tmp_path).findings:
        out.setdefault(finding.operation, set()).add((finding.kind, finding.changes_calls))
    return out


def test_parameters_that_cannot_be_sent_as_written(tmp_path) -> None:
    parameters = [
        {"name": "f", "in": "query", "style": "matrix", "schema": {"type": "array", "items": {"type": "string"}}},
        {"name": "u", "in": "query", "allowReserved": True, "schema": {"type": "string"}},
        {"name": "t", "in": "query", "content": {"text/plain": {"schema": {"type": "string"}}}},
        {"name": "Authorization", "in": "header", "schema": {"type": "string"}},
        {"name": "gone", "in": "path", "required": True, "schema": {"type": "string"}},
        {"in": "query", "schema": {"type": "string"}},
    ]
    spec = minimal_spec({"/a/{id}": {"get": {"operationId": "a", "parameters": parameters, "responses": OK}}})
    assert _found(spec, tmp_path) == {
        "GET /a/{id} (a)": {
            (kinds.PARAMETER_STYLE, True),  # matrix in a query; text/plain content sent as JSON text
            (kinds.PARAMETER_STYLE, False),  # allowReserved
            (kinds.PARAMETER_DROPPED, False),  # Authorization; `gone` is not in the path; {id} undeclared
            (kinds.PARAMETER_DROPPED, True),  # no name
        }
    }
    messages = [f.message for f in load(spec, tmp_path).findings]
    assert "query parameter 'f': style 'matrix' is not defined for query; sent as form" in messages
    assert "path parameter {id} is not declared; it takes a string" in messages


def test_bodies_the_gateway_cannot_send_as_declared(tmp_path) -> None:
    xml = {"content": {"application/xml": {"schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}}
    mixed = {"content": {"multipart/mixed": {"schema": {"type": "object"}}}}
    headers = {
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                "encoding": {"a": {"headers": {"X-Part": {"schema": {"type": "string"}}}}},
            }
        }
    }
    paths = {
        f"/{name}": {"post": {"operationId": name, "requestBody": body, "responses": OK}}
        for name, body in (("xml", xml), ("mixed", mixed), ("headers", headers))
    }
    assert _found(minimal_spec(paths), tmp_path) == {
        "POST /xml (xml)": {(kinds.BODY_MEDIA_TYPE, False)},
        "POST /mixed (mixed)": {(kinds.BODY_MEDIA_TYPE, True)},
        "POST /headers (headers)": {(kinds.BODY_MEDIA_TYPE, False)},
    }


def test_schemas_loosened_or_unsatisfiable(tmp_path) -> None:
    schemas = {
        "Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}},
        "Odd": {
            "type": "object",
            "properties": {
                "p": {"type": "string", "pattern": "[z-a]"},
                "t": {"type": "date"},
                "l": {"type": "array", "items": [{"type": "string"}], "additionalItems": False},
            },
        },
    }
    never = {"allOf": [{"type": "string"}, {"type": "integer"}]}
    paths = {
        "/tree": {"get": {"operationId": "tree", "responses": {"200": _json({"$ref": "#/components/schemas/Node"})}}},
        "/odd": {"post": {"operationId": "odd", "requestBody": _json({"$ref": "#/components/schemas/Odd"})}},
        "/never": {"post": {"operationId": "never", "requestBody": {"required": True, **_json(never)}}},
    }
    for item in paths.values():
        item.get("post", {}).setdefault("responses", OK)
    found = load(minimal_spec(paths, components={"schemas": schemas}), tmp_path).findings
    by_operation = {(f.operation, f.kind, f.changes_calls) for f in found}
    assert by_operation == {
        ("GET /tree (tree)", kinds.SCHEMA_LOOSENED, False),
        ("POST /odd (odd)", kinds.SCHEMA_LOOSENED, False),
        ("POST /never (never)", kinds.SCHEMA_UNSATISFIABLE, True),
    }
    odd = sorted(f.message for f in found if f.operation == "POST /odd (odd)")
    assert odd == [
        "#/components/schemas/Odd: 'additionalItems' has no JSON Schema 2020-12 equivalent here; not checked",
        "#/components/schemas/Odd: pattern '[z-a]' is not a regex the validator reads; not checked",
        "#/components/schemas/Odd: type 'date' is not a JSON Schema type; not checked",
    ]


def test_derived_names_ignored_servers_and_omitted_output_schemas(tmp_path) -> None:
    two = {
        "200": {"description": "ok", **_json({"type": "object"})},
        "201": {"description": "made", **_json({"type": "array"})},
    }
    paths = {
        "/plain": {"get": {"responses": OK}},
        "/elsewhere": {"servers": [{"url": "https://other.example"}], "get": {"operationId": "e", "responses": OK}},
        "/two": {"post": {"operationId": "two", "responses": two}},
    }
    assert _found(minimal_spec(paths), tmp_path) == {
        "GET /plain": {(kinds.DERIVED_NAME, False)},
        "GET /elsewhere (e)": {(kinds.SERVERS_IGNORED, True)},
        "POST /two (two)": {(kinds.OUTPUT_SCHEMA_OMITTED, False)},
    }


def test_a_faithful_spec_has_no_findings(tmp_path) -> None:
    operation = {
        "operationId": "get",
        "parameters": [{"name": "q", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "ok", **_json({"type": "object"})}},
    }
    assert load(minimal_spec({"/a": {"get": operation}}), tmp_path).findings == []


def _config(tmp_path: Path, spec: dict[str, Any]) -> str:
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    upstream = {"name": "api", "base_url": "http://127.0.0.1:9", "openapi": {"source": "spec.yaml"}}
    config = {
        "groups": [{"name": "g", "upstreams": ["api"], "inbound_auth": {"strategy": "none"}}],
        "upstreams": [upstream],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_validate_groups_findings_by_operation_and_fails_only_on_those_that_change_calls(tmp_path) -> None:
    harmless = minimal_spec({"/plain": {"get": {"responses": OK}}})
    run = run_cli("validate", "--config", _config(tmp_path, harmless))
    assert run.returncode == 0, run.stderr
    assert "  GET /plain:\n    derived_name: no operationId" in run.stdout
    assert "config OK (1 finding(s))" in run.stdout
    strict = run_cli("validate", "--strict", "--config", _config(tmp_path, harmless))
    assert strict.returncode == 1 and "1 finding(s)" in strict.stderr

    param = {"name": "f", "in": "query", "style": "matrix", "schema": {"type": "string"}}
    changing = minimal_spec({"/a": {"get": {"operationId": "a", "parameters": [param], "responses": OK}}})
    run = run_cli("validate", "--config", _config(tmp_path, changing))
    assert run.returncode == 1
    assert "  GET /a (a):\n    parameter_style (changes what can be called): query parameter 'f'" in run.stdout
    assert "1 finding(s) that change what can be called" in run.stderr


def test_tools_report_lists_what_each_tool_approximates(tmp_path) -> None:
    spec = minimal_spec({"/plain": {"get": {"responses": OK}}, "/b": {"get": {"operationId": "b", "responses": OK}}})
    run = run_cli("tools", "--report", "--config", _config(tmp_path, spec))
    assert run.returncode == 0, run.stderr
    report = run.stdout.split("What each tool approximates", 1)[1].split("\n\n", 1)[0].splitlines()
    assert report[1] == "g:"
    assert [line.split()[:2] for line in report[2:]] == [["api_get_plain", "derived_name"]]


@pytest.mark.slow
@pytest.mark.anyio
async def test_serve_logs_each_finding_once_and_exports_their_count(
    gateway: GatewayFactory, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    expected = {f for f in load(SPECS / "echo.yaml").findings}
    assert expected  # echo.yaml has a derived name and a header parameter the gateway owns
    with caplog.at_level(logging.WARNING, logger="mcp_anything.openapi"), gateway(echo_config(upstream_url)) as url:
        scraped = await scrape(url)
    logged = [r for r in caplog.records if r.getMessage().startswith("spec finding: ")]
    assert sorted(r.fields["operation"] for r in logged) == sorted(f.operation for f in expected)
    assert {r.fields["upstream"] for r in logged} == {"echo"}
    assert {(r.fields["kind"], r.fields["changes_calls"]) for r in logged} == {
        (kinds.DERIVED_NAME, False),
        (kinds.PARAMETER_DROPPED, False),
    }
    for kind in (kinds.DERIVED_NAME, kinds.PARAMETER_DROPPED):
        assert scraped.value("mcp_anything_spec_findings", upstream="echo", kind=kind, changes_calls="false") == 1
