"""Identity-aware response filters, compiled once at load and applied to each upstream result.

Semantics (RequestRocket's):
- A node's path is the dotted chain of object keys from the root; array indices are transparent,
  so an array, its elements and the array holding it share one path. A top-level array is "".
- Field operations (no match_field) decide per path. Sorted by priority (lower first, stable), the
  last operation whose `path` regex matches the node's path or an ancestor's wins; none: the
  filter's `default`. A field whose own state is destroy still appears when a descendant is
  retained (as a container of just what was retained), so `retain` keeps the matching fields with
  their ancestors and everything below them. Field decisions depend only on the path, so they are
  cached per path; the data is walked once.
- Row operations (match_field + match_value) then run on each array at a matching path, in
  priority order, on the elements as the field operations left them. Hence in allowlist mode
  (`default: destroy`) the field named by match_field is NOT retained automatically: it counts
  only if a field operation retains it. A `retain` row operation on a field no field operation
  retains therefore removes every row (fails closed). Array elements that are not objects have no
  fields: `retain` removes them, `destroy` keeps them.
- A container-mode array (destroy state, kept for its descendants) keeps all its object elements,
  even ones left empty: only row operations remove rows.
- `{{name}}` in match_value becomes the caller's claim value, regex-escaped; a value is compared as
  its JSON text (strings as-is).

Nothing is mutated. The result shares the subtrees that are kept whole with the input: treat both as read-only.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from mcp_anything.config.filters import VARIABLE_REFERENCE, ResponseFilter
from mcp_anything.shaping.reach import PathRegex

# Paths are data-driven (objects keyed by ids make new ones); past this, states are computed uncached.
_MAX_CACHED_PATHS = 4096
_LITERAL_FIELD = re.compile(r"\^([A-Za-z0-9_-]+)\$")


class ClaimMissing(Exception):
    """A filter needs a claim the caller's identity does not carry (or carries as a non-scalar)."""

    def __init__(self, filter_notes: str, variable: str, claim: str, reason: str) -> None:
        self.filter_notes = filter_notes
        self.variable = variable
        self.claim = claim
        super().__init__(f"response filter ({filter_notes!r}): variable {variable!r} needs claim {claim!r}: {reason}")


@dataclass(frozen=True, slots=True)
class AppliedFilter:
    """What one filter did to one result: counts only, never removed values."""

    index: int
    notes: str
    rows_removed: int
    fields_removed: int


@dataclass(frozen=True, slots=True)
class FilterStats:
    filters: tuple[AppliedFilter, ...] = ()

    @property
    def rows_removed(self) -> int:
        return sum(applied.rows_removed for applied in self.filters)

    @property
    def fields_removed(self) -> int:
        return sum(applied.fields_removed for applied in self.filters)


class PathState:
    """The field decision and the row operations for one dotted path."""

    __slots__ = ("children", "dead", "keep", "last", "path", "rows", "whole")

    def __init__(self, path: str, last: int, keep: bool, rows: tuple[_RowOperation, ...], dead: bool, whole: bool):
        self.path = path
        # Index (in priority order) of the last field operation matching this path or an ancestor; -1: none.
        self.last = last
        self.keep = keep
        self.rows = rows
        # Removed with everything below it: no later field operation can retain a descendant.
        self.dead = dead
        # Kept with everything below it: no later field operation can destroy a descendant, and no row operations.
        self.whole = whole
        self.children: dict[str, PathState] = {}


class _RowOperation:
    __slots__ = (
        "field",
        "field_cache",
        "index",
        "literal_field",
        "notes",
        "path",
        "retain",
        "static_value",
        "template",
    )

    def __init__(self, index: int, retain: bool, path: str, field: str, value: str, notes: str) -> None:
        self.index = index
        self.retain = retain
        self.path = PathRegex(path)
        self.field = re.compile(field)
        # `^userId$` names one key: look it up instead of trying the regex on every key of every row.
        literal = _LITERAL_FIELD.fullmatch(field)
        self.literal_field = literal.group(1) if literal else None
        self.notes = notes
        # Field-name verdicts, per key: few distinct keys, so bounded only as a guard.
        self.field_cache: dict[str, bool] = {}
        # Literal regex text and variable names alternate: per call only escaped claim values are joined in.
        self.template: tuple[tuple[bool, str], ...] = tuple(_split_template(value))
        self.static_value = None if any(is_var for is_var, _ in self.template) else re.compile(value)

    def field_matches(self, key: str) -> bool:
        verdict = self.field_cache.get(key)
        if verdict is None:
            verdict = self.field.search(key) is not None
            if len(self.field_cache) < _MAX_CACHED_PATHS:
                self.field_cache[key] = verdict
        return verdict

    def value_regex(self, values: Mapping[str, str]) -> re.Pattern[str]:
        if self.static_value is not None:
            return self.static_value
        return _compiled("".join(re.escape(values[text]) if is_var else text for is_var, text in self.template))


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _split_template(template: str) -> Iterable[tuple[bool, str]]:
    position = 0
    for match in VARIABLE_REFERENCE.finditer(template):
        if match.start() > position:
            yield False, template[position : match.start()]
        yield True, match.group(1)
        position = match.end()
    if position < len(template):
        yield False, template[position:]


