"""The CEL dialect of authorization rules: what a rule's `when` may say, compiled once.

Config validation and the authorizer share this module, so a rule is checked at
load with its location, and compiled there once (the result is cached). It
imports only the CEL library.
"""

from __future__ import annotations

import re
from functools import cache

import cel

VARIABLES = ("jwt", "request", "mcp")
# Names bound by CEL's comprehension macros (`jwt.groups.exists(g, g == "ops")`): not free variables.
_MACRO_BINDING = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")


@cache
def compile_expression(when: str) -> cel.Program:
    """Compile `when`, or raise ValueError saying what is wrong with it (shown as a config error)."""
    try:
        program = cel.compile(when)
    except Exception as exc:  # the binding raises ValueError for syntax errors, other types for the rest
        detail = str(exc).split("ERROR: <input>:", 1)[-1].strip()
        raise ValueError(f"not a valid CEL expression: {detail}") from None
    bound = set(_MACRO_BINDING.findall(when))
    unknown = sorted(set(program.variables()) - bound - set(VARIABLES))
    if unknown:
        raise ValueError(f"unknown variable(s) {unknown} in CEL expression; a rule can use {list(VARIABLES)}")
    return program


def uses_tool(when: str) -> bool:
    """Whether the expression reads `mcp`, so it can only be decided per tool."""
    return "mcp" in compile_expression(when).variables()
