"""Response filters: RequestRocket semantics on plain data (the engine, without the gateway)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mcp_anything.config import ResponseFilter
from mcp_anything.shaping import (
    ClaimMissing,
    apply_filters,
    compile_filters,
    filters_for_tool,
    unmatched_globs,
)
from tests.support.orders import orders_filter


def run(spec: dict[str, Any] | list[dict[str, Any]], data: Any, claims: dict[str, Any] | None = None) -> Any:
    specs = spec if isinstance(spec, list) else [spec]
    filters = compile_filters([ResponseFilter.model_validate(item) for item in specs])
    result, _ = apply_filters(filters, data, claims or {})
    return result


def order(number: int, user: str, **extra: Any) -> dict[str, Any]:
    return {
        "orderId": number,
        "userId": user,
        "amount": 10 * number,
        "status": "paid",
        "internalCost": 3 * number,
        "warehouse": {"bin": f"B{number}", "picker": "p"},
        **extra,
    }


ORDERS = {
    "orders": [order(1, "user-123"), order(2, "user-456"), order(3, "user-123"), order(4, "user-789")],
    "internal": {"shard": 7},
    "total": 4,
}
VISIBLE = ("orderId", "userId", "amount", "status")


def test_each_user_sees_only_their_own_orders_with_only_retained_fields() -> None:
    for user, expected in (("user-123", [1, 3]), ("user-456", [2])):
        result = run(orders_filter(), ORDERS, {"sub": user})
        assert result == {"orders": [{key: order(n, user)[key] for key in VISIBLE} for n in expected]}


def test_input_is_not_mutated() -> None:
    before = copy.deepcopy(ORDERS)
    run(orders_filter(), ORDERS, {"sub": "user-123"})
    assert before == ORDERS


def test_claim_values_are_regex_escaped() -> None:
    data = {"orders": [order(1, "user.abc+1"), order(2, "userXabc+1"), order(3, "user.abc1"), order(4, "user.abcc1")]}
    result = run(orders_filter(), data, {"sub": "user.abc+1"})
    assert [item["orderId"] for item in result["orders"]] == [1]


def test_dotted_claim_path_and_non_string_values() -> None:
    spec = orders_filter(variables={"callerSub": {"claim": "account.id"}})
    data = {"orders": [order(1, 42), order(2, 420), order(3, "42")]}  # type: ignore[arg-type]
    result = run(spec, data, {"account": {"id": 42}})
    assert [item["orderId"] for item in result["orders"]] == [1, 3]


@pytest.mark.parametrize(
    "claims",
    [{}, {"account": {}}, {"account": "flat"}, {"account": {"id": ["a", "b"]}}, {"account": {"id": None}}],
)
def test_a_missing_or_unusable_claim_raises(claims: dict[str, Any]) -> None:
    spec = orders_filter(variables={"callerSub": {"claim": "account.id"}})
    with pytest.raises(ClaimMissing) as raised:
        run(spec, ORDERS, claims)
    assert raised.value.variable == "callerSub"
    assert raised.value.claim == "account.id"
    assert "user-123" not in str(raised.value)


def test_retain_default_keeps_what_no_operation_removes() -> None:
    spec = {
        "operations": [
            {"effect": "destroy", "path": "^orders\\.(internalCost|warehouse)$"},
            {"effect": "destroy", "path": "^internal$"},
        ]
    }
    result = run(spec, ORDERS)
    assert result["total"] == 4
    assert "internal" not in result
    assert result["orders"][0] == {key: order(1, "user-123")[key] for key in VISIBLE}
    assert len(result["orders"]) == 4


def test_destroy_default_keeps_only_what_field_operations_retain() -> None:
    spec = {"default": "destroy", "operations": [{"effect": "retain", "path": "^orders\\.warehouse\\.bin$"}]}
    result = run(spec, ORDERS)
    # Ancestors survive as containers of just what was retained.
    assert result == {"orders": [{"warehouse": {"bin": f"B{n}"}} for n in (1, 2, 3, 4)]}


def test_retained_field_keeps_everything_below_it() -> None:
    spec = {"default": "destroy", "operations": [{"effect": "retain", "path": "^orders\\.warehouse$"}]}
    assert run(spec, ORDERS)["orders"][1] == {"warehouse": {"bin": "B2", "picker": "p"}}


def test_destroy_default_with_nothing_retained_leaves_an_empty_root() -> None:
    spec = {"default": "destroy", "operations": [{"effect": "retain", "path": "^nothing$"}]}
    assert run(spec, ORDERS) == {}
    assert run(spec, [1, {"a": 1}]) == [{}]


def test_allowlist_rows_match_only_on_fields_that_survive() -> None:
    """Field operations run first: a row operation's match_field is not retained automatically."""
    rows_on_user = orders_filter()
    fields_without_user = dict(rows_on_user["operations"][1], path="^orders\\.(orderId|amount)$")
    spec = orders_filter(operations=[rows_on_user["operations"][0], fields_without_user])
    # userId was not retained, so no row has a userId to match: every row goes (fails closed).
    assert run(spec, ORDERS, {"sub": "user-123"}) == {"orders": []}


