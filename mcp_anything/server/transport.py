"""MCP over Streamable HTTP, both protocol generations, as one ASGI app per endpoint.

- 2026-07-28 (stateless): every POST carries its own envelope (`params._meta`
  protocol version and client capabilities, mirrored in `MCP-Protocol-Version`
  and `Mcp-Method` headers); no handshake, no session. The envelope is checked
  with the SDK's own ladder (`classify_inbound_request`) so both ends agree.
  Change notifications ride a `subscriptions/listen` request, whose response is
  the stream (`server.streams`).
- 2025-11-25 and older: `initialize` opens a session (`Mcp-Session-Id`, a sealed
  token any replica holding the key can open); later requests must present it;
  `DELETE` ends it; `GET` opens the server-to-client event stream that carries
  `notifications/tools/list_changed` (`server.streams`).

Responses are always plain JSON (the transport allows it), so a call costs one
request and one response, with no SSE framing; docs/benchmarks.md compares it with
the SDK's own transport.

This module knows JSON-RPC (`server.rpc`), nothing about tools: a `Handler` (`server.handler.GroupHandler`)
authenticates the caller and serves the methods; `server.sessions` opens, checks and ends sessions and
holds the open streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS, classify_inbound_request, find_duplicated_routing_header
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from mcp_anything.identity import Identity
from mcp_anything.origins import HostOriginPolicy
from mcp_anything.server.rpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SERVER_INFO_META_KEY,
    Handler,
    HttpError,
    RequestContext,
    RpcError,
    error_body,
    rpc_error_json,
    send_json,
)
from mcp_anything.server.sessions import (
    ClientTooLarge,
    InitializeLimited,
    SessionClaims,
    SessionStore,
    SessionsUnavailable,
)
from mcp_anything.server.streams import EventStreams

logger = logging.getLogger("mcp_anything.protocol")


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
        self.streams = EventStreams(handler, sessions, endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._serve(scope, receive, send)
        except asyncio.CancelledError:
            if self.sessions.closing.is_set():  # cut short by the server's shutdown_timeout: say so, then stop
                with contextlib.suppress(Exception):
                    body = error_body(None, INTERNAL_ERROR, "The gateway is shutting down; retry the request")
                    await send_json(send, 503, body, [(b"retry-after", b"1")])
            raise
        except Exception:
            # A bug must not show a traceback to the caller nor take the worker down; the log has it.
            logger.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            with contextlib.suppress(Exception):  # the response may have started already
                await send_json(send, 500, error_body(None, INTERNAL_ERROR, "Internal error; see the gateway log"))

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        headers = Headers(scope=scope)
        if method not in ("POST", "GET", "DELETE"):
            await send_json(send, 405, b"", [(b"allow", b"GET, POST, DELETE")])
            return
        policy = self.policy
        if not policy.any_host and not policy.host_allowed(headers.get("host", "")):
            await send_json(send, 421, error_body(None, INVALID_REQUEST, "Host header not allowed"))
            return
        origin = headers.get("origin")
        if origin is not None and not policy.origin_allowed(origin):
            await send_json(send, 403, error_body(None, INVALID_REQUEST, "Origin not allowed"))
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
            body = error_body(None, INTERNAL_ERROR, "Sessions are unavailable for a moment; retry the request")
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
            await send_json(send, 400, error_body(None, PARSE_ERROR, "Parse error: the body is not valid JSON"))
            return
        if not isinstance(message, dict):
            text = "Batches are not supported" if isinstance(message, list) else "Expected a JSON-RPC object"
            await send_json(send, 400, error_body(None, INVALID_REQUEST, text))
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
            body = error_body(
                request_id if isinstance(request_id, str | int) else None, INVALID_REQUEST, "Invalid Request"
            )
            await send_json(send, 400, body)
            return
        if not isinstance(params, dict):
            await send_json(send, 400, error_body(request_id, INVALID_PARAMS, "params must be an object"))
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
            await send_json(send, 400, error_body(request_id, -32001, f"{duplicated} header appears more than once"))
            return
        verdict = classify_inbound_request(message, headers=headers)
        if not hasattr(verdict, "protocol_version"):
            status = ERROR_CODE_HTTP_STATUS.get(verdict.code, 400)
            await send_json(send, status, error_body(request_id, verdict.code, verdict.message, verdict.data))
            return
        ctx = RequestContext(identity, headers, verdict.protocol_version)
        if rpc_method == "subscriptions/listen":
            await self.streams.listen(send, receive, scope, ctx, request_id, params, _caller(scope, ctx.identity))
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
            await send_json(send, status, error_body(request_id, exc.code, exc.message, exc.data))
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
            await send_json(send, 200, error_body(request_id, exc.code, exc.message, exc.data))
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
                429, rpc_error_json(INVALID_REQUEST, message), {"Retry-After": str(exc.retry_after)}
            ) from None

    async def _session(self, headers: Headers, identity: Identity) -> SessionClaims:
        session_id = headers.get("mcp-session-id")
        if not session_id:
            raise HttpError(400, rpc_error_json(INVALID_REQUEST, "Mcp-Session-Id header is required; send initialize"))
        session = await self.sessions.get(session_id, self.endpoint)
        if session is None:
            # Forged, altered, expired, ended or opened at another endpoint: all the same to the caller.
            raise HttpError(404, rpc_error_json(INVALID_REQUEST, "Session not found or expired; send initialize"))
        if not self.sessions.belongs(session, identity.principal):
            # A session is bound to the caller that opened it: another token cannot ride on it.
            raise HttpError(403, rpc_error_json(INVALID_REQUEST, "This session belongs to another caller"))
        version = headers.get("mcp-protocol-version")
        if version is not None and version != session.protocol_version and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            raise HttpError(400, rpc_error_json(INVALID_REQUEST, f"Unsupported MCP-Protocol-Version {version!r}"))
        return session

    async def _dispatch(self, ctx: RequestContext, rpc_method: str, params: dict[str, Any]) -> dict[str, Any]:
        method = self.handler.methods.get(rpc_method)
        if method is None:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {rpc_method}")
        return await method(ctx, params)

    async def _event_stream(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, identity: Identity
    ) -> None:
        if headers.get("mcp-protocol-version") in MODERN_PROTOCOL_VERSIONS:
            await send_json(send, 405, b"", [(b"allow", b"POST")])
            return
        if "text/event-stream" not in headers.get("accept", ""):
            raise HttpError(406, rpc_error_json(INVALID_REQUEST, "GET needs Accept: text/event-stream"))
        session = await self._session(headers, identity)
        token = headers["mcp-session-id"]
        await self.streams.session_stream(receive, send, _caller(scope, identity), session.id, token)


def _caller(scope: Scope, identity: Identity) -> str:
    """Whom the session caps count: the principal; anonymous callers (all one principal) by address."""
    if identity.strategy != "none":
        return identity.principal
    client = scope.get("client")
    return f"none@{client[0] if client else ''}"
