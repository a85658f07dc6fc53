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
    return _Reader().fields(tools)


class _Reader:
    """Reads tools' words once per build: specs share subschemas and repeat parameter descriptions."""

    def __init__(self) -> None:
        self._texts: dict[str, list[str]] = {}
        self._schemas: dict[tuple[int, int], list[str]] = {}

    def fields(self, tools: Sequence[Tool]) -> list[dict[str, list[str]]]:
        return [self._fields(tool) for tool in tools]

    def _terms(self, text: str) -> list[str]:
        if text not in self._texts:
            self._texts[text] = terms(text)
        return self._texts[text]

    def _fields(self, tool: Tool) -> dict[str, list[str]]:
        summary, _, rest = tool.description.strip().partition("\n\n")
        name = " ".join((tool.base_name, tool.operation_id or "", *tool.keywords))
        path = _PATH_PARAM.sub(" ", tool.path)
        return {
            "name": terms(name),
            "summary": [t for text in (summary, *tool.tags, path) for t in self._terms(text)],
            "description": self._terms(rest),
            "arguments": self._schema_terms(tool.input_schema, _NESTING),
        }

    def _schema_terms(self, schema: Any, depth: int) -> list[str]:
        """Terms of an object schema's property names and descriptions, following arrays and combinators."""
        if not isinstance(schema, dict):
            return []
        key = (id(schema), depth)
        if key in self._schemas:
            return self._schemas[key]
        out: list[str] = []
        for combinator in ("allOf", "anyOf", "oneOf"):
            for branch in schema.get(combinator) or ():
                out += self._schema_terms(branch, depth)
        out += self._schema_terms(schema.get("items"), depth)
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for name, sub in properties.items():
                out += self._terms(str(name))
                if isinstance(sub, dict):
                    if isinstance(sub.get("description"), str):
                        out += self._terms(sub["description"])
                    if depth > 0:
                        out += self._schema_terms(sub, depth - 1)
        self._schemas[key] = out
        return out
