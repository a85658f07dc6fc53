"""Every spec loads, and whatever its tools approximate is a finding (none is silent).

The real specs in ../shared/specs (marked `corpus`: skipped when absent) and the specs of the tests.

Each tool is audited against its operation as the spec wrote it, independently of how the
loader built it: its name, description, every declared parameter, the request body and the
2xx result schema, and whether a schema was cut. Anything missing must be explained by a
finding on that operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from mcp_anything.openapi import findings as kinds
from mcp_anything.openapi import swagger2
from mcp_anything.openapi.documents import Documents
from mcp_anything.openapi.loader import UpstreamTools
from mcp_anything.openapi.naming import argument_name
from mcp_anything.tools import Tool
from tests.support.openapi import SHARED_SPECS, SPECS, load

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
STYLES = {
    "path": {"simple", "label", "matrix"},
    "query": {"form", "spaceDelimited", "pipeDelimited", "deepObject"},
    "header": {"simple"},
    "cookie": {"form"},
}
CUT = ("not expanded further", "too large to inline")


def _specs() -> list[Path]:
    if not SHARED_SPECS.is_dir():
        return []
    suffixes = {".json", ".yaml", ".yml"}
    return sorted(p for p in SHARED_SPECS.rglob("*") if p.suffix in suffixes and "LICENSE" not in p.name)


def _operations(documents: Documents) -> Iterator[tuple[str, str, dict[str, Any], str, list[tuple[Any, str]]]]:
    """(METHOD, path, operation, its document, path-item parameters) as written, `$ref`s followed."""
    spec = documents.load(documents.root_uri)
    for path, raw in (spec.get("paths") or {}).items():
        item, item_base = documents.follow(raw, documents.root_uri)
        shared = [(p, item_base) for p in item.get("parameters") or []]
        for method in METHODS:
            if method in item:
                node, base = documents.follow(item[method], item_base)
                yield method.upper(), path, node, base, shared


def _audit(tool: Tool, node: dict[str, Any], base: str, shared: list, documents: Documents, found: set) -> list[str]:
    """What `tool` leaves out of its operation with no finding to say so."""
    silent = []
    has = {kind for kind, _ in found}
    operation_id = node.get("operationId")
    if "x-mcp-name" not in node and not operation_id and kinds.DERIVED_NAME not in has:
        silent.append("derived name")
    if operation_id and tool.operation_id != operation_id:
        silent.append(f"operationId {operation_id!r} lost")
    summary = node.get("summary")
    if isinstance(summary, str) and summary.strip() and summary.strip() not in tool.description:
        silent.append("summary lost")
    arguments = set(tool.input_schema.get("properties", {}))
    parameter_arguments = set()
    own = [(p, base) for p in node.get("parameters") or []]
    for raw, where in [*shared, *own]:
        param, _ = documents.follow(raw, where)
        name, location = param.get("name"), param.get("in")
        if location not in STYLES or not isinstance(name, str):
            if kinds.PARAMETER_DROPPED not in has:
                silent.append(f"invalid parameter {param!r:.60} dropped")
            continue
        expected = argument_name(name)
        kept = {a for a in arguments if a == expected or (a.startswith(f"{location}_") and a.endswith(expected))}
        parameter_arguments |= kept
        dropped = any(kind == kinds.PARAMETER_DROPPED and repr(name) in message for kind, message in found)
        if not kept and not dropped:
            silent.append(f"{location} parameter {name!r} lost")
        style = param.get("style")
        if style is not None and style not in STYLES[location] and kinds.PARAMETER_STYLE not in has:
            silent.append(f"style {style!r} of {name!r} not honoured")
    body, _ = documents.follow(node.get("requestBody"), base)
    if isinstance(body, dict) and body.get("content") and not arguments - parameter_arguments:
        silent.append("request body lost")
    omitted = kinds.OUTPUT_SCHEMA_OMITTED in has
    if _has_success_schema(node, base, documents) and tool.output_schema is None and not omitted:
        silent.append("output schema lost")
    definition = orjson.dumps(tool.definition).decode()
    if any(marker in definition for marker in CUT) and kinds.SCHEMA_LOOSENED not in has:
        silent.append("a schema was cut")
    return silent


def _has_success_schema(node: dict[str, Any], base: str, documents: Documents) -> bool:
    responses, where = documents.follow(node.get("responses"), base)
    for code, raw in (responses or {}).items():
        response, _ = documents.follow(raw, where)
        content = response.get("content") if str(code).startswith("2") and isinstance(response, dict) else None
        if isinstance(content, dict) and any("json" in m and "schema" in (c or {}) for m, c in content.items()):
            return True
    return False


OWN_SPECS = sorted([*SPECS.glob("*.yaml"), SPECS / "split" / "openapi.yaml", SPECS / "multi" / "main.yaml"])


@pytest.mark.slow
@pytest.mark.corpus
@pytest.mark.parametrize("spec", _specs(), ids=lambda p: str(p.relative_to(SHARED_SPECS)))
def test_every_real_spec_loads_and_degrades_nothing_silently(spec: Path) -> None:
    assert _silent(spec) == []


@pytest.mark.parametrize("spec", OWN_SPECS, ids=lambda p: str(p.relative_to(SPECS)))
def test_the_specs_of_the_tests_degrade_nothing_silently(spec: Path) -> None:
    assert _silent(spec) == []


def _silent(spec: Path) -> list[str]:
    """What the tools of `spec` leave out of its operations with no finding to say so."""
    loaded: UpstreamTools = load(spec, base_url="http://127.0.0.1:9")
    documents = Documents(spec.as_uri())
    raw = documents.load(documents.root_uri)
    if "swagger" in raw:  # audited in the OpenAPI 3 model it is converted to
        documents.set(documents.root_uri, swagger2.convert(raw))
    tools = {(t.method, t.path): t for t in loaded.tools}
    skipped = {label for label, _ in loaded.skipped}
    silent = []
    for method, path, node, base, shared in _operations(documents):
        tool = tools.get((method, path))
        if tool is None:
            if f"{method} {path}" not in skipped:
                silent.append(f"{method} {path}: no tool and no reason")
            continue
        found = {(f.kind, f.message) for f in loaded.findings if f.tool == tool.name}
        silent += [f"{method} {path}: {problem}" for problem in _audit(tool, node, base, shared, documents, found)]
    return silent
