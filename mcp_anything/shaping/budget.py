"""Result budgets: cut a result that is too large for an agent to read, and say how to ask for less.

A JSON value is cut structurally: only arrays are shortened (from the end), largest first, so the
cut value keeps every property and still matches the schema it matched, as long as each array keeps
its minItems. A text is cut at a UTF-8 character boundary. Either way the caller appends the returned
note to the text content; the note is not counted against the budget.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

# Arrays of at most this many items are looked inside before they are cut themselves.
_FEW = 8
# Cutting stops after this many arrays: a value made of thousands of small arrays is cut no further.
_MAX_CUTS = 64

# Argument names (lower-cased, without _ and -) that page a list or narrow what it returns.
_PAGING = frozenset(
    (
        *("limit", "perpage", "pagesize", "pagelimit", "maxresults", "maxitems", "count", "size", "top"),
        *("first", "last", "page", "pagenumber", "pagetoken", "cursor", "nextcursor", "nexttoken"),
        *("continuationtoken", "offset", "skip", "startingafter", "endingbefore", "after", "before"),
        *("since", "until", "q", "query", "search", "where", "fields", "select"),
    )
)
_NARROWING_PREFIXES = ("filter", "search", "query")


@dataclass(frozen=True, slots=True)
class Omission:
    """Items left out of the arrays at one dotted path ("" is a top-level array)."""

    path: str
    left_out: int
    total: int


@dataclass(frozen=True, slots=True)
class BudgetResult:
    value: Any
    # None when the value was within budget.
    note: str | None
    # False when even the shortest arrays the schema allows exceed the budget (the caller decides).
    fits: bool
    omissions: tuple[Omission, ...] = ()


class ResultBudget:
    """One tool's budget, fixed at load: its byte limit, the arguments its note names, its arrays' minItems.

    The minItems are read from the output schema on the first cut, not at load: walking every tool's
    schema costs load time on big specs, and most tools never answer over budget.
    """

    __slots__ = ("_min_items", "_output_schema", "max_bytes", "narrowing")

    def __init__(self, max_bytes: int, narrowing: tuple[str, ...] = (), output_schema: Any = None) -> None:
        self.max_bytes = max_bytes
        self.narrowing = narrowing
        self._output_schema = output_schema
        self._min_items: dict[str, int] | None = None

    @classmethod
    def for_tool(cls, max_bytes: int, input_schema: Mapping[str, Any], output_schema: Any) -> ResultBudget:
        properties = input_schema.get("properties")
        names = list(properties) if isinstance(properties, dict) else []
        return cls(max_bytes, narrowing_arguments(names), output_schema)

    @property
    def min_items(self) -> Mapping[str, int]:
        if self._min_items is None:
            self._min_items = min_items_by_path(self._output_schema)
        return self._min_items

    def cut_json(self, value: Any, size: int | None = None) -> BudgetResult:
        return cut_json(value, self.max_bytes, self.narrowing, self.min_items, size)

    def cut_text(self, text: str) -> BudgetResult:
        return cut_text(text, self.max_bytes, self.narrowing)


def narrowing_arguments(input_properties: Iterable[str]) -> tuple[str, ...]:
    """The tool's own arguments that page or narrow a request, in their order (compute once per tool at load)."""
    found = []
    for name in input_properties:
        folded = re.sub(r"[^a-z0-9]", "", name.lower())
        if folded in _PAGING or folded.startswith(_NARROWING_PREFIXES) or folded.endswith("limit"):
            found.append(name)
    return tuple(found)


def min_items_by_path(schema: Any) -> dict[str, int]:
    """minItems of the arrays an output schema describes, by dotted path (the largest where paths meet)."""
    found: dict[str, int] = {}
    # An explicit stack, not recursive generators: this walks every tool's output schema at load.
    pending: list[tuple[Any, str]] = [(schema, "")]
    while pending:
        node, path = pending.pop()
        if not isinstance(node, dict):
            continue
        minimum = node.get("minItems")
        if isinstance(minimum, int) and minimum > 0:
            found[path] = max(found.get(path, 0), minimum)
        properties = node.get("properties")
        if isinstance(properties, dict):
            prefix = f"{path}." if path else ""
            pending.extend((sub, prefix + name) for name, sub in properties.items())
        pending.append((node.get("items"), path))
        for key in ("allOf", "anyOf", "oneOf"):
            branches = node.get(key)
            if isinstance(branches, list):
                pending.extend((branch, path) for branch in branches)
    return found


