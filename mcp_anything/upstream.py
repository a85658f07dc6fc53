"""One upstream HTTP API: its pooled client, its retries and circuit breaker, and sending a built request.

aiohttp was chosen over httpx2 by measurement (docs/benchmarks.md). The MCP result an
answer becomes is built by `server.results`.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from mcp_anything.breaker import CircuitBreaker
from mcp_anything.config import UpstreamConfig
from mcp_anything.http_client import AsyncHttpClient, BodyTooLarge, HttpPolicy
from mcp_anything.outbound import OutboundAuth, OutboundAuthError
from mcp_anything.outcome import CallOutcome
from mcp_anything.server.results import error_result, http_result
from mcp_anything.tools import HttpRequest, Tool

if TYPE_CHECKING:
    from mcp_anything.server.shape import CallerView

# Responses that say the upstream (or the proxy in front of it) is unavailable: they count
# against the circuit breaker. A 500 does not: it is often one bad input, and an agent repeating
# one bad call must not cut every caller off an upstream.
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
# Connection failures (refused, no connection in time, dropped before a response): retried for `retries.methods`.
_CONNECTION_ERRORS = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.ServerDisconnectedError)
# Outbound strategies whose `refresh` can ask for a second attempt with new credentials after a 401.
_REFRESHING_STRATEGIES = frozenset({"oauth2_client_credentials", "lua", "js"})


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
        # Configured static headers are gateway headers: nothing a request carries overrides them. Declared
        # header parameters of those names are dropped when tools are built; the gateway's own headers
        # (Accept, Content-Type, trace context, credentials) are replaced whatever their case.
        self._static_headers = CIMultiDict(config.headers)
        self._retry_needs_copy = config.outbound_auth.strategy in _REFRESHING_STRATEGIES
        # Redirects are not followed: a 3xx is the upstream's answer, and the credentials stay put.
        policy = HttpPolicy(
            timeout=config.timeout,
            max_body=self.max_response_bytes,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
        )
        self._http = AsyncHttpClient(policy, max_connections=config.max_connections)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self.auth.aclose()

    async def call(self, tool: Tool, request: HttpRequest, view: CallerView | None = None) -> CallOutcome:
        """Send `request` for `tool`; `view`: the caller's response filters, when some apply to the tool."""
        breaker = self.breaker
        if not breaker.allow():
            return CallOutcome(error_result(self._circuit_open_message(tool)), None, None, "circuit_open")
        try:
            outcome = await self._call(tool, request, view)
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

    async def _call(self, tool: Tool, request: HttpRequest, view: CallerView | None) -> CallOutcome:
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
        result = http_result(self.name, tool, status, headers.get("Content-Type", ""), body, view)
        return CallOutcome(result, status, failure, error)

    async def _send_authenticated(self, tool: Tool, request: HttpRequest) -> tuple[int, Any, bytes]:
        if not tool.auth_required:
            return await self._send(request)
        # Credentials go on the request itself; a copy without them is kept only for a strategy that
        # may retry with new credentials, whose headers may differ from the refused ones.
        unauthenticated = _copy(request) if self._retry_needs_copy else None
        await self.auth.apply(request)
        status, headers, body = await self._send(request)
        if unauthenticated is not None and status == 401 and await self.auth.refresh(request):
            await self.auth.apply(unauthenticated)
            status, headers, body = await self._send(unauthenticated)
        return status, headers, body

    async def _send(self, request: HttpRequest) -> tuple[int, Any, bytes]:
        """Send with retries: for the configured methods, on connection errors and the configured statuses.

        `timeout` bounds the whole exchange, retries and their waits included.
        """
        if request.method not in self._retry_methods:
            return await self._send_once(request, None)
        retries = self.config.retries
        deadline = time.monotonic() + self.config.timeout
        timeout = None
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
            timeout = self._http.timeout(remaining)
            attempt += 1

    async def _send_once(self, request: HttpRequest, limits: aiohttp.ClientTimeout | None) -> tuple[int, Any, bytes]:
        response = await self._http.request(
            request.method, self.url_for(request), headers=self.headers_for(request), data=request.body, limits=limits
        )
        return response.status, response.headers, response.body

    def url_for(self, request: HttpRequest) -> URL:
        url = self.base_url + request.path
        if request.query:
            url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in request.query)
        return URL(url, encoded=True)

    def headers_for(self, request: HttpRequest) -> CIMultiDict[str] | dict[str, str]:
        if not self._static_headers and not request.cookies:
            return request.headers
        headers = CIMultiDict(request.headers)
        headers.update(self._static_headers)  # case-insensitive: replaces a request header of any spelling
        if request.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in request.cookies.items())
        return headers


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


async def close_all(upstreams: list[Upstream]) -> None:
    await asyncio.gather(*(u.aclose() for u in upstreams), return_exceptions=True)