def test_destroy_rows_in_allowlist_mode_see_retained_fields() -> None:
    spec = {
        "default": "destroy",
        "operations": [
            {"effect": "retain", "path": "^orders\\.(orderId|status)$"},
            {"effect": "destroy", "path": "^orders$", "match_field": "^status$", "match_value": "^refunded$"},
        ],
    }
    data = {"orders": [order(1, "a"), order(2, "a", status="refunded"), order(3, "b")]}
    assert run(spec, data) == {"orders": [{"orderId": 1, "status": "paid"}, {"orderId": 3, "status": "paid"}]}


def test_field_operations_later_in_priority_win() -> None:
    fields = [
        {"effect": "destroy", "path": "^orders$", "priority": 1},
        {"effect": "retain", "path": "^orders\\.orderId$", "priority": 2},
    ]
    assert run({"operations": fields}, ORDERS)["orders"] == [{"orderId": n} for n in (1, 2, 3, 4)]
    # Same operations, priorities swapped: the destroy of the whole array now comes last.
    swapped = [dict(fields[0], priority=2), dict(fields[1], priority=1)]
    assert "orders" not in run({"operations": swapped}, ORDERS)


def test_row_operations_run_in_priority_order() -> None:
    ops = [
        {"effect": "retain", "path": "^$", "match_field": "^kind$", "match_value": "^a$", "priority": 2},
        {"effect": "destroy", "path": "^$", "match_field": "^id$", "match_value": "^1$", "priority": 1},
    ]
    data = [{"id": 1, "kind": "a"}, {"id": 2, "kind": "a"}, {"id": 3, "kind": "b"}, "scalar"]
    filters = compile_filters([ResponseFilter.model_validate({"operations": ops})])
    result, stats = apply_filters(filters, data, {})
    assert result == [{"id": 2, "kind": "a"}]
    assert stats.rows_removed == 3


def test_top_level_array_is_the_empty_path() -> None:
    spec = {
        "variables": {"me": {"claim": "sub"}},
        "default": "destroy",
        "operations": [
            {"effect": "retain", "path": "^$", "match_field": "^userId$", "match_value": "^{{me}}$"},
            {"effect": "retain", "path": "^(orderId|userId)$"},
        ],
    }
    result = run(spec, ORDERS["orders"], {"sub": "user-456"})
    assert result == [{"orderId": 2, "userId": "user-456"}]


def test_nested_arrays_and_indices_are_transparent() -> None:
    spec = {
        "operations": [
            {"effect": "destroy", "path": "^groups\\.items\\.secret$"},
            {"effect": "destroy", "path": "^groups\\.items$", "match_field": "^hidden$", "match_value": "^true$"},
        ]
    }
    data = {"groups": [{"items": [[{"id": 1, "secret": "s"}, {"id": 2, "hidden": True}]], "name": "g"}]}
    assert run(spec, data) == {"groups": [{"items": [[{"id": 1}]], "name": "g"}]}


def test_scalar_arrays_in_allowlist_mode() -> None:
    spec = {"default": "destroy", "operations": [{"effect": "retain", "path": "^tags$"}]}
    assert run(spec, {"tags": ["a", "b"], "other": [1, 2]}) == {"tags": ["a", "b"]}