class _Counts:
    __slots__ = ("fields", "rows")

    def __init__(self) -> None:
        self.fields = 0
        self.rows = 0


class CompiledFilter:
    """One `response_filters` entry, ready to apply."""

    def __init__(self, model: ResponseFilter, index: int) -> None:
        self.index = index
        self.notes = model.notes
        self.tools = tuple(model.tools) if model.tools is not None else None
        self.variables = {name: variable.claim for name, variable in model.variables.items()}
        self.default_keep = model.default == "retain"
        ordered = sorted(model.operations, key=lambda operation: operation.priority)
        self._fields = tuple(
            (PathRegex(operation.path), operation.effect == "retain") for operation in ordered if not operation.is_row
        )
        self._rows = tuple(
            _RowOperation(
                position,
                operation.effect == "retain",
                operation.path,
                operation.match_field or "",
                operation.match_value or "",
                operation.notes,
            )
            for position, operation in enumerate(operation for operation in ordered if operation.is_row)
        )
        self._cached = 0
        self._root = self._state("", -1)

    def applies_to(self, tool: str) -> bool:
        return self.tools is None or any(fnmatch.fnmatchcase(tool, glob) for glob in self.tools)

    def root(self) -> PathState:
        return self._root

    def child(self, parent: PathState, key: str) -> PathState:
        """The state of `key` under `parent`, cached while the number of distinct paths stays small."""
        state = parent.children.get(key)
        if state is None:
            state = self._state(f"{parent.path}.{key}" if parent.path else key, parent.last)
            if self._cached < _MAX_CACHED_PATHS:
                parent.children[key] = state
                self._cached += 1
        return state

    def _state(self, path: str, inherited: int) -> PathState:
        last = inherited
        for position in range(len(self._fields) - 1, inherited, -1):
            if self._fields[position][0].search(path):
                last = position
                break
        keep = self._fields[last][1] if last >= 0 else self.default_keep
        rows = tuple(row for row in self._rows if row.path.search(path))
        # Only operations after `last` can change a descendant's state.
        later = [(regex, retain) for regex, retain in self._fields[last + 1 :] if retain != keep]
        changes_below = any(regex.may_match_below(path) for regex, _ in later)
        dead = not keep and not changes_below
        whole = keep and not changes_below and not any(row.path.may_match_here_or_below(path) for row in self._rows)
        return PathState(path, last, keep, rows, dead, whole)

    def bind(self, claims: Mapping[str, Any]) -> dict[str, str]:
        """The variables' values for this caller, as text; ClaimMissing when one cannot be bound."""
        values: dict[str, str] = {}
        for name, claim in self.variables.items():
            node: Any = claims
            for part in claim.split("."):
                if not isinstance(node, Mapping) or part not in node:
                    raise ClaimMissing(self.notes, name, claim, "the caller's identity has no such claim")
                node = node[part]
            if node is None or isinstance(node, (Mapping, list, tuple)):
                raise ClaimMissing(self.notes, name, claim, "expected a single value (string, number or boolean)")
            values[name] = _text(node)
        return values

    def apply(self, data: Any, claims: Mapping[str, Any]) -> tuple[Any, AppliedFilter]:
        values = self.bind(claims)
        regexes = [row.value_regex(values) for row in self._rows]
        counts = _Counts()
        result, present = self._walk(data, self._root, regexes, counts)
        if not present and not isinstance(data, (dict, list)):
            # A container root always stays (possibly empty); a bare value the filter removes becomes null.
            result = None
            counts.fields += 1
        return result, AppliedFilter(self.index, self.notes, counts.rows, counts.fields)

    def _walk(self, value: Any, state: PathState, regexes: list[re.Pattern[str]], counts: _Counts) -> tuple[Any, bool]:
        """(filtered value, whether it stays): field operations first, then row operations on arrays."""
        if isinstance(value, dict):
            return self._walk_object(value, state, regexes, counts)
        if isinstance(value, list):
            return self._walk_array(value, state, regexes, counts)
        return value, state.keep

    def _walk_object(
        self, value: dict[str, Any], state: PathState, regexes: list[re.Pattern[str]], counts: _Counts
    ) -> tuple[dict[str, Any], bool]:
        out: dict[str, Any] = {}
        children = state.children
        removed = 0
        for key, item in value.items():
            child = children.get(key)
            if child is None:
                child = self.child(state, key)
            if child.whole:
                # Shared, not copied: nothing below it changes, and neither value is ever mutated.
                out[key] = item
            elif child.dead:
                removed += 1
            elif isinstance(item, (dict, list)):
                fields, rows = counts.fields, counts.rows
                kept: Any
                if isinstance(item, dict):
                    kept, present = self._walk_object(item, child, regexes, counts)
                else:
                    kept, present = self._walk_array(item, child, regexes, counts)
                if present:
                    out[key] = kept
                else:
                    # One removed field, however much was inside it.
                    counts.fields, counts.rows = fields, rows
                    removed += 1
            elif child.keep:
                out[key] = item
            else:
                removed += 1
        counts.fields += removed
        return out, state.keep or bool(out)

    def _walk_array(
        self, value: list[Any], state: PathState, regexes: list[re.Pattern[str]], counts: _Counts
    ) -> tuple[list[Any], bool]:
        items: list[Any] = []
        present = state.keep
        walk_object, walk_array = self._walk_object, self._walk_array
        kept: Any
        for item in value:
            if isinstance(item, dict):
                kept, item_present = walk_object(item, state, regexes, counts)
            elif isinstance(item, list):
                kept, item_present = walk_array(item, state, regexes, counts)
            elif state.keep:
                items.append(item)
                continue
            else:
                counts.fields += 1
                continue
            items.append(kept)
            present = present or item_present
        if state.rows:
            items = _filter_rows(items, state.rows, regexes, counts)
        return items, present


