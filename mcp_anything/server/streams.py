"""The server-to-client event streams of one MCP endpoint, both protocol generations.

- 2025-11-25 and older: `GET` with a session opens the stream that carries `notifications/tools/list_changed`;
  it lasts while the session does, which another replica may end.
- 2026-07-28: a `subscriptions/listen` request's response is the stream (acknowledgement, then
  `notifications/tools/list_changed` tagged with the subscription id, then the request's result when the
  server ends it).

`server.sessions` holds the open streams and caps them; this module frames and pumps their events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY
from starlette.types import Receive, Scope, Send

from mcp_anything.server.rpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    SERVER_INFO_META_KEY,
    Handler,
    HttpError,
    RequestContext,
    error_body,
    rpc_error_json,
    send_json,
)
from mcp_anything.server.sessions import END_OF_STREAM, SessionStore, SessionsUnavailable, Stream, sse_event

SSE_PING_SECONDS = 15.0
# In the ASGI scope, when set: a callable telling the app this request now only streams (holds no upstream
# call), so a reload need not wait for it. GET streams are never counted in the first place.
RELEASE_SCOPE_KEY = "mcp_anything.release"


class EventStreams:
    """The streams of one endpoint (`endpoint`), fed by `sessions`."""

    def __init__(self, handler: Handler, sessions: SessionStore, endpoint: str) -> None:
        self.handler = handler
        self.sessions = sessions
        self.endpoint = endpoint

    async def session_stream(self, receive: Receive, send: Send, caller: str, session_id: str, token: str) -> None:
        """The `GET` stream of the session `session_id`, whose token is `token`, until it ends or the client goes."""
        stream = self._open_stream(caller, session_id=session_id)

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

    async def listen(
        self,
        send: Send,
        receive: Receive,
        scope: Scope,
        ctx: RequestContext,
        request_id: str | int,
        params: dict[str, Any],
        caller: str,
    ) -> None:
        """One `subscriptions/listen` stream: the acknowledgement, then list changes, until either side ends it."""
        if "text/event-stream" not in ctx.headers.get("accept", ""):
            body = error_body(request_id, INVALID_REQUEST, "subscriptions/listen needs Accept: text/event-stream")
            await send_json(send, 406, body)
            return
        requested = params.get("notifications")
        if not isinstance(requested, dict):
            body = error_body(request_id, INVALID_PARAMS, "subscriptions/listen needs `notifications`, an object")
            await send_json(send, 400, body)
            return
        await self.handler.admit(ctx)
        # Tools are all this server lists: any other kind asked for is left out of the acknowledgement.
        honored = {"toolsListChanged": True} if requested.get("toolsListChanged") is True else {}
        stream = self._open_stream(caller, subscription_id=request_id, notify=bool(honored))
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
            raise HttpError(503, rpc_error_json(INTERNAL_ERROR, message), {"Retry-After": "5"})
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


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
