"""`groups[].response_filters`: which parts of an upstream's answer each caller may see (`shaping` applies them).

Every semantic check happens on the filter, not on the operation, so a message can name both
the filter (by its notes) and the operation (by its index and notes); pydantic adds the location.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from mcp_anything.config.types import StrictModel

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# `{{ name }}` in a match_value; anything else between braces is left to the regex engine.
VARIABLE_REFERENCE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class ClaimVariable(StrictModel):
    """A filter variable bound to one verified claim of the caller (`sub`, or a dotted path like `org.id`)."""

    claim: str

    @field_validator("claim")
    @classmethod
    def _dotted(cls, claim: str) -> str:
        if not claim or any(not part for part in claim.split(".")):
            raise ValueError(f"expected a claim name or a dotted path like 'org.id', got {claim!r}")
        return claim


class FilterOperation(StrictModel):
    """A field operation (no match_field/match_value) or a row operation (both)."""

    effect: Literal["retain", "destroy"]
    path: str
    match_field: str | None = None
    match_value: str | None = None
    priority: int = 0
    notes: str = ""

    @property
    def is_row(self) -> bool:
        return self.match_field is not None


class ResponseFilter(StrictModel):
    """One entry of a group's `response_filters`."""

    # None: every tool of the group.
    tools: list[str] | None = None
    variables: dict[str, ClaimVariable] = Field(default_factory=dict)
    default: Literal["retain", "destroy"] = "retain"
    notes: str = ""
    operations: list[FilterOperation] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ResponseFilter:
        label = f"response filter ({self.notes!r})" if self.notes else "response filter"
        if self.tools is not None and not self.tools:
            raise ValueError(f"{label}: tools: expected at least one tool name or glob (omit it for every tool)")
        for glob in self.tools or ():
            if not glob.strip():
                raise ValueError(f"{label}: tools: expected tool names or globs like 'shop_*', got an empty string")
        for name in self.variables:
            if not VARIABLE_NAME.match(name):
                raise ValueError(f"{label}: variables: {name!r} is not a valid name (letters, digits, _)")
        for index, operation in enumerate(self.operations):
            where = f"{label} operation {index}" + (f" ({operation.notes!r})" if operation.notes else "")
            _check_regex(where, "path", operation.path)
            if (operation.match_field is None) != (operation.match_value is None):
                given, missing = ("match_field", "match_value")
                if operation.match_field is None:
                    given, missing = missing, given
                raise ValueError(
                    f"{where}: {given} needs {missing} (a row operation has both, a field operation neither)"
                )
            if operation.match_field is not None and operation.match_value is not None:
                _check_regex(where, "match_field", operation.match_field)
                for name in template_variables(operation.match_value):
                    if name not in self.variables:
                        declared = ", ".join(sorted(self.variables)) or "none"
                        raise ValueError(
                            f"{where}: match_value uses {{{{{name}}}}}, which is not a declared variable "
                            f"(declared: {declared})"
                        )
                # A placeholder stands in for the claim value, which is always escaped into a literal.
                _check_regex(where, "match_value", VARIABLE_REFERENCE.sub("x", operation.match_value))
        return self


def template_variables(template: str) -> list[str]:
    """The variable names a match_value refers to, in order of appearance."""
    return VARIABLE_REFERENCE.findall(template)


def _check_regex(where: str, key: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"{where}: {key} {pattern!r} is not a valid regular expression: {error}") from None
