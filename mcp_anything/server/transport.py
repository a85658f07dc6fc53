"""MCP over Streamable HTTP, both protocol generations, as one ASGI app per endpoint.

- 2026-07-28 (stateless): every POST carries its own envelope (`params._meta`
  protocol version and client capabilities, mirrored in `MCP-Protocol-Version`
  and `Mcp-Method` headers); no handshake, no session. The envelope is checked
  with the SDK's own ladder (`classify_inbound_request`) so both ends agree.
  Change notifications ride a `subscriptions/listen` request, whose response is
  the stream (acknowledgement, then `notifications/tools/list_changed` tagged
  with the subscription id, then the request's result when the server ends it).
- 2025-11-25 and older: `initialize` opens a session (`Mcp-Session-Id`, a sealed
  token any replica holding the key can open); later requests must present it;
  `DELETE` ends it; `GET` opens the server-to-client event stream that carries
  `notifications/tools/list_changed`.

Responses are always plain JSON (the transport allows it), so a call costs one
request and one response, with no SSE framing; docs/benchmarks.md compares it with
the SDK's own transport.

This module knows JSON-RPC, nothing about tools: a `Handler` (`server.handler.GroupHandler`)
authenticates the caller and serves the methods; `server.sessions` opens, checks and ends sessions and
holds the open streams.

The module is over 400 lines: `McpTransport` is one dispatcher for both protocol generations, and
the session-bound and stateless paths share its checks. Moving the 2026-07-28 envelope checks and
the `subscriptions/listen` stream into a module of their own is the next split.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS, classify_inbound_request, find_duplicated_routing_header
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from mcp_anything.identity import Identity
from mcp_anything.origins import HostOriginPolicy
from mcp_anything.server.sessions import (
    END_OF_STREAM,
    ClientTooLarge,
    InitializeLimited,
    SessionClaims,
    SessionStore,
    SessionsUnavailable,
    Stream,
    sse_event,
)

if TYPE_CHECKING:
    from mcp_anything.authz import Grant

logger = logging.getLogger("mcp_anything.protocol")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

SERVER_INFO_META_KEY = "io.modelcontextprotocol/serverInfo"
SSE_PING_SECONDS = 15.0
# In the ASGI scope, when set: a callable telling the app this request now only streams (holds no upstream
# call), so a reload need not wait for it. GET streams are never counted in the first place.
RELEASE_SCOPE_KEY = "mcp_anything.release"


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


def _error_body(request_id: Any, code: int, message: str, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


class McpTransport:
    """The ASGI app serving one MCP endpoint."""

    def __init__(
        self,
        handler: Handler,
        *,
        sessions: SessionStore,
        policy: HostOriginPolicy,
        endpoint: str = "/mcp",
        max_body_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.handler = handler
        self.sessions = sessions
        self.policy = policy
        self.endpoint = endpoint  # sessions opened here are valid here only
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._serve(scope, receive, send)
        except asyncio.CancelledError:
            if self.sessions.closing.is_set():  # cut short by the server's shutdown_timeout: say so, then stop
                with contextlib.suppress(Exception):
                    body = _error_body(None, INTERNAL_ERROR, "The gateway is shutting down; retry the request")
                    await send_json(send, 503, body, [(b"retry-after", b"1")])
            raise
        except Exception:
            # A bug must not show a traceback to the caller nor take the worker down; the log has it.
            logger.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            with contextlib.suppress(Exception):  # the response may have started already
                await send_json(send, 500, _error_body(None, INTERNAL_ERROR, "Internal error; see the gateway log"))

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        headers = Headers(scope=scope)
        if method not in ("POST", "GET", "DELETE"):
            await send_json(send, 405, b"", [(b"allow", b"GET, POST, DELETE")])
            return
        policy = self.policy
        if not policy.any_host and not policy.host_allowed(headers.get("host", "")):
            await send_json(send, 421, _error_body(None, INVALID_REQUEST, "Host header not allowed"))
            return
        origin = headers.get("origin")
        if origin is not None and not policy.origin_allowed(origin):
            await send_json(send, 403, _error_body(None, INVALID_REQUEST, "Origin not allowed"))
            return
        try:
            identity = await self.handler.authenticate(method, scope["path"], headers)
            if method == "POST":
                await self._post(scope, receive, send, headers, identity)
            elif method == "GET":
                await self._event_stream(scope, receive, send, headers, identity)
            else:
                session = await self._session(headers, identity)
                await self.sessions.end(session, _caller(scope, identity))
                await send_json(send, 200, b"")
        except SessionsUnavailable:
            body = _error_body(None, INTERNAL_ERROR, "Sessions are unavailable for a moment; retry the request")
            await send_json(send, 503, body, [(b"retry-after", b"1")])
        except HttpError as exc:
            extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
            await send_json(send, exc.status, orjson.dumps(exc.body), extra)

    # --- POST: one JSON-RPC message ---------------------------------------------------

    async def _post(self, scope: Scope, receive: Receive, send: Send, headers: Headers, identity: Identity) -> None:
        raw = await self._read_body(receive, headers.get("content-length"))
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await send_json(send, 400, _error_body(None, PARSE_ERROR, "Parse error: the body is not valid JSON"))
            return
        if not isinstance(message, dict):
            text = "Batches are not supported" if isinstance(message, list) else "Expected a JSON-RPC object"
            await send_json(send, 400, _error_body(None, INVALID_REQUEST, text))
            return
        if "id" not in message:  # a notification (or a response): acknowledged, nothing to act on
            await send_json(send, 202, b"")
            return
        request_id = message["id"]
        rpc_method = message.get("method")
        params = message.get("params", {})
        if (
            message.get("jsonrpc") != "2.0"
            or not isinstance(rpc_method, str)
            or isinstance(request_id, bool)
            or not isinstance(request_id, str | int)
        ):
            body = _error_body(
                request_id if isinstance(request_id, str | int) else None, INVALID_REQUEST, "Invalid Request"
            )
            await send_json(send, 400, body)
            return
        if not isinstance(params, dict):
            await send_json(send, 400, _error_body(request_id, INVALID_PARAMS, "params must be an object"))
            return

        if headers.get("mcp-protocol-version") in MODERN_PROTOCOL_VERSIONS:
            await self._modern(send, receive, scope, headers, identity, request_id, rpc_method, params, message)
        else:
            await self._legacy(send, scope, headers, identity, request_id, rpc_method, params)

    async def _read_body(self, receive: Receive, declared_length: str | None) -> bytes:
        if declared_length is not None and declared_length.isdigit() and int(declared_length) > self.max_body_bytes:
            raise self._too_large()  # refused before a byte of the body is read
        chunks = []
        size = 0
        while True:
            event = await receive()
            chunk = event.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not event.get("more_body"):
                return b"".join(chunks)

    def _too_large(self) -> HttpError:
        return HttpError(413, {"error": "request_too_large", "limit_bytes": self.max_body_bytes})

    async def _modern(
        self,
        send: Send,
        receive: Receive,
        scope: Scope,
        headers: Headers,
        identity: Identity,
        request_id: Any,
        rpc_method: str,
        params: dict[str, Any],
        message: dict[str, Any],
    ) -> None:
        duplicated = find_duplicated_routing_header((k.decode("latin-1"), "") for k, _ in scope["headers"])
        if duplicated is not None:
            await send_json(send, 400, _error_body(request_id, -32001, f"{duplicated} header appears more than once"))
            return
        verdict = classify_inbound_request(message, headers=headers)
        if not hasattr(verdict, "protocol_version"):
            status = ERROR_CODE_HTTP_STATUS.get(verdict.code, 400)
            await send_json(send, status, _error_body(request_id, verdict.code, verdict.message, verdict.data))
            return
        ctx = RequestContext(identity, headers, verdict.protocol_version)
        if rpc_method == "subscriptions/listen":
            await self._listen(send, receive, scope, ctx, request_id, params)
            return
        try:
            if rpc_method == "server/discover":
                await self.handler.admit(ctx)
                result: dict[str, Any] = {
                    "supportedVersions": list(MODERN_PROTOCOL_VERSIONS),
                    "capabilities": self.handler.capabilities,
                }
                if self.handler.instructions:
                    result["instructions"] = self.handler.instructions
            else:
                result = await self._dispatch(ctx, rpc_method, params)
        except RpcError as exc:
            status = ERROR_CODE_HTTP_STATUS.get(exc.code, 200)
            await send_json(send, status, _error_body(request_id, exc.code, exc.message, exc.data))
            return
        if rpc_method in ("tools/list", "server/discover"):
            result["cacheScope"] = self.handler.cache_scope
            result["ttlMs"] = self.handler.list_ttl_ms
        result["resultType"] = "complete"
        result["_meta"] = {SERVER_INFO_META_KEY: self.handler.server_info}
        await send_json(send, 200, orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}))

    async def _legacy(
        self,
        send: Send,
        scope: Scope,
        headers: Headers,
        identity: Identity,
        request_id: Any,
        rpc_method: str,
        params: dict[str, Any],
    ) -> None:
        try:
            if rpc_method == "initialize":
                requested = params.get("protocolVersion")
                version = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
                await self.handler.admit(RequestContext(identity, headers, version))
                session_id = await self._open_session(scope, identity, version, params)
                result: dict[str, Any] = {
                    "protocolVersion": version,
                    "capabilities": self.handler.capabilities,
                    "serverInfo": self.handler.server_info,
                }
                if self.handler.instructions:
                    result["instructions"] = self.handler.instructions
            else:
                session = await self._session(headers, identity)
                session_id = headers["mcp-session-id"]
                ctx = RequestContext(identity, headers, session.protocol_version)
                result = {} if rpc_method == "ping" else await self._dispatch(ctx, rpc_method, params)
        except RpcError as exc:
            await send_json(send, 200, _error_body(request_id, exc.code, exc.message, exc.data))
            return
        body = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})
        await send_json(send, 200, body, [(b"mcp-session-id", session_id.encode("latin-1"))])

    async def _open_session(self, scope: Scope, identity: Identity, version: str, params: dict[str, Any]) -> str:
        """A new session's id: the sealed token, carrying what the client said about itself."""
        client = {k: params[k] for k in ("clientInfo", "capabilities") if isinstance(params.get(k), dict)}
        try:
            return await self.sessions.open(
                principal=identity.principal,
                caller=_caller(scope, identity),
                protocol_version=version,
                endpoint=self.endpoint,
                client=client,
            )
        except ClientTooLarge as exc:
            raise RpcError(INVALID_PARAMS, f"initialize: {exc}") from None
        except InitializeLimited as exc:
            message = f"Too many sessions opened: {exc.rule}; retry in {exc.retry_after}s"
            raise HttpError(
                429, _rpc_error_json(INVALID_REQUEST, message), {"Retry-After": str(exc.retry_after)}
            ) from None

    async def _session(self, headers: Headers, identity: Identity) -> SessionClaims:
        session_id = headers.get("mcp-session-id")
        if not session_id:
            raise HttpError(400, _rpc_error_json(INVALID_REQUEST, "Mcp-Session-Id header is required; send initialize"))
        session = await self.sessions.get(session_id, self.endpoint)
        if session is None:
            # Forged, altered, expired, ended or opened at another endpoint: all the same to the caller.
            raise HttpError(404, _rpc_error_json(INVALID_REQUEST, "Session not found or expired; send initialize"))
        if not self.sessions.belongs(session, identity.principal):
            # A session is bound to the caller that opened it: another token cannot ride on it.
            raise HttpError(403, _rpc_error_json(INVALID_REQUEST, "This session belongs to another caller"))
        version = headers.get("mcp-protocol-version")
        if version is not None and version != session.protocol_version and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            raise HttpError(400, _rpc_error_json(INVALID_REQUEST, f"Unsupported MCP-Protocol-Version {version!r}"))
        return session

    async def _dispatch(self, ctx: RequestContext, rpc_method: str, params: dict[str, Any]) -> dict[str, Any]:
        method = self.handler.methods.get(rpc_method)
        if method is None:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {rpc_method}")
        return await method(ctx, params)

    # --- streams: GET (handshake-era sessions) and subscriptions/listen (2026-07-28) ------

    async def _event_stream(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, identity: Identity
    ) -> None:
        if headers.get("mcp-protocol-version") in MODERN_PROTOCOL_VERSIONS:
            await send_json(send, 405, b"", [(b"allow", b"POST")])
            return
        if "text/event-stream" not in headers.get("accept", ""):
            raise HttpError(406, _rpc_error_json(INVALID_REQUEST, "GET needs Accept: text/event-stream"))
        session = await self._session(headers, identity)
        token = headers["mcp-session-id"]
        stream = self._open_stream(_caller(scope, identity), session_id=session.id)

        async def still_open() -> bool:
            # Another replica may have ended the session; a revocation list that cannot be read ends it too.
            try:
                return await self.sessions.get(token, self.endpoint) is not None
            except SessionsUnavailable:
                return False

        try:
            await _start_stream(send, [(b"mcp-session-id", token.encode("latin-1"))])
            await self._pump(stream, receive, send, still_open)
        finally:
            self.sessions.close_stream(stream)
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _listen(
        self,
        send: Send,
        receive: Receive,
        scope: Scope,
        ctx: RequestContext,
        request_id: str | int,
        params: dict[str, Any],
    ) -> None:
        """One `subscriptions/listen` stream: the acknowledgement, then list changes, until either side ends it."""
        if "text/event-stream" not in ctx.headers.get("accept", ""):
            body = _error_body(request_id, INVALID_REQUEST, "subscriptions/listen needs Accept: text/event-stream")
            await send_json(send, 406, body)
            return
        requested = params.get("notifications")
        if not isinstance(requested, dict):
            body = _error_body(request_id, INVALID_PARAMS, "subscriptions/listen needs `notifications`, an object")
            await send_json(send, 400, body)
            return
        await self.handler.admit(ctx)
        # Tools are all this server lists: any other kind asked for is left out of the acknowledgement.
        honored = {"toolsListChanged": True} if requested.get("toolsListChanged") is True else {}
        stream = self._open_stream(_caller(scope, ctx.identity), subscription_id=request_id, notify=bool(honored))
        release = scope.get(RELEASE_SCOPE_KEY)
        if release is not None:
            release()
        meta = {SUBSCRIPTION_ID_META_KEY: request_id}
        try:
            await _start_stream(send, [])
            ack = {"notifications": honored, "_meta": meta}
            frame = sse_event({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": ack})
            await send({"type": "http.response.body", "body": frame, "more_body": True})
            ended_by_server = await self._pump(stream, receive, send, None)
        finally:
            self.sessions.close_stream(stream)
        final = b""
        if ended_by_server:  # a graceful end: the request's result tells the client the stream ended on purpose
            result = {"_meta": {**meta, SERVER_INFO_META_KEY: self.handler.server_info}, "resultType": "complete"}
            final = sse_event({"jsonrpc": "2.0", "id": request_id, "result": result})
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": final, "more_body": False})

    def _open_stream(
        self,
        caller: str,
        *,
        session_id: str | None = None,
        subscription_id: str | int | None = None,
        notify: bool = True,
    ) -> Stream:
        stream = self.sessions.open_stream(
            self.endpoint, caller=caller, session_id=session_id, subscription_id=subscription_id, notify=notify
        )
        if stream is None:
            message = "Too many open streams on this server; retry later"
            raise HttpError(503, _rpc_error_json(INTERNAL_ERROR, message), {"Retry-After": "5"})
        return stream

    async def _pump(
        self, stream: Stream, receive: Receive, send: Send, still_open: Callable[[], Awaitable[bool]] | None
    ) -> bool:
        """Forward `stream`'s events until the client goes (False) or the server ends the stream (True).

        Pings keep proxies from closing an idle stream; with `still_open`, each ping first checks the stream
        is still wanted.
        """
        disconnected = asyncio.ensure_future(_wait_disconnect(receive))
        closing = asyncio.ensure_future(self.sessions.closing.wait())
        try:
            while True:
                next_event = asyncio.ensure_future(stream.events.get())
                done, _ = await asyncio.wait(
                    {next_event, disconnected, closing}, timeout=SSE_PING_SECONDS, return_when="FIRST_COMPLETED"
                )
                if next_event in done:
                    event = next_event.result()
                    if event == END_OF_STREAM:
                        return True
                    await send({"type": "http.response.body", "body": event, "more_body": True})
                    continue
                next_event.cancel()
                if disconnected in done:
                    return False
                if closing in done or (still_open is not None and not await still_open()):
                    return True
                await send({"type": "http.response.body", "body": b": ping\r\n\r\n", "more_body": True})
        finally:
            disconnected.cancel()
            closing.cancel()


async def _start_stream(send: Send, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache, no-transform"),
        (b"x-accel-buffering", b"no"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers + extra})


def _caller(scope: Scope, identity: Identity) -> str:
    """Whom the session caps count: the principal; anonymous callers (all one principal) by address."""
    if identity.strategy != "none":
        return identity.principal
    client = scope.get("client")
    return f"none@{client[0] if client else ''}"


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _rpc_error_json(code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
