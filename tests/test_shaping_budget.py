"""Result budgets: structural cuts of JSON, UTF-8-safe cuts of text, and the note that says how to ask for less."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest

from mcp_anything.config import ConfigError
from mcp_anything.shaping import ResultBudget, cut_json, cut_text, min_items_by_path, narrowing_arguments
from tests.support.openapi import SPECS, load, minimal_spec, tools_by_name

BUDGET = 64 * 1024


def size(value: Any) -> int:
    return len(orjson.dumps(value))


def test_five_megabytes_cut_to_the_budget_with_a_useful_note() -> None:
    items = [{"id": n, "name": f"item {n}", "tags": ["a", "b"], "price": n / 10} for n in range(80_000)]
    value = {"data": items, "has_more": True, "object": "list"}
    assert size(value) > 5_000_000
    before = copy.deepcopy(value)
    narrowing = narrowing_arguments(["customer", "limit", "starting_after", "ending_before", "created", "expand"])
    result = cut_json(value, BUDGET, narrowing)
    assert result.fits
    assert BUDGET - 200 < size(result.value) <= BUDGET
    kept = len(result.value["data"])
    assert result.value["data"] == items[:kept]
    assert result.value["has_more"] is True and result.value["object"] == "list"
    assert value == before
    assert [(o.path, o.left_out, o.total) for o in result.omissions] == [("data", 80_000 - kept, 80_000)]
    assert result.note is not None
    assert f"{80_000 - kept} of 80000 items of `data`" in result.note
    assert "limit, starting_after, ending_before" in result.note
    assert "customer" not in result.note


def test_within_budget_is_untouched() -> None:
    value = {"data": [1, 2, 3]}
    result = cut_json(value, BUDGET)
    assert result.value is value and result.note is None and result.fits


def test_top_level_array() -> None:
    value = [{"n": n, "pad": "x" * 100} for n in range(1000)]
    result = cut_json(value, 10_000, ["page", "per_page"])
    assert size(result.value) <= 10_000 and result.value == value[: len(result.value)]
    assert result.note is not None and "of 1000 items of the top-level array" in result.note
    assert "page, per_page" in result.note


def test_exact_fit_boundaries() -> None:
    value = {"a": list(range(100))}
    for budget in range(8, size(value)):
        result = cut_json(value, budget)
        assert size(result.value) <= budget
        # One more item would not have fitted.
        kept = len(result.value["a"])
        assert size({"a": list(range(kept + 1))}) > budget


def test_nested_arrays_largest_first() -> None:
    value = {
        "groups": [{"name": f"g{g}", "members": [{"id": m, "bio": "y" * 50} for m in range(200)]} for g in range(3)],
        "small": list(range(10)),
    }
    result = cut_json(value, 20_000)
    assert result.fits and size(result.value) <= 20_000
    assert result.value["small"] == list(range(10))
    assert {o.path for o in result.omissions} <= {"groups", "groups.members"}
    assert all(set(group) == {"name", "members"} for group in result.value["groups"])


def test_min_items_are_respected_and_schema_still_matches() -> None:
    schema = {
        "type": "object",
        "required": ["rows", "meta"],
        "properties": {
            "rows": {"type": "array", "minItems": 5, "items": {"type": "object", "required": ["id"]}},
            "meta": {"type": "object", "required": ["count"], "properties": {"count": {"type": "integer"}}},
        },
    }
    value = {"rows": [{"id": n, "pad": "z" * 200} for n in range(500)], "meta": {"count": 500}}
    minimums = min_items_by_path(schema)
    assert minimums == {"rows": 5}
    validator = jsonschema_rs.validator_for(schema)
    generous = cut_json(value, 5000, (), minimums)
    assert generous.fits and validator.is_valid(generous.value)
    tight = cut_json(value, 300, (), minimums)
    assert not tight.fits and len(tight.value["rows"]) == 5 and validator.is_valid(tight.value)
    assert tight.note is not None and "still larger" in tight.note


def test_nothing_to_cut() -> None:
    result = cut_json({"text": "x" * 1000}, 100, ["q"])
    assert not result.fits and result.value == {"text": "x" * 1000}
    assert result.note == (
        "[Result larger than 100 bytes, with no array to shorten. To see the rest, page or narrow the request with: q.]"
    )


def test_text_is_cut_at_a_utf8_boundary() -> None:
    text = "ab" + "€" * 100  # 3 bytes each
    for budget in range(0, 40):
        result = cut_text(text, budget, ["cursor"])
        encoded = result.value.encode()
        assert len(encoded) <= budget and len(encoded) >= budget - 2
        assert text.startswith(result.value)
        assert result.note is not None and "cursor" in result.note
    result = cut_text(text, 10)
    assert result.value == "ab€€"
    assert result.note is not None and f"the last {len(text.encode()) - 8} of {len(text.encode())} bytes" in result.note
    assert "no arguments to page or narrow" in result.note


def test_text_within_budget() -> None:
    assert cut_text("héllo", 6) == cut_text("héllo", 6)
    result = cut_text("héllo", 6)
    assert result.value == "héllo" and result.note is None


def test_emoji_and_combining_text() -> None:
    text = "🙂" * 50  # 4 bytes each
    result = cut_text(text, 4 * 10 + 3)
    assert result.value == "🙂" * 10


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["limit", "offset", "id"], ["limit", "offset"]),
        (["per_page", "page", "sort"], ["per_page", "page"]),
        (["pageSize", "pageToken", "name"], ["pageSize", "pageToken"]),
        (["cursor", "starting_after", "after", "before"], ["cursor", "starting_after", "after", "before"]),
        (
            ["filter[status]", "filterBy", "search_term", "q", "query"],
            ["filter[status]", "filterBy", "search_term", "q", "query"],
        ),
        (["maxResults", "rateLimit", "owner", "repo"], ["maxResults", "rateLimit"]),
        (["body", "id"], []),
    ],
)
def test_narrowing_arguments(names: list[str], expected: list[str]) -> None:
    assert list(narrowing_arguments(names)) == expected


def test_a_page_wrapping_the_real_list_is_cut_inside() -> None:
    value = {"pages": [{"number": 1, "items": [{"n": n, "pad": "p" * 40} for n in range(5000)]}]}
    result = cut_json(value, 8000)
    assert result.fits and len(result.value["pages"]) == 1 and result.value["pages"][0]["number"] == 1
    assert 0 < len(result.value["pages"][0]["items"]) < 5000
    assert [o.path for o in result.omissions] == ["pages.items"]
    assert result.note is not None and "of 5000 items of `pages.items`" in result.note


def test_a_long_array_is_cut_before_a_short_one_holding_big_items() -> None:
    value = {"blobs": ["b" * 3000, "c" * 3000], "rows": [{"n": n} for n in range(2000)]}
    result = cut_json(value, 10_000)
    assert result.value["blobs"] == value["blobs"]
    assert [o.path for o in result.omissions] == ["rows"]


def test_each_tool_gets_its_budget_from_the_upstream_or_its_own_extension(tmp_path: Path) -> None:
    tools = tools_by_name(SPECS / "orders.yaml", max_result_bytes="128KiB")
    budget = tools["pets_list_orders"].budget
    assert isinstance(budget, ResultBudget)
    assert (budget.max_bytes, budget.narrowing, budget.min_items) == (131072, ("limit", "cursor", "count"), {})
    assert tools["pets_list_receipts"].budget is not None and tools["pets_list_receipts"].budget.max_bytes == 2048
    assert tools["pets_get_notes"].budget is not None and tools["pets_get_notes"].budget.narrowing == ("search", "size")
    operation = {"get": {"x-mcp-max-result-bytes": "big", "responses": {"200": {"description": "ok"}}}}
    with pytest.raises(ConfigError, match=r"x-mcp-max-result-bytes must be a whole number of bytes, at least 1024"):
        load(minimal_spec({"/x": operation}), tmp_path)
    with pytest.raises(ConfigError, match=r"max_result_bytes"):
        load(SPECS / "orders.yaml", max_result_bytes=100)
