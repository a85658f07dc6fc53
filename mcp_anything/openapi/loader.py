"""Loading one upstream's spec and building its tools.

`load_upstream_tools` reads an upstream's spec (file or URL, JSON or YAML), resolves its
`$ref`s (path items and operation objects may be `$ref`s too, see `reachable`) and turns
every operation into a fully built `Tool`. Every problem is reported as a `ConfigError` line
that starts with the config key it belongs to; whatever a tool approximates is a `Finding`
(`UpstreamTools.findings`).

Operation extensions honoured: `x-mcp-name`, `x-mcp-description`, `x-mcp-hidden: true`
(no tool), `x-mcp-auth-required: false` (no outbound credentials), `x-mcp-annotations`,
`x-mcp-keywords` (words tool search matches), `x-mcp-max-result-bytes` (the result budget).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_anything.config import Config, ConfigError, UpstreamConfig
from mcp_anything.openapi import swagger2
from mcp_anything.openapi.arguments import RESERVED_HEADERS, listed_parameters
from mcp_anything.openapi.compact import DefinitionFitter
from mcp_anything.openapi.documents import Documents, FetchError, SpecError, source_uri
from mcp_anything.openapi.findings import DERIVED_NAME, SERVERS_IGNORED, Finding
from mcp_anything.openapi.naming import without_prefix
from mcp_anything.openapi.operation import METHODS, Operation
from mcp_anything.openapi.operations import build_tool, tool_name
from mcp_anything.openapi.overlays import apply_overlay, load_overlay
from mcp_anything.openapi.reachable import ReachableReferences
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
    findings: list[Finding] = field(default_factory=list)  # what the tools approximate, per operation


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
    references = ReachableReferences(documents)
    reserved = RESERVED_HEADERS | {h.lower() for h in upstream.headers}
    credential_query = upstream.outbound_auth.query
    reserved_query = frozenset() if credential_query is None else frozenset({credential_query.lower()})
    tools: list[Tool] = []
    skipped: list[tuple[str, str]] = []
    findings: list[Finding] = []
    owner: dict[str, Operation] = {}
    for operation in operations:
        reason = selection.reason_to_skip(operation)
        if reason is None and operation.node.get("x-mcp-hidden") is True:
            reason = "x-mcp-hidden"
        if reason is not None:
            skipped.append((operation.label, reason))
            continue
        broken = _check_references(operation, references)
        if broken:
            problems += [f"{source_key}: {operation.title}: {problem}" for problem in broken]
            continue
        try:
            name = tool_name(operation, upstream.prefix)
            if "x-mcp-name" not in operation.node and not operation.node.get("operationId"):
                operation.note(
                    DERIVED_NAME, f"no operationId: the tool's name {name} is derived from the method and path"
                )
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
                    reserved_query,
                    compile_schema,
                    upstream.output_schemas,
                    int(upstream.max_result_bytes),
                )
            )
        except SpecError as exc:
            problems.append(f"{source_key}: {operation.title}: {exc}")
            continue
        findings += [Finding.of(operation.title, note, name) for note in dict.fromkeys(operation.notes)]
    problems += [f"{location}.{key}: {message}" for key, message in selection.unused()]
    if problems:
        raise ConfigError(problems)
    fitter = DefinitionFitter(int(upstream.max_tool_bytes), upstream.max_description_chars)
    for tool in tools:
        fitter.fit_tool(tool)
    return UpstreamTools(tools=tools, base_url=url, operations=len(operations), skipped=skipped, findings=findings)


def _check_references(operation: Operation, references: ReachableReferences) -> list[str]:
    """Every reference the operation reaches resolves (else the problems); lenient ones become notes."""
    broken, notes = references.check(operation.node, operation.base)
    for parameter, base in operation.shared_parameters:
        more, more_notes = references.check(parameter, base)
        broken += more
        notes += more_notes
    operation.notes += notes
    return [str(problem) for problem in dict.fromkeys(broken)]


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
        unconvertible = swagger2.unconvertible(spec)
        if unconvertible:
            raise ConfigError([f"{key}: {problem}; bundle the spec into one file" for problem in unconvertible])
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
    """Every operation, with path items and operation objects given as `$ref`s (chains, other files) followed."""
    operations = []
    for path, raw in (spec.get("paths") or {}).items():
        try:
            item, item_base = documents.follow(raw, documents.root_uri)
            if not isinstance(item, dict):
                raise SpecError("expected a mapping")
            shared = listed_parameters(item.get("parameters"), item_base, documents)
        except SpecError as exc:
            problems.append(f"{key}: paths.{path}: {exc}")
            continue
        for method in METHODS:
            if method not in item:
                continue
            try:
                node, base = documents.follow(item[method], item_base)
            except SpecError as exc:
                problems.append(f"{key}: paths.{path}.{method}: {exc}")
                continue
            if not isinstance(node, dict):
                problems.append(f"{key}: paths.{path}.{method}: expected an operation object")
                continue
            operation = Operation(method.upper(), str(path), node, base, shared)
            for where, servers in (("path item", item.get("servers")), ("operation", node.get("servers"))):
                if servers and servers != spec.get("servers"):
                    operation.note(
                        SERVERS_IGNORED, f"the {where}'s own servers are not used; calls go to the base URL", True
                    )
            operations.append(operation)
    return operations
