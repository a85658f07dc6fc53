"""A real orders API for response-shaping tests (tests/specs/orders.yaml), recording every request.

Orders carry internal fields (`cost`, `internalNote`) that callers must not see. `GET /orders?count=N`
answers N generated orders (a large answer), `GET /receipts` a top-level array, `GET /notes?size=N`
N bytes of multi-byte UTF-8 text. `orders_filter` is the filter of the documented orders scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import Receive, Scope, Send

from tests.support.servers import read_body

ORDERS: list[dict[str, Any]] = [
    {"orderId": "o1", "userId": "alice", "amount": 10, "status": "open", "cost": 6, "internalNote": "alice-secret"},
    {"orderId": "o2", "userId": "bob", "amount": 20, "status": "shipped", "cost": 12, "internalNote": "bob-secret"},
    {"orderId": "o3", "userId": "alice", "amount": 30, "status": "shipped", "cost": 18, "internalNote": "a-2"},
    {"orderId": "o4", "userId": "user.abc+1", "amount": 40, "status": "open", "cost": 24, "internalNote": "dot"},
    {"orderId": "o5", "userId": "userXabc+1", "amount": 50, "status": "open", "cost": 30, "internalNote": "x-secret"},
]
USERS = ("alice", "bob", "user.abc+1", "userXabc+1")
NOTE_TEXT = "héllo wörld ✓ "  # 1-, 2- and 3-byte characters


def generated_order(i: int) -> dict[str, Any]:
    return {
        "orderId": f"g{i}",
        "userId": USERS[i % len(USERS)],
        "amount": i,
        "status": "open",
        "cost": i / 2,
        "internalNote": "n" * 120,
    }


def orders_filter(**overrides: Any) -> dict[str, Any]:
    """The orders scenario of the docs: each caller sees only their own orders, with four fields."""
    spec: dict[str, Any] = {
        "tools": ["shop_list_orders", "shop_get_order"],
        "variables": {"callerSub": {"claim": "sub"}},
        "default": "destroy",
        "notes": "Strip orders not belonging to the caller; remove internal fields",
        "operations": [
            {
                "effect": "retain",
                "path": "^orders$",
                "match_field": "^userId$",
                "match_value": "^{{callerSub}}$",
                "priority": 10,
                "notes": "Retain only orders where userId is the caller's sub",
            },
            {
                "effect": "retain",
                "path": "^orders\\.(orderId|userId|amount|status)$",
                "priority": 5,
                "notes": "Retain only these fields on each surviving order",
            },
        ],
    }
    spec.update(overrides)
    return spec


@dataclass
class OrdersUpstream:
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, query string)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        query = dict(parse_qsl(scope["query_string"].decode()))
        path = scope["path"]
        self.requests.append((path, scope["query_string"].decode()))
        status, content_type, body = self._answer(path, query)
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _answer(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        if path == "/orders":
            count = int(query.get("count", 0))
            orders = [generated_order(i) for i in range(count)] if count else ORDERS
            return 200, "application/json", orjson.dumps({"orders": orders, "next": None})
        if path.startswith("/orders/"):
            order_id = path.removeprefix("/orders/")
            found = next((o for o in ORDERS if o["orderId"] == order_id), None)
            if found is None:
                problem = {"error": "no such order", "orderId": order_id, "internalNote": "lookup-secret"}
                return 404, "application/json", orjson.dumps(problem)
            return 200, "application/json", orjson.dumps(found)
        if path == "/receipts":
            receipts = [{"receiptId": f"r{i}", "text": "receipt text " * 3} for i in range(100)]
            return 200, "application/json", orjson.dumps(receipts)
        if path == "/notes":
            size = int(query.get("size", 100))
            text = (NOTE_TEXT * (size // len(NOTE_TEXT.encode()) + 1)).encode()[:size].decode(errors="ignore")
            return 200, "text/plain; charset=utf-8", text.encode()
        return 404, "application/json", b'{"error": "not found"}'
