"""The `$ref` graph of one spec: which referenced schemas are part of a cycle.

Schema conversion spends its recursion budget only on references inside a cycle, so
ordinary deep nesting is kept whole. The graph's strongly connected components are
computed once (Tarjan), lazily from the first reference asked about, and remembered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

# Keywords whose values are data, not schemas: a `$ref` inside an example is not a reference.
_NOT_SCHEMA_VALUES = frozenset({"example", "examples", "default", "enum", "const", "discriminator", "xml"})

# (ref, base URI) -> (target node, its document's URI, the target's canonical key `<uri>#<pointer>`)
Resolver = Callable[[str, str], tuple[Any, str, str]]


class ReferenceGraph:
    """Edges between referenced schemas, keyed by canonical `<uri>#<pointer>`."""

    def __init__(self, resolve: Resolver) -> None:
        self._resolve = resolve
        self._edges: dict[str, list[str]] = {}
        self._recursive: dict[str, bool] = {}

    def is_recursive(self, key: str) -> bool:
        known = self._recursive.get(key)
        if known is None:
            self._tarjan(key)
            known = self._recursive[key]
        return known

    def _successors(self, key: str) -> list[str]:
        edges = self._edges.get(key)
        if edges is None:
            doc, fragment = key.split("#", 1)
            node = self._resolve("#" + fragment, doc)[0]
            edges = self._edges[key] = [self._resolve(ref, doc)[2] for ref in _refs_in(node)]
        return edges

    def _tarjan(self, start: str) -> None:
        """Mark every key reachable from `start` as recursive (in a cycle) or not; iterative Tarjan."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        work: list[tuple[str, Iterator[str]]] = []

        def visit(key: str) -> None:
            index[key] = low[key] = len(index)
            stack.append(key)
            on_stack.add(key)
            work.append((key, iter(self._successors(key))))

        visit(start)
        while work:
            key, successors = work[-1]
            for successor in successors:
                if successor in self._recursive:
                    continue
                if successor not in index:
                    visit(successor)
                    break
                if successor in on_stack:
                    low[key] = min(low[key], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[key])
                if low[key] == index[key]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == key:
                            break
                    cyclic = len(component) > 1 or key in self._successors(key)
                    for member in component:
                        self._recursive[member] = cyclic


def _refs_in(node: Any) -> Iterator[str]:
    """Every `$ref` inside a schema, without following them (skipping example values)."""
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str):
                yield ref
            for key, value in current.items():
                if key not in _NOT_SCHEMA_VALUES and isinstance(value, dict | list):
                    pending.append(value)
        elif isinstance(current, list):
            pending.extend(v for v in current if isinstance(v, dict | list))
