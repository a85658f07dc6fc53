"""Shaping upstream results for the caller: identity-aware response filters, truthful output schemas, result budgets."""

from mcp_anything.shaping.budget import (
    BudgetResult,
    Omission,
    ResultBudget,
    cut_json,
    cut_text,
    min_items_by_path,
    narrowing_arguments,
)
from mcp_anything.shaping.filters import (
    AppliedFilter,
    ClaimMissing,
    CompiledFilter,
    FilterStats,
    apply_filters,
    compile_filters,
    filters_for_tool,
    unmatched_globs,
)
from mcp_anything.shaping.schema import relax_output_schema

__all__ = [
    "AppliedFilter",
    "BudgetResult",
    "ClaimMissing",
    "CompiledFilter",
    "FilterStats",
    "Omission",
    "ResultBudget",
    "apply_filters",
    "compile_filters",
    "cut_json",
    "cut_text",
    "filters_for_tool",
    "min_items_by_path",
    "narrowing_arguments",
    "relax_output_schema",
    "unmatched_globs",
]