def test_multiple_filters_apply_in_order() -> None:
    first = {"operations": [{"effect": "destroy", "path": "^internal$"}], "notes": "one"}
    second = orders_filter(tools=None, notes="two")
    filters = compile_filters([ResponseFilter.model_validate(item) for item in (first, second)])
    result, stats = apply_filters(filters, ORDERS, {"sub": "user-789"})
    assert result == {"orders": [{key: order(4, "user-789")[key] for key in VISIBLE}]}
    assert [(applied.index, applied.notes) for applied in stats.filters] == [(0, "one"), (1, "two")]


def test_stats_carry_counts_and_notes_never_values() -> None:
    filters = compile_filters([ResponseFilter.model_validate(orders_filter())])
    _, stats = apply_filters(filters, ORDERS, {"sub": "user-123"})
    assert stats.rows_removed == 2
    # internal, total; per order: internalCost and warehouse.
    assert stats.fields_removed == 2 + 4 * 2
    assert stats.filters[0].notes == orders_filter()["notes"]
    dumped = repr(stats)
    for secret in ("user-456", "user-789", "shard", "B1", "internalCost"):
        assert secret not in dumped


def test_tool_globs() -> None:
    filters = compile_filters(
        [
            ResponseFilter.model_validate(orders_filter(tools=["shop_*_orders"])),
            ResponseFilter.model_validate(orders_filter(tools=None)),
        ]
    )
    assert [f.index for f in filters_for_tool(filters, "shop_list_orders")] == [0, 1]
    assert [f.index for f in filters_for_tool(filters, "shop_get_order")] == [1]
    model = ResponseFilter.model_validate(orders_filter(tools=["shop_list_*", "nothing_*"]))
    assert unmatched_globs(model, ["shop_list_orders", "shop_get_order"]) == ["nothing_*"]


def test_many_distinct_keys_are_filtered_correctly_past_the_path_cache() -> None:
    spec = {"operations": [{"effect": "destroy", "path": "^byId\\.[^.]+\\.secret$"}]}
    data = {"byId": {f"k{n}": {"secret": n, "open": n} for n in range(6000)}}
    result = run(spec, data)
    assert result == {"byId": {f"k{n}": {"open": n} for n in range(6000)}}


def test_big_integers_compare_as_their_digits() -> None:
    row = {"effect": "retain", "path": "^$", "match_field": "^id$", "match_value": "^{{me}}$"}
    spec = {"variables": {"me": {"claim": "sub"}}, "operations": [row]}
    assert run(spec, [{"id": 2**70}, {"id": 1}], {"sub": 2**70}) == [{"id": 2**70}]


def test_values_compare_as_json_text() -> None:
    spec = {
        "operations": [{"effect": "retain", "path": "^$", "match_field": "^v$", "match_value": "^(true|null|1\\.5)$"}]
    }
    data = [{"v": True}, {"v": None}, {"v": 1.5}, {"v": "True"}, {"v": 1}]
    assert run(spec, data) == [{"v": True}, {"v": None}, {"v": 1.5}]


def test_result_serializes() -> None:
    assert orjson.loads(orjson.dumps(run(orders_filter(), ORDERS, {"sub": "user-123"})))["orders"]


# --- validation -------------------------------------------------------------------------------


