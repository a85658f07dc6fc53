"""One upstream HTTP API: its pooled client, sending a built request, and mapping the response to an MCP result.

aiohttp was chosen by measurement over httpx2: proxying one call through a
bare JSON-RPC handler adds about 0.55 ms with aiohttp against 1.3 ms with
httpx2 on the 2-core reference machine (see docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from mcp_anything.breaker import CircuitBreaker
from mcp_anything.config import UpstreamConfig
from mcp_anything.outbound import OutboundAuth, OutboundAuthError
from mcp_anything.response_body import BodyTooLarge, read_capped
from mcp_anything.tools import HttpRequest, Tool

log = logging.getLogger(__name__)

ERROR_BODY_CHARS = 2000  # how much of a non-2xx body an isError result quotes
# Responses that say the upstream (or the proxy in front of it) is unavailable: they count
# against the circuit breaker. A 500 does not: it is often one bad input, and an agent repeating
# one bad call must not cut every caller off an upstream.
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
# Connection failures (refused, no connection in time, dropped before a response): retried for `retries.methods`.
_CONNECTION_ERRORS = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.ServerDisconnectedError)


@dataclass(slots=True)
class CallOutcome:
    """An MCP `tools/call` result plus what the call log needs."""

    result: dict[str, Any]
    status: int | None  # upstream HTTP status; None when no response arrived
    failure: str | None = None  # why this call counts as an upstream failure (circuit breaker)
    # The `status` label of mcp_anything_upstream_errors_total when the call failed: a non-2xx status
    # ("404"), or circuit_open, outbound_auth, too_large, connect, timeout, request.
    error: str | None = None


def error_result(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}


class Upstream:
    def __init__(self, config: UpstreamConfig, base_url: str, auth: OutboundAuth) -> None:
        self.name = config.name
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.config = config
        self.max_response_bytes = int(config.max_response_bytes)
        self.breaker = CircuitBreaker(config.circuit_breaker.failures, config.circuit_breaker.reset_after)
        retries = config.retries
        self._retry_methods = frozenset(retries.methods) if retries.attempts else frozenset()
        self._retry_statuses = frozenset(retries.statuses)
        # Configured static headers are gateway headers: declared header parameters never override them.
        self._static_headers = dict(config.headers)
        self._static_lower = {k.lower() for k in self._static_headers}
        self._default_timeout = self._timeout(config.timeout)
        self._session: aiohttp.ClientSession | None = None

    def _timeout(self, total: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=total, sock_connect=self.config.connect_timeout, sock_read=self.config.read_timeout
        )

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use so it binds to the serving event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.config.max_connections, keepalive_timeout=30),
                timeout=self._default_timeout,
                # Upstream cookies must never be shared between callers.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.auth.aclose()

    async def call(self, tool: Tool, request: HttpRequest) -> CallOutcome:
        breaker = self.breaker
        if not breaker.allow():
            return CallOutcome(error_result(self._circuit_open_message(tool)), None, None, "circuit_open")
        try:
            outcome = await self._call(tool, request)
        except BaseException:  # cancelled: the caller went away, so this call says nothing about the upstream
            breaker.abandon()
            raise
        if outcome.failure is None:
            breaker.record_success()
        else:
            breaker.record_failure(outcome.failure)
        return outcome

    def _circuit_open_message(self, tool: Tool) -> str:
        breaker = self.breaker
        retry_in = breaker.retry_in()
        when = f"it will try again in {math.ceil(retry_in)}s" if retry_in else "a probe call is checking it now"
        return (
            f"Upstream '{self.name}' is unavailable: its last {breaker.consecutive_failures} calls failed"
            f" (last: {breaker.last_failure}), so the gateway is not calling it; {when} ({tool.method} {tool.path})"
        )

    async def _call(self, tool: Tool, request: HttpRequest) -> CallOutcome:
        where = f"{tool.method} {tool.path}"
        config = self.config
        try:
            status, headers, body = await self._send_authenticated(tool, request)
        except OutboundAuthError as exc:
            message = f"Could not authenticate to upstream '{self.name}': {exc}"
            return CallOutcome(error_result(message), None, None, "outbound_auth")
        except BodyTooLarge:
            message = f"Upstream '{self.name}' response exceeds {self.max_response_bytes} bytes ({where})"
            return CallOutcome(error_result(message), None, None, "too_large")
        except aiohttp.ConnectionTimeoutError:
            reason = f"no connection within {config.connect_timeout:g}s"
            message = f"Could not connect to upstream '{self.name}' at {self.base_url}: {reason} ({where})"
            return CallOutcome(error_result(message), None, reason, "connect")
        except aiohttp.SocketTimeoutError:
            reason = f"no data for {config.read_timeout:g}s"
            message = f"Upstream '{self.name}' stopped sending: {reason} (read_timeout) ({where})"
            return CallOutcome(error_result(message), None, reason, "timeout")
        except TimeoutError:
            reason = f"no response within {config.timeout:g}s"
            message = f"Upstream '{self.name}' did not respond within {config.timeout:g}s ({where})"
            return CallOutcome(error_result(message), None, reason, "timeout")
        except aiohttp.ClientConnectorError as exc:
            reason = _connect_failure(exc.os_error)
            message = f"Could not connect to upstream '{self.name}' at {self.base_url}: {reason} ({where})"
            return CallOutcome(error_result(message), None, reason, "connect")
        except aiohttp.ClientPayloadError:
            reason = "response cut off"
            message = f"Upstream '{self.name}' closed the connection before the whole response arrived ({where})"
            return CallOutcome(error_result(message), None, reason, "request")
        except aiohttp.ClientError as exc:
            reason = type(exc).__name__
            message = f"Upstream '{self.name}' request failed: {reason} ({where})"
            return CallOutcome(error_result(message), None, reason, "request")
        failure = f"HTTP {status}" if status in UNAVAILABLE_STATUSES else None
        error = None if 200 <= status < 300 else str(status)
        return CallOutcome(self._to_result(tool, status, headers.get("Content-Type", ""), body), status, failure, error)

    async def _send_authenticated(self, tool: Tool, request: HttpRequest) -> tuple[int, Any, bytes]:
        if not tool.auth_required:
            return await self._send(request)
        attempt = _copy(request)
        await self.auth.apply(attempt)
        status, headers, body = await self._send(attempt)
        if status == 401 and await self.auth.refresh():
            attempt = _copy(request)
            await self.auth.apply(attempt)
            status, headers, body = await self._send(attempt)
        return status, headers, body

    async def _send(self, request: HttpRequest) -> tuple[int, Any, bytes]:
        """Send with retries: for the configured methods, on connection errors and the configured statuses.

        `timeout` bounds the whole exchange, retries and their waits included.
        """
        if request.method not in self._retry_methods:
            return await self._send_once(request, self._default_timeout)
        retries = self.config.retries
        deadline = time.monotonic() + self.config.timeout
        timeout = self._default_timeout
        attempt = 0
        while True:
            error: Exception | None = None
            try:
                response = await self._send_once(request, timeout)
            except _CONNECTION_ERRORS as exc:
                error = exc
            else:
                if response[0] not in self._retry_statuses:
                    return response
            # Full jitter: concurrent callers of a struggling upstream spread their retries out.
            delay = random.uniform(0, retries.backoff * 2**attempt)
            remaining = deadline - time.monotonic() - delay
            if attempt == retries.attempts or remaining <= 0:
                if error is not None:
                    raise error
                return response
            await asyncio.sleep(delay)
            timeout = self._timeout(remaining)
            attempt += 1

    async def _send_once(self, request: HttpRequest, limits: aiohttp.ClientTimeout) -> tuple[int, Any, bytes]:
        async with self._client().request(
            request.method,
            self.url_for(request),
            headers=self.headers_for(request),
            data=request.body,
            allow_redirects=False,
            timeout=limits,
        ) as response:
            return response.status, response.headers, await read_capped(response, self.max_response_bytes)

    def url_for(self, request: HttpRequest) -> URL:
        url = self.base_url + request.path
        if request.query:
            url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in request.query)
        return URL(url, encoded=True)

    def headers_for(self, request: HttpRequest) -> dict[str, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in self._static_lower}
        headers.update(self._static_headers)
        if request.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in request.cookies.items())
        return headers

    def _to_result(self, tool: Tool, status: int, content_type: str, body: bytes) -> dict[str, Any]:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if not 200 <= status < 300:
            return error_result(_describe_error(self.name, tool, status, media_type, body))
        if _is_json(media_type):
            try:
                data = orjson.loads(body) if body else None
            except orjson.JSONDecodeError as exc:
                # Not a result: a tool with an output schema must return structured content, and a caller
                # cannot tell a half-written document from a whole one.
                excerpt = body[:200].decode("utf-8", "replace")
                return error_result(
                    f"Upstream '{self.name}' sent invalid {media_type} for {tool.method} {tool.path} ({exc}): {excerpt}"
                )
            return _json_result(self.name, tool, data, body.decode("utf-8", "replace"))
        if tool.check_output is not None:
            # The client refuses a successful result without the structuredContent the outputSchema promises.
            return error_result(_not_the_declared_json(self.name, tool, status, media_type, body))
        if not body:
            return {"content": [{"type": "text", "text": f"HTTP {status} (no content)"}], "isError": False}
        if _is_text(media_type):
            return {"content": [{"type": "text", "text": body.decode("utf-8", "replace")}], "isError": False}
        resource = {
            "uri": f"mcp-anything://{self.name}{tool.path}",
            "mimeType": media_type or "application/octet-stream",
            "blob": base64.b64encode(body).decode("ascii"),
        }
        return {"content": [{"type": "resource", "resource": resource}], "isError": False}


def _connect_failure(error: OSError | None) -> str:
    """`connection refused`, `name or service not known`...: the OS's words, not asyncio's wrapper text."""
    if error is None:
        return "connection failed"
    if error.errno and error.errno > 0:
        return os.strerror(error.errno).lower()
    return (error.strerror or "connection failed").lower()


def _copy(request: HttpRequest) -> HttpRequest:
    return HttpRequest(
        request.method, request.path, list(request.query), dict(request.headers), dict(request.cookies), request.body
    )


def _json_result(upstream: str, tool: Tool, data: Any, text: str) -> dict[str, Any]:
    """A JSON response as a result: the text, plus structuredContent checked against the tool's outputSchema.

    The MCP client refuses a successful result whose structuredContent contradicts the outputSchema
    (or that has none), so an upstream drifting from its spec becomes an `isError` result instead:
    clients do not check those, and the caller still gets the data, after the mismatch.
    """
    if isinstance(data, dict) and not tool.wraps_result:
        structured = data
    elif tool.objects_only:
        return {"content": [{"type": "text", "text": text}], "isError": False}
    else:
        structured = {"result": data}
    mismatch = tool.check_output(structured) if tool.check_output is not None else None
    if mismatch is not None:
        fields = {"tool": tool.name, "upstream": upstream, "where": mismatch.where, "keyword": mismatch.keyword}
        log.warning("upstream response does not match the tool's output schema", extra={"fields": fields})
        message = (
            f"Upstream '{upstream}' answered {tool.method} {tool.path} with JSON that does not match the output "
            f"schema its spec declares ({mismatch.where}: {mismatch.message}). The response as received:\n{text}"
        )
        return error_result(message)
    return {"content": [{"type": "text", "text": text}], "structuredContent": structured, "isError": False}


def _not_the_declared_json(upstream: str, tool: Tool, status: int, media_type: str, body: bytes) -> str:
    answer = f"HTTP {status} " + (
        f"with {media_type or 'no content type'} ({len(body)} bytes)" if body else "and no body"
    )
    text = body[:ERROR_BODY_CHARS].decode("utf-8", "replace") if body and _is_text(media_type) else ""
    return (
        f"Upstream '{upstream}' answered {tool.method} {tool.path} with {answer} instead of the JSON result its spec"
        " declares" + (f":\n{text}" if text else "")
    )


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _is_text(media_type: str) -> bool:
    return (
        media_type.startswith("text/")
        or media_type.endswith(("+xml", "/xml", "/javascript", "/x-www-form-urlencoded", "/yaml"))
        or media_type == ""
    )


def _describe_error(upstream: str, tool: Tool, status: int, media_type: str, body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    if media_type == "application/problem+json":
        text = _render_problem(text)
    if len(text) > ERROR_BODY_CHARS:
        text = text[:ERROR_BODY_CHARS] + f"... ({len(body)} bytes, truncated)"
    return f"Upstream '{upstream}' returned HTTP {status} for {tool.method} {tool.path}" + (f": {text}" if text else "")


def _render_problem(text: str) -> str:
    """RFC 9457 problem details as one readable line: `title: detail (type)`."""
    try:
        problem = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if not isinstance(problem, dict):
        return text
    parts = [str(problem[k]) for k in ("title", "detail") if problem.get(k)]
    rendered = ": ".join(parts) or text
    extras = {k: v for k, v in problem.items() if k not in ("title", "detail", "status")}
    return rendered + (f" {orjson.dumps(extras).decode()}" if extras else "")


async def close_all(upstreams: list[Upstream]) -> None:
    await asyncio.gather(*(u.aclose() for u in upstreams), return_exceptions=True)
