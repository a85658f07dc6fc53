"""The blocking HTTP client for code that runs outside the event loop, under the same `HttpPolicy`.

Script `fetch` calls (in the script's worker thread) and spec fetching (at load time, or in the
reload thread) use it. The transport is httpx2's; redirects, credentials and caps are the policy's.
Errors: `httpx2.HTTPError` from the transport, `TimeoutError` when the deadline passes while the
body arrives, `BodyTooLarge` over the cap.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx2
from multidict import CIMultiDict, CIMultiDictProxy

from mcp_anything.http_client.body import BodyTooLarge, collect_capped, declared_too_large
from mcp_anything.http_client.policy import Hop, HttpPolicy, HttpResponse, next_hop


class SyncHttpClient:
    def __init__(self, policy: HttpPolicy) -> None:
        self.policy = policy
        # Environment proxies are ignored, as on the event loop's client: one behaviour for every call.
        self._client = httpx2.Client(follow_redirects=False, trust_env=False)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        credentials: Mapping[str, str] | None = None,
        content: str | bytes | None = None,
        timeout: float | None = None,
    ) -> HttpResponse:
        """Send one exchange within `timeout` seconds (the policy's by default), redirects included."""
        deadline = time.monotonic() + (self.policy.timeout if timeout is None else timeout)
        hop: Hop | None = Hop(method, url, headers or {}, credentials or {})
        while hop is not None:
            with self._client.stream(
                hop.method,
                hop.url,
                headers=dict(hop.headers_to_send()),
                content=content if not hop.redirects else None,
                timeout=self._timeout(deadline),
            ) as response:
                following = next_hop(self.policy, hop, response.status_code, response.headers.get("Location"))
                if following is None:
                    return HttpResponse(response.status_code, _headers(response), self._read(response, deadline))
            hop = following
        raise AssertionError("unreachable")

    def _timeout(self, deadline: float) -> httpx2.Timeout:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        policy = self.policy
        return httpx2.Timeout(
            left, connect=min(left, policy.connect_timeout or left), read=min(left, policy.read_timeout or left)
        )

    def _read(self, response: httpx2.Response, deadline: float) -> bytes:
        limit = self.policy.max_body
        length = response.headers.get("Content-Length")
        declared = int(length) if length is not None and length.isdigit() else None
        if declared_too_large(declared, response.headers.get("Content-Encoding"), limit):
            raise BodyTooLarge
        return collect_capped(response.iter_bytes(), limit, deadline)

    def close(self) -> None:
        self._client.close()


def _headers(response: httpx2.Response) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(response.headers.multi_items()))
