"""A group's discovery, built once per load: its mode, search index, search entries and pinned tools.

In search mode `tools/list` shows the pinned tools plus the gateway's `search_tools` and
`call_tool`; `search_tools` answers from the index, filtered to what the caller may use. The
index, the entries and the gateway tools' definitions are built here when the tools are
(at load, on reload, when a late spec loads), never per request.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

import orjson

from mcp_anything.config import CALL_TOOL, SEARCH_TOOLS, DiscoveryConfig
from mcp_anything.openapi.validation import ArgumentValidator, SchemaCompiler
from mcp_anything.tools import Tool

if TYPE_CHECKING:
    from mcp_anything.discovery.index import SearchIndex

MAX_QUERY_CHARS = 500
MAX_LIMIT = 50
TEXT_DESCRIPTION_CHARS = 160  # each result's description in the text rendering


def _search_tools_definition(max_results: int) -> dict[str, Any]:
    return {
        "name": SEARCH_TOOLS,
        "description": (
            "Find the tools for a task among this server's tools. Describe the task in plain words "
            '("create a project", "who is on a team"); the answer lists the best matching tools, best first, '
            "each with its inputSchema. Then call one: with call_tool, or directly by its name."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_QUERY_CHARS,
                    "description": "The task, in plain words.",
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "description": f"How many tools at most (default {max_results}).",
                },
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        "outputSchema": {
            "type": "object",
            "properties": {"tools": {"type": "array", "items": {"type": "object"}}, "query": {"type": "string"}},
            "required": ["tools", "query"],
        },
        "annotations": {"title": "Search tools", "readOnlyHint": True, "openWorldHint": False},
    }


CALL_TOOL_DEFINITION: dict[str, Any] = {
    "name": CALL_TOOL,
    "description": "Call a tool that search_tools found, by its name, with arguments matching its inputSchema.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 128, "description": "The tool's name."},
            "arguments": {"type": "object", "description": "The tool's arguments."},
        },
        "required": ["name"],
        "additionalProperties": False,
    },
    "annotations": {"title": "Call a tool", "openWorldHint": True},
}


class Catalog:
    """Immutable once built; one per group and load, shared by every request."""

    def __init__(self, config: DiscoveryConfig, tools: Mapping[str, Tool]) -> None:
        self.config = config
        self.index: SearchIndex | None = None
        self.entries: dict[str, orjson.Fragment] = {}
        self.lines: dict[str, str] = {}  # each tool's line in the text rendering of search results
        self.pinned: frozenset[str] = frozenset()
        self.gateway_tools: list[orjson.Fragment] = []
        self.validators: dict[str, ArgumentValidator] = {}
        if not (config.mode == "search" or (config.mode == "auto" and len(tools) > config.auto_threshold)):
            return  # no caller can get search mode: nothing to build, and no gateway tools
        from mcp_anything.discovery.index import SearchIndex  # bm25s and numpy: only for a group that can search

        self.index = SearchIndex.build(list(tools.values()))
        # What search_tools shows of a tool: its listing without the outputSchema.
        self.entries = {
            name: orjson.Fragment(orjson.dumps({k: v for k, v in tool.definition.items() if k != "outputSchema"}))
            for name, tool in tools.items()
        }
        self.lines = {name: _line(tool) for name, tool in tools.items()}
        self.pinned = frozenset(name for name in tools if any(fnmatchcase(name, p) for p in config.pinned))
        definitions = [_search_tools_definition(config.max_results), CALL_TOOL_DEFINITION]
        self.gateway_tools = [orjson.Fragment(orjson.dumps(d)) for d in definitions]
        compile_schema = SchemaCompiler()
        self.validators = {
            d["name"]: ArgumentValidator(compile_schema(d["inputSchema"]), d["inputSchema"]) for d in definitions
        }

    def searching(self, allowed: int) -> bool:
        """Whether a caller who may use `allowed` tools gets search mode."""
        mode = self.config.mode
        return mode == "search" or (mode == "auto" and allowed > self.config.auto_threshold)

    def search(
        self, query: str, limit: int | None, allowed: Callable[[str], bool] | Container[str] | None
    ) -> dict[str, Any]:
        """The `search_tools` result for `query` among the tools `allowed` (None: all)."""
        assert self.index is not None, "search needs a searchable mode"
        found = self.index.search(query, allowed=allowed, limit=limit or self.config.max_results)
        names = [name for name, _ in found]
        structured = {"tools": [self.entries[name] for name in names], "query": query}
        return {
            "content": [{"type": "text", "text": self._text(query, names)}],
            "structuredContent": structured,
            "isError": False,
        }

    def _text(self, query: str, names: list[str]) -> str:
        if not names:
            return f"No tool matches {query!r}. Try other words for the task."
        lines = [f"Tools for {query!r}, best first (call one with call_tool or by its name):"]
        return "\n".join(lines + [self.lines[name] for name in names])


def _line(tool: Tool) -> str:
    """`- name(argument*, other): description`, * marking the required arguments."""
    summary = " ".join(str(tool.definition.get("description", "")).split())
    if len(summary) > TEXT_DESCRIPTION_CHARS:
        summary = summary[: TEXT_DESCRIPTION_CHARS - 1] + "…"
    schema = tool.definition.get("inputSchema") or {}
    required = set(schema.get("required") or ())
    arguments = ", ".join(a + ("*" if a in required else "") for a in schema.get("properties") or {})
    return f"- {tool.name}({arguments}): {summary}"
