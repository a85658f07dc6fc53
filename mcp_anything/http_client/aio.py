"""The event loop's HTTP client: one pooled aiohttp session per client, under an `HttpPolicy`.

Library errors (`aiohttp.ClientError`, `TimeoutError`) reach the caller unchanged, since each
caller words its own failures; a body over the cap raises `BodyTooLarge`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from mcp_anything.http_client.body import read_capped
from mcp_anything.http_client.policy import Hop, HttpPolicy, HttpResponse, next_hop


class AsyncHttpClient:
    def __init__(self, policy: HttpPolicy, *, max_connections: int = 100) -> None:
        self.policy = policy
        self._max_connections = max_connections
        self._default_timeout = self.timeout(policy.timeout)
        self._session: aiohttp.ClientSession | None = None

    def timeout(self, total: float) -> aiohttp.ClientTimeout:
        """The policy's limits with another bound on the whole exchange (what is left of a deadline, say)."""
        policy = self.policy
        return aiohttp.ClientTimeout(total=total, sock_connect=policy.connect_timeout, sock_read=policy.read_timeout)

    @property
    def open(self) -> bool:
        """Connections may be held: used since created or last closed."""
        return self._session is not None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use so it binds to the serving event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=30),
                timeout=self._default_timeout,
                # Cookies a server sets must never be shared between callers.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        headers: Mapping[str, str] | None = None,
        credentials: Mapping[str, str] | None = None,
        data: Any = None,
        limits: aiohttp.ClientTimeout | None = None,
    ) -> HttpResponse:
        """Send one exchange (redirects as the policy allows); `credentials` go only to `url`'s origin."""
        session = self._client()
        limits = limits or self._default_timeout
        if not self.policy.max_redirects and not credentials:  # the upstream call path: one request
            async with session.request(
                method, url, headers=headers, data=data, allow_redirects=False, timeout=limits
            ) as response:
                body = await read_capped(response, self.policy.max_body)
                return HttpResponse(response.status, response.headers, body)
        hop: Hop | None = Hop(method, str(url), headers or {}, credentials or {})
        while hop is not None:
            async with session.request(
                hop.method,
                URL(hop.url),
                headers=hop.headers_to_send(),
                data=data if not hop.redirects else None,
                allow_redirects=False,
                timeout=limits,
            ) as response:
                following = next_hop(self.policy, hop, response.status, response.headers.get("Location"))
                if following is None:
                    body = await read_capped(response, self.policy.max_body)
                    return HttpResponse(response.status, response.headers, body)
            hop = following
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
