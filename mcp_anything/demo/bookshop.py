"""The demo bookshop: a small in-memory API, and the config that serves it as tools.

`mcp-anything serve` with no `--config` mounts this API at `/demo-api` and
serves its operations as tools at `/mcp`, so a newcomer has working tools with
zero setup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_anything.config import Config, parse_config

SPEC = Path(__file__).parent / "openapi.yaml"
MOUNT = "/demo-api"


def demo_config(host: str, port: int) -> Config:
    # The gateway calls the demo API over loopback even when it listens on all interfaces.
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    raw = {
        "server": {"host": host, "port": port},
        "groups": [
            {"name": "demo", "endpoint": "/mcp", "upstreams": ["bookshop"], "inbound_auth": {"strategy": "none"}}
        ],
        "upstreams": [
            {
                "name": "bookshop",
                "tool_prefix": "shop",
                "base_url": f"http://{local}:{port}{MOUNT}",
                "openapi": {"source": str(SPEC)},
            }
        ],
    }
    return parse_config(raw, base_dir=SPEC.parent)


def demo_api() -> Starlette:
    books: dict[int, dict[str, Any]] = {
        1: {"id": 1, "title": "The Left Hand of Darkness", "author": "Ursula K. Le Guin", "year": 1969},
        2: {"id": 2, "title": "A Wizard of Earthsea", "author": "Ursula K. Le Guin", "year": 1968},
        3: {"id": 3, "title": "Kindred", "author": "Octavia E. Butler", "year": 1979},
    }

    async def list_books(request: Request) -> Response:
        author = request.query_params.get("author")
        limit = int(request.query_params.get("limit", 20))
        found = [b for b in books.values() if author is None or b["author"] == author]
        return JSONResponse({"books": found[:limit]})

    async def create_book(request: Request) -> Response:
        body = await request.json()
        book = {"id": max(books, default=0) + 1, **{k: body[k] for k in ("title", "author", "year") if k in body}}
        books[book["id"]] = book
        return JSONResponse(book, status_code=201)

    async def get_book(request: Request) -> Response:
        book = books.get(request.path_params["book_id"])
        if book is None:
            return JSONResponse({"error": "no such book"}, status_code=404)
        return JSONResponse(book)

    async def delete_book(request: Request) -> Response:
        books.pop(request.path_params["book_id"], None)
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/books", list_books, methods=["GET"]),
            Route("/books", create_book, methods=["POST"]),
            Route("/books/{book_id:int}", get_book, methods=["GET"]),
            Route("/books/{book_id:int}", delete_book, methods=["DELETE"]),
        ]
    )