def _filter_rows(
    items: list[Any], operations: Sequence[_RowOperation], regexes: list[re.Pattern[str]], counts: _Counts
) -> list[Any]:
    for operation in operations:
        value_regex = regexes[operation.index]
        kept = [item for item in items if _row_matches(item, operation, value_regex) == operation.retain]
        counts.rows += len(items) - len(kept)
        items = kept
    return items


def _row_matches(item: Any, operation: _RowOperation, value_regex: re.Pattern[str]) -> bool:
    if not isinstance(item, dict):
        return False
    name = operation.literal_field
    if name is not None:
        return name in item and value_regex.search(_text(item[name])) is not None
    return any(
        operation.field_matches(key) and value_regex.search(_text(value)) is not None for key, value in item.items()
    )


def _text(value: Any) -> str:
    """A value as the text a match_value regex sees: strings as-is, anything else as its JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # orjson refuses integers beyond 64 bits; their JSON is their decimal text anyway.
        return str(value)
    return orjson.dumps(value).decode()


def compile_filters(models: Sequence[ResponseFilter]) -> tuple[CompiledFilter, ...]:
    return tuple(CompiledFilter(model, index) for index, model in enumerate(models))


def filters_for_tool(filters: Sequence[CompiledFilter], tool: str) -> tuple[CompiledFilter, ...]:
    """The filters of a group that apply to one tool, in config order (resolve once per tool at load)."""
    return tuple(compiled for compiled in filters if compiled.applies_to(tool))


def unmatched_globs(model: ResponseFilter, tools: Iterable[str]) -> list[str]:
    """The filter's tool globs that match none of the group's tools (for `validate`)."""
    names = list(tools)
    return [glob for glob in model.tools or () if not any(fnmatch.fnmatchcase(name, glob) for name in names)]


def apply_filters(filters: Sequence[CompiledFilter], data: Any, claims: Mapping[str, Any]) -> tuple[Any, FilterStats]:
    """Every filter in turn; ClaimMissing (before any data is returned) when a needed claim is absent."""
    applied: list[AppliedFilter] = []
    for compiled in filters:
        data, stats = compiled.apply(data, claims)
        applied.append(stats)
    return data, FilterStats(tuple(applied))
