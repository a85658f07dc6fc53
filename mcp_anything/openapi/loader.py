"""Loading one upstream's spec and building its tools.

`load_upstream_tools` reads an upstream's spec (file or URL, JSON or YAML), resolves its
`$ref`s and turns every operation into a fully built `Tool`. Every problem is reported
as a `ConfigError` line that starts with the config key it belongs to.

Operation extensions honoured: `x-mcp-name`, `x-mcp-description`, `x-mcp-hidden: true`
(no tool), `x-mcp-auth-required: false` (no outbound credentials), `x-mcp-annotations`,
`x-mcp-keywords` (words tool search matches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_anything.config import Config, ConfigError, UpstreamConfig
from mcp_anything.openapi import swagger2
from mcp_anything.openapi.documents import Documents, FetchError, SpecError, source_uri
from mcp_anything.openapi.naming import without_prefix
from mcp_anything.openapi.operations import (
    METHODS,
    RESERVED_HEADERS,
    Operation,
    build_tool,
    tool_name,
)
from mcp_anything.openapi.overlays import apply_overlay, load_overlay
from mcp_anything.openapi.schemas import Schemas
from mcp_anything.openapi.select import Selection
from mcp_anything.openapi.servers import base_url
from mcp_anything.openapi.validation import SchemaCompiler
from mcp_anything.tools import Tool


class SpecUnavailable(ConfigError):
    """The spec's URL could not be fetched: unlike every other spec problem, this one may go away."""


@dataclass
class UpstreamTools:
    tools: list[Tool]
    base_url: str
    operations: int  # operations seen in the spec
    skipped: list[tuple[str, str]] = field(default_factory=list)  # ("GET /x", reason): operations without a tool


def load_upstream_tools(upstream: UpstreamConfig, root: Config, location: str) -> UpstreamTools:
    """Build the tools of one upstream; raise ConfigError naming every problem."""
    source_key = f"{location}.openapi.source"
    documents, spec = _load(upstream, root, location)
    problems: list[str] = []
    try:
        url = base_url(spec, upstream, documents.root_uri)
    except SpecError as exc:
        problems.append(f"{location}.base_url: {exc}")
        url = ""

    operations = _operations(spec, documents, problems, source_key)
    selection = Selection(upstream.include, upstream.exclude)
    schemas = Schemas(documents)
    compile_schema = SchemaCompiler()
    reserved = RESERVED_HEADERS | {h.lower() for h in upstream.headers}
    tools: list[Tool] = []
    skipped: list[tuple[str, str]] = []
    owner: dict[str, Operation] = {}
    for operation in operations:
        reason = selection.reason_to_skip(operation)
        if reason is None and operation.node.get("x-mcp-hidden") is True:
            reason = "x-mcp-hidden"
        if reason is not None:
            skipped.append((operation.label, reason))
            continue
        try:
            name = tool_name(operation, upstream.prefix)
            if name in owner:
                problems.append(
                    f"{location}: operations {owner[name].label} and {operation.label} both become tool {name}"
                )
                continue
            owner[name] = operation
            base_name = without_prefix(upstream.prefix, name)
            tools.append(
                build_tool(
                    operation,
                    name,
                    base_name,
                    upstream.name,
                    schemas,
                    reserved,
                    compile_schema,
                    upstream.output_schemas,
                )
            )
        except SpecError as exc:
            problems.append(f"{source_key}: {operation.label}: {exc}")
    problems += [f"{location}.{key}: {message}" for key, message in selection.unused()]
    if problems:
        raise ConfigError(problems)
    return UpstreamTools(tools=tools, base_url=url, operations=len(operations), skipped=skipped)


def _load(upstream: UpstreamConfig, root: Config, location: str) -> tuple[Documents, dict[str, Any]]:
    """The spec after overlays, in the 3.x model; its documents for resolving `$ref`s."""
    key = f"{location}.openapi.source"
    source = upstream.openapi.source
    uri = source_uri(source, root.resolve_path)
    if uri.startswith("file:") and not Path(root.resolve_path(source)).is_file():
        raise ConfigError([f"{key}: file not found: {source}"])
    headers = {name: value.get_secret_value() for name, value in upstream.openapi.headers.items()}
    documents = Documents(uri, headers)
    try:
        spec = documents.load(uri)
    except FetchError as exc:
        raise SpecUnavailable([f"{key}: {exc}"]) from None
    except SpecError as exc:
        raise ConfigError([f"{key}: {exc}"]) from None
    if upstream.overlays:
        spec = _apply_overlays(spec, upstream, root, location)
        documents.set(uri, spec)
    problem = _not_openapi(spec)
    if problem:
        raise ConfigError([f"{key}: not a valid OpenAPI document: {problem}"])
    if "swagger" in spec:
        spec = swagger2.convert(spec)
        documents.set(uri, spec)
    return documents, spec


def _apply_overlays(spec: Any, upstream: UpstreamConfig, root: Config, location: str) -> Any:
    problems = []
    for i, name in enumerate(upstream.overlays):
        key = f"{location}.overlays[{i}]: {name}"
        try:
            overlay = load_overlay(root.resolve_path(name))
        except SpecError as exc:
            problems.append(f"{key}: {exc}")
            continue
        spec, found = apply_overlay(spec, overlay)
        problems += [f"{key}: {problem}" for problem in found]
    if problems:
        raise ConfigError(problems)
    return spec


def _not_openapi(spec: Any) -> str | None:
    if not isinstance(spec, dict):
        return f"expected a mapping at the top level, got {type(spec).__name__}"
    if "swagger" in spec:
        if str(spec["swagger"]) != "2.0":
            return f"unsupported Swagger version {spec['swagger']!r}; expected 2.0"
        return None if isinstance(spec.get("paths", {}), dict) else "`paths` must be a mapping"
    version = spec.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        return "missing `openapi: 3.x` version field"
    if not isinstance(spec.get("paths", {}), dict):
        return "`paths` must be a mapping"
    return None


def _operations(spec: dict[str, Any], documents: Documents, problems: list[str], key: str) -> list[Operation]:
    operations = []
    for path, item in (spec.get("paths") or {}).items():
        uri = documents.root_uri
        if isinstance(item, dict) and "$ref" in item:  # a path item kept in another file
            try:
                item, uri, _ = documents.resolve(item["$ref"], uri)
            except SpecError as exc:
                problems.append(f"{key}: paths.{path}: {exc}")
                continue
        if not isinstance(item, dict):
            problems.append(f"{key}: paths.{path}: expected a mapping")
            continue
        shared = item.get("parameters") or []
        for method in METHODS:
            node = item.get(method)
            if isinstance(node, dict):
                operations.append(Operation(method.upper(), str(path), node, uri, shared))
    return operations
