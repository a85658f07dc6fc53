"""The searchable text of a tool, split into fields that are weighted differently.

- `name`: the tool name and operationId split into words, plus the operator's `x-mcp-keywords`;
- `summary`: the first paragraph of the description, the tags and the path's segments
  (`/users/{user_gid}/teams` gives users user gid teams);
- `description`: the rest of the description;
- `arguments`: argument names and descriptions, and those of body properties two levels down.
"""

from __future__ import annotations

from typing import Any

from mcp_anything.discovery.text import terms
from mcp_anything.tools import Tool

FIELDS = ("name", "summary", "description", "arguments")
_NESTING = 2  # levels of body properties below the arguments whose words count


def tool_fields(tool: Tool) -> dict[str, list[str]]:
    summary, _, rest = tool.description.strip().partition("\n\n")
    name = " ".join((tool.base_name, tool.operation_id or "", *tool.keywords))
    return {
        "name": terms(name),
        "summary": terms(" ".join((summary, *tool.tags, tool.path))),
        "description": terms(rest),
        "arguments": terms(" ".join(_schema_words(tool.input_schema, _NESTING))),
    }


def _schema_words(schema: Any, depth: int) -> list[str]:
    """Property names and descriptions of an object schema, following arrays and combinators."""
    if not isinstance(schema, dict):
        return []
    out: list[str] = []
    for key in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(key) or ():
            out += _schema_words(branch, depth)
    if isinstance(schema.get("items"), dict):
        out += _schema_words(schema["items"], depth)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, sub in properties.items():
            out.append(str(name))
            if isinstance(sub, dict):
                if isinstance(sub.get("description"), str):
                    out.append(sub["description"])
                if depth > 0:
                    out += _schema_words(sub, depth - 1)
    return out
