"""JSON-RPC over HTTP for the MCP endpoint: error codes and errors, the request context, the `Handler`
a transport serves, and whole JSON responses. Shared by the transport and its streams.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from starlette.datastructures import Headers
from starlette.types import Send

from mcp_anything.identity import Identity

if TYPE_CHECKING:
    from mcp_anything.authz import Grant

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

SERVER_INFO_META_KEY = "io.modelcontextprotocol/serverInfo"


class RpcError(Exception):
    """A JSON-RPC error answer to one request."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class HttpError(Exception):
    """Answer the HTTP request itself with `status` (auth failures, gated endpoints)."""

    def __init__(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


@dataclass(slots=True)
class RequestContext:
    identity: Identity
    headers: Headers
    protocol_version: str
    grant: Grant | None = None  # what the caller may do here, decided once per request by the handler


Method = Callable[[RequestContext, Mapping[str, Any]], Awaitable[dict[str, Any]]]


class Handler(Protocol):
    server_info: dict[str, str]
    capabilities: dict[str, Any]
    instructions: str | None
    cache_scope: str  # "private" when results depend on the caller
    methods: dict[str, Method]  # e.g. tools/list, tools/call

    @property
    def list_ttl_ms(self) -> int:
        """How long a client may keep a `tools/list` result."""
        ...

    async def authenticate(self, method: str, path: str, headers: Headers) -> Identity:
        """Return the caller's identity or raise HttpError."""
        ...

    async def admit(self, ctx: RequestContext) -> None:
        """Called before `initialize` and `server/discover`: raise HttpError to refuse a caller the endpoint."""
        ...


_JSON_HEADERS = [(b"content-type", b"application/json")]


async def send_json(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """A whole JSON (or empty) HTTP response."""
    headers = _JSON_HEADERS + [(b"content-length", str(len(body)).encode())] + (extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_body(request_id: Any, code: int, message: str, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


def rpc_error_json(code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