def invalid(spec: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as raised:
        ResponseFilter.model_validate(spec)
    return str(raised.value)


def test_a_bad_regex_names_the_filter_and_operation() -> None:
    spec = orders_filter()
    spec["operations"][1]["path"] = "^orders\\.(orderId$"
    message = invalid(spec)
    assert "operation 1" in message
    assert "Retain only these fields on each surviving order" in message
    assert "Strip orders not belonging" in message
    assert "not a valid regular expression" in message


def test_bad_match_field_and_match_value_regexes() -> None:
    spec = orders_filter()
    spec["operations"][0]["match_field"] = "(("
    assert "operation 0" in invalid(spec) and "match_field" in invalid(spec)
    spec = orders_filter()
    spec["operations"][0]["match_value"] = "^{{callerSub}}[$"
    assert "match_value" in invalid(spec)


def test_undeclared_variable() -> None:
    spec = orders_filter()
    spec["operations"][0]["match_value"] = "^{{callerId}}$"
    message = invalid(spec)
    assert "{{callerId}}" in message and "declared: callerSub" in message


def test_match_field_needs_match_value_and_back() -> None:
    spec = orders_filter()
    del spec["operations"][0]["match_value"]
    assert "match_field needs match_value" in invalid(spec)
    spec = orders_filter()
    del spec["operations"][0]["match_field"]
    assert "match_value needs match_field" in invalid(spec)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"unknown": 1}, "Extra inputs are not permitted"),
        ({"default": "keep"}, "'retain' or 'destroy'"),
        ({"operations": []}, "at least 1 item"),
        ({"tools": [""]}, "tools"),
        ({"tools": []}, "at least one tool name or glob"),
        ({"variables": {"bad-name": {"claim": "sub"}}}, "'bad-name' is not a valid name"),
        ({"variables": {"callerSub": {"claim": "a..b"}}}, "dotted path"),
        ({"variables": {"callerSub": {"claim": "sub", "from": "jwt"}}}, "Extra inputs"),
    ],
)
def test_other_config_errors(change: dict[str, Any], expected: str) -> None:
    assert expected in invalid(orders_filter(**change))


def test_operation_unknown_key_and_effect() -> None:
    spec = orders_filter()
    spec["operations"][0]["effekt"] = "retain"
    assert "effekt" in invalid(spec)
    spec = orders_filter()
    spec["operations"][0]["effect"] = "keep"
    assert "operations.0.effect" in invalid(spec)


# --- the optimised walk against a plain reference ---------------------------------------------


def reference(spec: dict[str, Any], data: Any, claims: dict[str, Any]) -> Any:
    """The documented semantics, written the slow and obvious way: no caches, no pruning."""
    import re

    ordered = sorted(spec["operations"], key=lambda operation: operation.get("priority", 0))
    fields = [op for op in ordered if "match_field" not in op]
    rows = [op for op in ordered if "match_field" in op]
    values = {name: str(claims[variable["claim"]]) for name, variable in spec.get("variables", {}).items()}

    def keep(chain: list[str]) -> bool:
        prefixes = [".".join(chain[:n]) for n in range(len(chain) + 1)]
        winner = None
        for op in fields:
            if any(re.search(op["path"], prefix) for prefix in prefixes):
                winner = op
        return (winner["effect"] if winner else spec.get("default", "retain")) == "retain"

    def text(value: Any) -> str:
        return value if isinstance(value, str) else orjson.dumps(value).decode()

    def walk(value: Any, chain: list[str]) -> tuple[Any, bool]:
        own = keep(chain)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                kept, present = walk(item, [*chain, key])
                if present:
                    out[key] = kept
            return out, own or bool(out)
        if isinstance(value, list):
            items, present = [], own
            for item in value:
                if isinstance(item, (dict, list)):
                    kept, item_present = walk(item, chain)
                    items.append(kept)
                    present = present or item_present
                elif own:
                    items.append(item)
            for op in rows:
                if re.search(op["path"], ".".join(chain)):
                    pattern = re.sub(r"\{\{(\w+)\}\}", lambda m: re.escape(values[m.group(1)]), op["match_value"])
                    items = [
                        item
                        for item in items
                        if (
                            isinstance(item, dict)
                            and any(
                                re.search(op["match_field"], k) and re.search(pattern, text(v)) for k, v in item.items()
                            )
                        )
                        == (op["effect"] == "retain")
                    ]
            return items, present
        return value, own

    result, present = walk(data, [])
    return result if present or isinstance(data, (dict, list)) else None


