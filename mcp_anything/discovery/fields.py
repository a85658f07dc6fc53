"""The searchable text of a tool, split into fields that are weighted differently.

- `name`: the tool name and operationId split into words, plus the operator's `x-mcp-keywords`;
- `summary`: the first paragraph of the description, the tags and the path's literal segments
  (`/users/{user_gid}/teams` gives users teams; the parameter's words are in `arguments`, being one);
- `description`: the rest of the description;
- `arguments`: argument names and descriptions, and those of body properties two levels down.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from mcp_anything.discovery.text import terms
from mcp_anything.tools import Tool

FIELDS = ("name", "summary", "description", "arguments")
_PATH_PARAM = re.compile(r"\{[^}]*\}")
_NESTING = 2  # levels of body properties below the arguments whose words count


def tool_fields(tools: Sequence[Tool]) -> list[dict[str, list[str]]]:
    """Each tool's terms per field."""
    # Resolved specs share subschemas between operations: read each (subschema, depth) once.
    memo: dict[tuple[int, int], list[str]] = {}
    return [_fields(tool, memo) for tool in tools]


def _fields(tool: Tool, memo: dict[tuple[int, int], list[str]]) -> dict[str, list[str]]:
    summary, _, rest = tool.description.strip().partition("\n\n")
    name = " ".join((tool.base_name, tool.operation_id or "", *tool.keywords))
    return {
        "name": terms(name),
        "summary": terms(summary) + [t for text in (*tool.tags, _PATH_PARAM.sub(" ", tool.path)) for t in terms(text)],
        "description": terms(rest),
        "arguments": _schema_terms(tool.input_schema, _NESTING, memo),
    }


def _schema_terms(schema: Any, depth: int, memo: dict[tuple[int, int], list[str]]) -> list[str]:
    """Terms of an object schema's property names and descriptions, following arrays and combinators."""
    if not isinstance(schema, dict):
        return []
    key = (id(schema), depth)
    if key in memo:
        return memo[key]
    out: list[str] = []
    for combinator in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(combinator) or ():
            out += _schema_terms(branch, depth, memo)
    out += _schema_terms(schema.get("items"), depth, memo)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, sub in properties.items():
            out += terms(str(name))
            if isinstance(sub, dict):
                if isinstance(sub.get("description"), str):
                    out += terms(sub["description"])
                if depth > 0:
                    out += _schema_terms(sub, depth - 1, memo)
    memo[key] = out
    return out