def cut_json(
    value: Any,
    max_bytes: int,
    narrowing: Sequence[str] = (),
    min_items: Mapping[str, int] | None = None,
    size: int | None = None,
) -> BudgetResult:
    """`value` within `max_bytes` of compact JSON (orjson), by shortening its largest arrays.

    `size`: the value's serialized length when the caller already knows it.
    """
    total = len(orjson.dumps(value)) if size is None else size
    if total <= max_bytes:
        return BudgetResult(value, None, True)
    minimums = min_items or {}
    left_out: dict[str, list[int]] = {}
    fits = False
    for _ in range(_MAX_CUTS):
        target = _largest_array(value, minimums)
        if target is None:
            break
        location, path, array, array_size = target
        n = _longest_prefix(array, array_size - (total - max_bytes), minimums.get(path, 0))
        cut_size = len(orjson.dumps(array[:n]))
        value = _replace(value, location, array[:n])
        total -= array_size - cut_size
        counts = left_out.setdefault(path, [0, 0])
        counts[0] += len(array) - n
        counts[1] += len(array)
        if total <= max_bytes:
            fits = True
            break
    omissions = tuple(Omission(path, dropped, seen) for path, (dropped, seen) in left_out.items())
    return BudgetResult(value, _json_note(omissions, max_bytes, narrowing, fits), fits, omissions)


def cut_text(text: str, max_bytes: int, narrowing: Sequence[str] = ()) -> BudgetResult:
    """`text` within `max_bytes` of UTF-8, cut at a character boundary."""
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return BudgetResult(text, None, True)
    # A prefix of valid UTF-8 can only be broken at its end; "ignore" drops that partial character.
    cut = encoded[:max_bytes].decode(errors="ignore")
    left = len(encoded) - len(cut.encode())
    note = f"[Result cut to fit {max_bytes} bytes: the last {left} of {len(encoded)} bytes were left out. "
    return BudgetResult(cut, note + _advice(narrowing) + "]", True)


def _longest_prefix(array: list[Any], allowed: int, keep: int) -> int:
    """The most leading items (at least `keep`) whose JSON fits in `allowed` bytes; the whole array never does.

    Galloping, then a binary search: the answer is usually far below the length, so the probes
    serialize a few times the budget, not the array.
    """

    def fits(count: int) -> bool:
        return len(orjson.dumps(array[:count])) <= allowed

    if not fits(keep):
        return keep
    low, step = keep, 1
    while low + step < len(array) and fits(low + step):
        low += step
        step *= 2
    high = min(low + step, len(array))
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def _json_note(omissions: Sequence[Omission], max_bytes: int, narrowing: Sequence[str], fits: bool) -> str:
    parts = [
        f"{o.left_out} of {o.total} items of {('`' + o.path + '`') if o.path else 'the top-level array'}"
        for o in omissions
    ]
    if not parts:
        return f"[Result larger than {max_bytes} bytes, with no array to shorten. {_advice(narrowing)}]"
    verdict = "" if fits else " It is still larger than that."
    return f"[Result cut to fit {max_bytes} bytes: {'; '.join(parts)} left out.{verdict} {_advice(narrowing)}]"


def _advice(narrowing: Sequence[str]) -> str:
    if not narrowing:
        return "This tool has no arguments to page or narrow the request."
    return "To see the rest, page or narrow the request with: " + ", ".join(narrowing) + "."


# A location is the chain of keys and indices from the root to an array.
Location = tuple[str | int, ...]


def _largest_array(value: Any, minimums: Mapping[str, int]) -> tuple[Location, str, list[Any], int] | None:
    """The array to shorten next: the largest in bytes that is still longer than its minItems.

    An array of a few items (a page wrapping the real list) is looked inside, and only cut itself
    when nothing longer is left: dropping its one big item would drop everything.
    """
    best: tuple[bool, int, Location, str, list[Any]] | None = None
    for location, path, array in _arrays(value, (), "", minimums):
        if len(array) <= minimums.get(path, 0):
            continue
        rank = (len(array) > _FEW, len(orjson.dumps(array)))
        if best is None or rank > best[:2]:
            best = (*rank, location, path, array)
    return None if best is None else (best[2], best[3], best[4], best[1])


def _arrays(
    value: Any, location: Location, path: str, minimums: Mapping[str, int]
) -> Iterator[tuple[Location, str, list[Any]]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                yield from _arrays(item, (*location, key), f"{path}.{key}" if path else key, minimums)
    elif isinstance(value, list):
        yield location, path, value
        # Inside a long array the array itself is what gets cut; inside a short one, or one at its minimum, look deeper.
        if len(value) <= max(_FEW, minimums.get(path, 0)):
            for index, item in enumerate(value):
                if isinstance(item, (dict, list)):
                    yield from _arrays(item, (*location, index), path, minimums)


def _replace(value: Any, location: Location, new: Any) -> Any:
    """A copy of `value` with the node at `location` replaced, sharing every untouched branch."""
    if not location:
        return new
    head, rest = location[0], location[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(value[head], rest, new)  # type: ignore[index]
    return copy