KEYS = ["a", "b", "c", "ab", "a.b"]
json_values = st.recursive(
    st.one_of(st.integers(0, 3), st.sampled_from(["a", "b", "x.y"]), st.booleans(), st.none()),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.sampled_from(KEYS), children, max_size=4)
    ),
    max_leaves=25,
)
REGEXES = [
    "^$", "^a$", "^a\\.b$", "^(a|b)$", "^a\\.(b|c)$", "^a\\.", "^[ab]$", "^a\\.b\\.c$", "b$", "a", "^ab?$",
    "^a\\.[^.]+$", "^.*c$", "^(?:a|b)\\.c$", "^a\\.b\\.", "(?i)^A$", "^a\\.b\\.c\\.a$", "\\.",
]  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(["retain", "destroy"]),
    st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "effect": st.sampled_from(["retain", "destroy"]),
                    "path": st.sampled_from(REGEXES),
                    "priority": st.integers(0, 2),
                }
            ),
            st.fixed_dictionaries(
                {
                    "effect": st.sampled_from(["retain", "destroy"]),
                    "path": st.sampled_from(REGEXES),
                    "match_field": st.sampled_from(["^a$", "b", "^(a|c)$"]),
                    "match_value": st.sampled_from(["^{{me}}$", "^(1|true)$", "^x.y$", "null"]),
                    "priority": st.integers(0, 2),
                }
            ),
        ),
        min_size=1,
        max_size=5,
    ),
    json_values,
    st.sampled_from(["a", "x.y", "xzy", "1"]),
)
def test_optimised_walk_matches_the_reference(
    default: str, operations: list[dict[str, Any]], data: Any, me: str
) -> None:
    spec = {"default": default, "variables": {"me": {"claim": "sub"}}, "operations": operations}
    compiled = compile_filters([ResponseFilter.model_validate(spec)])
    before = copy.deepcopy(data)
    result, _ = apply_filters(compiled, data, {"sub": me})
    assert result == reference(spec, data, {"sub": me})
    assert data == before
    # Twice: the second run goes through the warmed path cache.
    assert apply_filters(compiled, data, {"sub": me})[0] == result


@pytest.mark.parametrize(
    ("pattern", "path", "below"),
    [
        ("^orders\\.(orderId|userId)$", "orders", True),
        ("^orders\\.(orderId|userId)$", "orders.warehouse", False),
        ("^orders\\.(orderId|userId)$", "orders.orderId", False),
        ("^orders$", "orders", False),
        ("^.*c$", "a", True),
        ("^a[bc]+x", "a", True),
        ("^a[bc]+x", "b", False),
        ("^byId\\.[^.]+\\.secret$", "byId.k1", True),
        ("^byId\\.[^.]+\\.secret$", "other", False),
        ("(?i)^A$", "x", True),
        ("orders", "x", True),
        ("^$", "x", False),
        ("^a\\.b\\.", "a", True),
        ("^a\\.b\\.", "a.b", True),
        ("^a\\.b\\.", "a.c", False),
        ("^a|^b\\.c$", "b", True),
    ],
)
def test_reach_analysis(pattern: str, path: str, below: bool) -> None:
    from mcp_anything.shaping.reach import PathRegex

    assert PathRegex(pattern).may_match_below(path) is below


def test_allowlist_retains_through_open_regexes() -> None:
    spec = {"default": "destroy", "operations": [{"effect": "retain", "path": "^.*c$"}]}
    assert run(spec, {"a": {"c": 1, "d": 2}, "e": 3}) == {"a": {"c": 1}}


def test_the_commented_response_filters_example_is_valid() -> None:
    """config.example.yaml documents `response_filters` in comments: uncommented, the filter must load."""
    text = (Path(__file__).parents[1] / "config.example.yaml").read_text()
    block = text[text.index("    response_filters:") : text.index("    inbound_auth:")]
    lines = [re.sub(r"^(\s*)# (?!#)", r"\1", line) for line in block.splitlines()]
    [model] = yaml.safe_load("\n".join(lines).replace("response_filters: []", "response_filters:"))["response_filters"]
    compiled = compile_filters([ResponseFilter.model_validate(model)])
    orders = {"orders": [{"orderId": "1", "userId": "u.1", "cost": 3}, {"orderId": "2", "userId": "uX1"}]}
    assert apply_filters(compiled, orders, {"sub": "u.1"})[0] == {"orders": [{"orderId": "1", "userId": "u.1"}]}
