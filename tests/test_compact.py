"""Compact tool definitions: budgets per upstream, the trimming steps in order, full schemas for
validation and output checks, HTML prose as Markdown; on tests/specs/bulky.yaml and the real Asana spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mcp_anything.openapi.compact import DefinitionFitter
from mcp_anything.openapi.markup import markdown
from mcp_anything.tools import ArgumentError, Tool
from tests.support.openapi import SHARED_SPECS, SPECS, load, minimal_spec

ASANA = SHARED_SPECS / "asana" / "asana_oas.yaml"
VALIDATION_KEYWORDS = ("type", "required", "enum", "minimum", "maximum", "maxLength", "minItems", "pattern")


def bulky(**upstream: Any) -> dict[str, Tool]:
    return {tool.name: tool for tool in load(SPECS / "bulky.yaml", tool_prefix="", **upstream).tools}


def size(definition: dict[str, Any]) -> int:
    return len(orjson.dumps(definition))


def keywords(schema: Any, path: str = "") -> set[tuple[str, str]]:
    """Every (path, keyword) of the validation keywords in `schema`, and every property path."""
    found: set[tuple[str, str]] = set()
    if isinstance(schema, dict):
        found |= {(path, k) for k in VALIDATION_KEYWORDS if k in schema}
        for name, sub in (schema.get("properties") or {}).items():
            found |= {(f"{path}.{name}", "property")} | keywords(sub, f"{path}.{name}")
        found |= keywords(schema.get("items"), f"{path}[]")
    return found


def test_entries_within_budget_leave_small_tools_alone() -> None:
    tools = bulky()
    assert tools["ping"].fit is not None and tools["ping"].fit.trimmed == ()
    assert tools["ping"].definition["outputSchema"]["properties"]["ok"]["examples"] == [True]
    for tool in tools.values():
        assert tool.fit is not None and size(tool.definition) == tool.fit.size <= 8192


@pytest.mark.parametrize(
    ("budget", "last_step"),
    [
        (8192, "nested descriptions shortened"),
        (4096, "nested descriptions removed"),
        (2048, "outputSchema collapsed to types from depth 2"),
        (1400, "outputSchema collapsed to types from depth 1"),
        (1024, "outputSchema"),
    ],
)
def test_steps_run_in_order_until_the_entry_fits(budget: int, last_step: str) -> None:
    tool = bulky(max_tool_bytes=budget)["create_report"]
    assert tool.fit is not None
    assert tool.fit.trimmed[0] == "examples" and tool.fit.trimmed[-1] == last_step
    assert not tool.fit.over and size(tool.definition) <= budget
    assert "examples" not in orjson.dumps(tool.definition).decode()
    # Every argument, nested property and validation keyword is still advertised.
    assert keywords(tool.definition["inputSchema"]) == keywords(tool.input_schema)
    assert tool.definition["inputSchema"]["properties"]["title"]["description"] == "The report's *title*."


def test_a_loosened_output_schema_still_accepts_what_the_full_one_accepts() -> None:
    import jsonschema_rs

    tool = bulky(max_tool_bytes=2048)["create_report"]
    advertised = tool.definition["outputSchema"]
    assert advertised["properties"]["author"]["properties"]["team"] == {"type": "object"}
    result = {"id": "r1", "author": {"id": "p", "team": {"id": "t", "lead": {"name": "Ada"}}}}
    assert jsonschema_rs.validator_for(advertised).is_valid(result)
    assert tool.check_output is not None and tool.check_output(result) is None
    # The gateway's own check keeps the full schema: a mismatch deep down is still found.
    wrong = {"id": "r1", "author": {"id": "p", "team": {"lead": {"name": 5}}}}
    assert jsonschema_rs.validator_for(advertised).is_valid(wrong)
    mismatch = tool.check_output(wrong)
    assert mismatch is not None and mismatch.where == "author.team.lead.name"


def test_validation_uses_the_full_input_schema() -> None:
    tool = bulky(max_tool_bytes=1024)["create_report"]
    good = {"title": "Q3", "sections": [{"heading": "Revenue", "rows": [{"label": "North", "value": 7}]}]}
    tool.validate(good)
    bad = {"title": "Q3", "sections": [{"heading": "Revenue", "rows": [{"label": "North", "value": 11}]}]}
    with pytest.raises(ArgumentError, match=r"sections\[0\]\.rows\[0\]\.value"):
        tool.validate(bad)


def test_descriptions_are_markdown_and_bounded() -> None:
    tools = bulky(max_description_chars=80)
    description = tools["create_report"].definition["description"]
    assert len(description) <= 80 and description.endswith("…")
    assert "<p>" not in description and "**report**" in description
    whole = bulky()["create_report"]
    assert whole.description == whole.definition["description"]  # search reads the whole text
    assert "[the guide](https://docs.example.com/r)" in whole.description
    assert "List<String>" in whole.description
    assert tools["create_report"].fit is not None
    assert tools["create_report"].fit.trimmed[0] == "description cut to 80 characters"


def test_html_becomes_markdown_and_other_angle_brackets_stay() -> None:
    assert markdown("<b>Scope:</b> <code>tasks:read</code> &amp; more") == "**Scope:** `tasks:read` & more"
    assert markdown("<ul><li>one</li><li>two</li></ul>") == "- one\n- two"
    assert markdown("Map<String, <task_gid>> and a < b") == "Map<String, <task_gid>> and a < b"
    assert markdown("x<script>alert(1)</script>y") == "xy"
    assert markdown("<table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>") == "A | B\n1 | 2"


def test_an_entry_is_over_budget_only_when_its_input_schema_alone_is(tmp_path: Path) -> None:
    fields = [f"field_number_{i}_with_a_long_name" for i in range(80)]
    spec = minimal_spec(
        {
            "/things": {
                "get": {
                    "operationId": "listThings",
                    "parameters": [
                        {"name": "fields", "in": "query", "schema": {"type": "array", "items": {"enum": fields}}}
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        }
    )
    (tool,) = load(spec, tmp_path, max_tool_bytes=1024).tools
    assert tool.fit is not None and tool.fit.over
    assert tool.definition["inputSchema"]["properties"]["fields"]["items"]["enum"] == fields


def test_the_original_definition_is_never_modified() -> None:
    tool = bulky()["create_report"]
    original = {**tool.definition, "inputSchema": tool.input_schema, "outputSchema": tool.output_schema}
    before = orjson.dumps(original)
    DefinitionFitter(1024, 80).fit(original)
    assert orjson.dumps(original) == before


@pytest.mark.corpus
@pytest.mark.skipif(not ASANA.is_file(), reason="../shared/specs is absent")
def test_every_asana_entry_is_within_budget_or_reported() -> None:
    tools = load(ASANA).tools
    over = [tool for tool in tools if tool.fit is not None and tool.fit.over]
    for tool in tools:
        assert tool.fit is not None and size(tool.definition) == tool.fit.size
        assert tool.fit.size <= 8192 or tool in over
        assert keywords(tool.definition["inputSchema"]) == keywords(tool.input_schema)
    for tool in over:  # over only when the input schema alone is
        assert size({"inputSchema": tool.input_schema}) > 8192
        assert "outputSchema" not in tool.definition
    assert len(over) <= 3
    assert sum(tool.fit.size for tool in tools if tool.fit) < 1_500_000  # from 3.4 MB


@pytest.mark.parametrize("keyword", ["oneOf", "not"])
def test_a_loosened_output_schema_keeps_accepting_results_through_oneof_and_not(tmp_path: Path, keyword: str) -> None:
    import jsonschema_rs

    card = {
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": ["card"]}, "number": {"type": "string"}},
    }
    bank = {
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": ["bank"]}, "iban": {"type": "string"}},
    }
    method = {"oneOf": [card, bank]} if keyword == "oneOf" else {"type": "object", "not": bank}
    status = {"type": "string", "enum": [f"payment_status_number_{i}" for i in range(60)]}
    schema = {
        "type": "object",
        "properties": {"method": method, "payment": {"type": "object", "properties": {"status": status}}},
    }
    spec = minimal_spec(
        {"/payments/{id}": {"get": {
            "operationId": "getPayment",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}},
        }}}
    )  # fmt: skip
    (tool,) = load(spec, tmp_path, max_tool_bytes=1024).tools
    assert tool.fit is not None and any(step.startswith("outputSchema collapsed") for step in tool.fit.trimmed)
    result = {"method": {"kind": "card", "number": "4242"}}
    assert tool.check_output is not None and tool.check_output(result) is None
    advertised = tool.definition.get("outputSchema")
    # Clients check structuredContent against the advertised schema: it must accept what the full one accepts.
    assert advertised is None or jsonschema_rs.validator_for(advertised).is_valid(result)
