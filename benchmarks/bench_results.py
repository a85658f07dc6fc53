"""Shaping on the gateway's hot path: an upstream's JSON body to the MCP result, with and without filters.

    python benchmarks/bench_results.py [--rounds 15]

Times `server.results.http_result` as `Upstream` calls it, for a tool built from a real spec by the
gateway's loader (output schema and all), in a group built by `build_gateway`: parse, response filters
(a `CallerView` bound to the caller's claims), result budget, output check against the advertised
(relaxed) schema, and the text rendered. The difference between a case with filters and the same case
without is what filters cost end to end inside the gateway. Figures as in bench_shaping.py: thread CPU
time per call, best and median round, wall-clock median for reference.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import yaml
from bench_shaping import ALLOWLIST, CLAIMS, measure, orders_of_size

from mcp_anything.app import build_gateway
from mcp_anything.config import parse_config
from mcp_anything.identity import Identity
from mcp_anything.server.results import http_result

ORDER = {
    "type": "object",
    "required": ["orderId", "userId", "amount", "currency", "status", "internalCost", "warehouse", "lines"],
    "properties": {
        "orderId": {"type": "integer"},
        "userId": {"type": "string"},
        "amount": {"type": "number"},
        "currency": {"type": "string"},
        "status": {"type": "string", "enum": ["paid", "deleted"]},
        "createdAt": {"type": "string", "format": "date-time"},
        "internalCost": {"type": "number"},
        "note": {"type": "string"},
        "warehouse": {"type": "object", "properties": {"bin": {"type": "string"}, "zone": {"type": "string"}}},
        "lines": {
            "type": "array",
            "items": {"type": "object", "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}}},
        },
    },
}
SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "orders", "version": "1"},
    "paths": {
        "/orders": {
            "get": {
                "operationId": "listOrders",
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                "responses": {
                    "200": {
                        "description": "orders",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["orders", "total"],
                                    "properties": {
                                        "orders": {"type": "array", "items": ORDER},
                                        "total": {"type": "integer"},
                                        "next": {"type": "string", "nullable": True},
                                    },
                                }
                            }
                        },
                    }
                },
            }
        }
    },
}


def group_for(spec_dir: Path, filters: list[dict[str, Any]], max_result_bytes: int) -> Any:
    raw = {
        "groups": [
            {"name": "g", "upstreams": ["shop"], "inbound_auth": {"strategy": "none"}, "response_filters": filters}
        ],
        "upstreams": [
            {
                "name": "shop",
                "base_url": "http://127.0.0.1:9",
                "openapi": {"source": "orders.yaml"},
                "max_result_bytes": max_result_bytes,
            }
        ],
    }
    return build_gateway(parse_config(raw, base_dir=spec_dir, env={})).groups[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    caller = Identity(strategy="jwt", subject=CLAIMS["sub"], claims=CLAIMS)
    allowlist = {**ALLOWLIST, "operations": [*ALLOWLIST["operations"], {"effect": "retain", "path": "^total$"}]}
    with tempfile.TemporaryDirectory() as spec_dir:
        (Path(spec_dir) / "orders.yaml").write_text(yaml.safe_dump(SPEC))
        groups = {
            (filtered, budget): group_for(Path(spec_dir), [allowlist] if filtered else [], budget)
            for filtered in (False, True)
            for budget in (65536, 16 << 20)
        }

    def result_of(body: bytes, filtered: bool, budget: int) -> Callable[[], Any]:
        group = groups[(filtered, budget)]
        tool = group.tools["shop_list_orders"]

        def call() -> Any:
            view = group.caller_view(tool, caller)
            result = http_result("shop", tool, 200, "application/json", body, view)
            assert not result["isError"], result["content"][0]["text"][:300]
            return result

        return call

    typical = orjson.dumps(orders_of_size(5 * 1024))
    big = orjson.dumps(orders_of_size(1 << 20))
    huge = orjson.dumps(orders_of_size(5 << 20))
    cases = [
        ("5 KiB, no filters", typical, result_of(typical, False, 65536)),
        ("5 KiB, allowlist filters", typical, result_of(typical, True, 65536)),
        ("1 MiB, no filters, budget 16 MiB", big, result_of(big, False, 16 << 20)),
        ("1 MiB, allowlist filters, budget 16 MiB", big, result_of(big, True, 16 << 20)),
        ("1 MiB, no filters, cut to 64 KiB", big, result_of(big, False, 65536)),
        ("5 MiB, no filters, cut to 64 KiB", huge, result_of(huge, False, 65536)),
    ]
    header = f"{'case (http_result, body to MCP result)':42} {'bytes':>9} {'cpu best':>10} {'cpu median':>11}"
    print(header + f" {'wall':>10}")
    for name, body, call in cases:
        best, median, wall = measure(call, rounds)
        print(f"{name:42} {len(body):>9} {best * 1e3:>8.3f}ms {median * 1e3:>9.3f}ms {wall * 1e3:>8.3f}ms")


if __name__ == "__main__":
    main()
