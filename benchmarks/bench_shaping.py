"""Response filters and result budgets on their own: CPU time per result, no network.

    python -m benchmarks.bench_shaping [--rounds 15]

Each case runs in rounds of enough calls to take ~50 ms; a round's figure is its thread CPU time
per call (time.thread_time, so other load on the machine barely moves it), and the script prints
the best and the median round. Wall-clock per call is printed next to it for reference.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from mcp_anything.config import ResponseFilter
from mcp_anything.shaping import (
    apply_filters,
    compile_filters,
    cut_json,
    min_items_by_path,
    narrowing_arguments,
)

ALLOWLIST: dict[str, Any] = {
    "variables": {"callerSub": {"claim": "sub"}},
    "default": "destroy",
    "notes": "own orders, four fields",
    "operations": [
        {"effect": "retain", "path": "^orders$", "match_field": "^userId$", "match_value": "^{{callerSub}}$"},
        {"effect": "retain", "path": "^orders\\.(orderId|userId|amount|status)$"},
    ],
}
# The same without the `^` anchors: the walk can no longer skip subtrees no operation reaches.
UNANCHORED = {
    **ALLOWLIST,
    "operations": [
        {**ALLOWLIST["operations"][0], "path": "orders$"},
        {**ALLOWLIST["operations"][1], "path": "orders\\.(orderId|userId|amount|status)$"},
    ],
}
DENYLIST = {
    "notes": "internal fields out",
    "operations": [
        {"effect": "destroy", "path": "^orders\\.(internalCost|warehouse)$"},
        {"effect": "destroy", "path": "^orders$", "match_field": "^status$", "match_value": "^deleted$"},
    ],
}
CLAIMS = {"sub": "user-7"}


def order(number: int) -> dict[str, Any]:
    return {
        "orderId": number,
        "userId": f"user-{number % 50}",
        "amount": number * 1.25,
        "currency": "EUR",
        "status": "paid" if number % 9 else "deleted",
        "createdAt": "2026-11-29T12:00:00Z",
        "internalCost": number * 0.5,
        "note": "gift wrap, leave at the door",
        "warehouse": {"bin": f"B-{number}", "picker": "alice", "zone": "north"},
        "lines": [{"sku": f"SKU-{number}-{line}", "quantity": line + 1} for line in range(2)],
    }


def orders_of_size(size: int) -> dict[str, Any]:
    per_order = len(orjson.dumps(order(1000)))
    count = max(1, size // per_order)
    return {"orders": [order(n) for n in range(count)], "total": count, "next": None}


def measure(call: Callable[[], Any], rounds: int) -> tuple[float, float, float]:
    """(best, median) thread CPU seconds per call and median wall seconds per call."""
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(0.05 / once))
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(rounds):
        cpu_start, wall_start = time.thread_time(), time.perf_counter()
        for _ in range(calls):
            call()
        cpu.append((time.thread_time() - cpu_start) / calls)
        wall.append((time.perf_counter() - wall_start) / calls)
    return min(cpu), statistics.median(cpu), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    allowlist = compile_filters([ResponseFilter.model_validate(ALLOWLIST)])
    denylist = compile_filters([ResponseFilter.model_validate(DENYLIST)])
    unanchored = compile_filters([ResponseFilter.model_validate(UNANCHORED)])
    big = orders_of_size(1 << 20)
    typical = orders_of_size(5 * 1024)
    huge = orders_of_size(5 << 20)
    narrowing = narrowing_arguments(["status", "limit", "starting_after", "customer"])
    minimums = min_items_by_path({"type": "object", "properties": {"orders": {"type": "array"}}})

    def filtered_and_budgeted(filters: Any, data: Any) -> Callable[[], Any]:
        def call() -> Any:
            result, _ = apply_filters(filters, data, CLAIMS)
            return cut_json(result, 65536, narrowing, minimums)

        return call

    cases: list[tuple[str, int, Callable[[], Any], float | None]] = [
        ("filters, allowlist (row + fields), 1 MiB", len(orjson.dumps(big)),
         lambda: apply_filters(allowlist, big, CLAIMS), 10e-3),
        ("filters, allowlist, unanchored regexes, 1 MiB", len(orjson.dumps(big)),
         lambda: apply_filters(unanchored, big, CLAIMS), 10e-3),
        ("filters, denylist (row + fields), 1 MiB", len(orjson.dumps(big)),
         lambda: apply_filters(denylist, big, CLAIMS), 10e-3),
        ("filters + budget, allowlist, 5 KiB", len(orjson.dumps(typical)),
         filtered_and_budgeted(allowlist, typical), 0.1e-3),
        ("filters + budget, denylist, 5 KiB", len(orjson.dumps(typical)),
         filtered_and_budgeted(denylist, typical), 0.1e-3),
        ("budget only: cut 5 MiB to 64 KiB", len(orjson.dumps(huge)),
         lambda: cut_json(huge, 65536, narrowing, minimums), None),
    ]  # fmt: skip
    print(f"{'case':46} {'bytes':>9} {'cpu best':>10} {'cpu median':>11} {'wall median':>12}  target")
    for name, size, call, target in cases:
        best, median, wall = measure(call, rounds)
        verdict = "" if target is None else f"<= {target * 1e3:g} ms " + ("ok" if median <= target else "MISSED")
        print(f"{name:46} {size:>9} {best * 1e3:>8.3f}ms {median * 1e3:>9.3f}ms {wall * 1e3:>10.3f}ms  {verdict}")


if __name__ == "__main__":
    main()
