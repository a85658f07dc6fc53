"""The advertised outputSchema of a filtered tool accepts every filtered result."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_anything.config import ResponseFilter
from mcp_anything.shaping import (
    apply_filters,
    compile_filters,
    cut_json,
    min_items_by_path,
    relax_output_schema,
)

LINE = {
    "type": "object",
    "required": ["sku", "quantity"],
    "additionalProperties": False,
    "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1}},
}
ORDER = {
    "type": "object",
    "required": ["id", "user", "status", "lines", "shipping"],
    "minProperties": 5,
    "properties": {
        "id": {"type": "integer"},
        "user": {"type": "string"},
        "status": {"type": "string", "enum": ["paid", "open"]},
        "lines": {"type": "array", "minItems": 1, "uniqueItems": True, "items": LINE},
        "shipping": {
            "oneOf": [
                {"type": "object", "required": ["carrier"], "properties": {"carrier": {"type": "string"}}},
                {"type": "object", "required": ["pickup"], "properties": {"pickup": {"type": "boolean"}}},
            ]
        },
        "extra": {"type": "object", "additionalProperties": {"type": "object", "required": ["v"]}},
    },
}
SCHEMA = {
    "type": "object",
    "required": ["orders", "meta"],
    "additionalProperties": False,
    "properties": {
        "orders": {"type": "array", "minItems": 2, "items": ORDER},
        "meta": {"type": "object", "required": ["count"], "properties": {"count": {"type": "integer"}}},
    },
}

# As orjson parses upstream bodies: integers beyond 64 bits arrive as floats.
json_integers = st.integers(-(2**63), 2**63 - 1)
lines = st.lists(
    st.fixed_dictionaries({"sku": st.sampled_from(["a", "b", "c"]), "quantity": st.integers(1, 3)}),
    min_size=1,
    max_size=3,
    unique_by=lambda line: (line["sku"], line["quantity"]),
)
shipping = st.one_of(
    st.fixed_dictionaries({"carrier": st.sampled_from(["ups", "dhl"])}),
    st.fixed_dictionaries({"pickup": st.booleans()}),
)
orders = st.fixed_dictionaries(
    {
        "id": st.integers(1, 5),
        "user": st.sampled_from(["u1", "u2"]),
        "status": st.sampled_from(["paid", "open"]),
        "lines": lines,
        "shipping": shipping,
    },
    optional={"extra": st.dictionaries(st.sampled_from(["x", "y"]), st.fixed_dictionaries({"v": json_integers}))},
)
documents = st.fixed_dictionaries(
    {"orders": st.lists(orders, min_size=2, max_size=4), "meta": st.fixed_dictionaries({"count": json_integers})}
)
PATHS = [
    "^$",
    "^orders$",
    "^orders\\.(id|user)$",
    "^orders\\.lines$",
    "^orders\\.lines\\.sku$",
    "^orders\\.shipping\\.carrier$",
    "^orders\\.extra\\.x\\.v$",
    "^meta$",
    "^meta\\.count$",
    "orders",
    "\\.status$",
    "^orders\\.[a-z]+$",
]
field_operations = st.fixed_dictionaries(
    {"effect": st.sampled_from(["retain", "destroy"]), "path": st.sampled_from(PATHS), "priority": st.integers(0, 3)}
)
row_operations = st.fixed_dictionaries(
    {
        "effect": st.sampled_from(["retain", "destroy"]),
        "path": st.sampled_from(["^orders$", "^orders\\.lines$", "^$", "lines"]),
        "match_field": st.sampled_from(["^user$", "^sku$", "^status$", "^(id|quantity)$"]),
        "match_value": st.sampled_from(["^u1$", "^a$", "^{{me}}$", "^1$"]),
        "priority": st.integers(0, 3),
    }
)
filters = st.fixed_dictionaries(
    {
        "default": st.sampled_from(["retain", "destroy"]),
        "variables": st.just({"me": {"claim": "sub"}}),
        "operations": st.lists(st.one_of(field_operations, row_operations), min_size=1, max_size=4),
    }
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(filters, min_size=1, max_size=2), documents, st.integers(2, 400))
def test_every_filtered_and_cut_result_matches_the_relaxed_schema(
    specs: list[dict[str, Any]], document: Any, budget: int
) -> None:
    assert jsonschema_rs.validator_for(SCHEMA).is_valid(document)
    compiled = compile_filters([ResponseFilter.model_validate(spec) for spec in specs])
    original = copy.deepcopy(SCHEMA)
    relaxed = relax_output_schema(SCHEMA, compiled)
    assert original == SCHEMA
    result, _ = apply_filters(compiled, document, {"sub": "u2"})
    validator = jsonschema_rs.validator_for(relaxed)
    errors = [error.message for error in validator.iter_errors(result)]
    assert not errors, (result, relaxed)
    # The budget runs after the filters and must keep the result valid against the advertised schema.
    cut = cut_json(result, budget, ["limit"], min_items_by_path(relaxed))
    assert validator.is_valid(cut.value), (cut.value, relaxed)
    assert not cut.fits or len(orjson.dumps(cut.value)) <= budget


def compiled_for(*operations: dict[str, Any], default: str = "retain") -> Any:
    return compile_filters([ResponseFilter.model_validate({"default": default, "operations": list(operations)})])


def test_untouched_parts_keep_their_constraints() -> None:
    relaxed = relax_output_schema(SCHEMA, compiled_for({"effect": "destroy", "path": "^orders\\.shipping$"}))
    order = relaxed["properties"]["orders"]["items"]
    assert order["required"] == ["id", "user", "status", "lines"]
    assert "minProperties" not in order
    assert relaxed["required"] == ["orders", "meta"]
    assert relaxed["properties"]["meta"] == SCHEMA["properties"]["meta"]
    assert relaxed["additionalProperties"] is False
    assert order["properties"]["lines"]["items"]["required"] == ["sku", "quantity"]


def test_row_operations_drop_min_items() -> None:
    relaxed = relax_output_schema(
        SCHEMA,
        compiled_for({"effect": "retain", "path": "^orders$", "match_field": "^user$", "match_value": "^u1$"}),
    )
    assert "minItems" not in relaxed["properties"]["orders"]
    assert relaxed["properties"]["orders"]["items"]["properties"]["lines"]["minItems"] == 1
    assert relaxed["required"] == ["orders", "meta"]


def test_allowlist_makes_everything_optional_except_what_is_retained() -> None:
    relaxed = relax_output_schema(
        SCHEMA, compiled_for({"effect": "retain", "path": "^orders\\.(id|lines)$"}, default="destroy")
    )
    order = relaxed["properties"]["orders"]["items"]
    assert "required" not in relaxed
    assert order["required"] == ["id", "lines"]
    assert "minItems" not in relaxed["properties"]["orders"]
    assert order["properties"]["lines"]["items"]["required"] == ["sku", "quantity"]
    assert "anyOf" in order["properties"]["shipping"] and "oneOf" not in order["properties"]["shipping"]


def test_references_and_conditionals_are_loosened() -> None:
    schema = {
        "type": "object",
        "$defs": {"node": {"type": "object", "required": ["id"]}},
        "properties": {"child": {"$ref": "#/$defs/node", "description": "a node"}},
        "if": {"required": ["child"]},
        "then": {"required": ["child"]},
        "not": {"required": ["x"]},
    }
    relaxed = relax_output_schema(schema, compiled_for({"effect": "destroy", "path": "^child\\.id$"}))
    assert relaxed == {"type": "object", "properties": {"child": {"description": "a node"}}}
