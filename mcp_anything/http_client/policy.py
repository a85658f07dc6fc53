"""What every outbound HTTP request obeys, whichever transport sends it.

- Timeouts: `timeout` bounds the whole exchange; `connect_timeout` and `read_timeout`, when set, bound
  connecting and each wait for data.
- Body caps: at most `max_body` bytes of body are ever held, counted after decompression (see `body`).
- Redirects: followed only for GET and HEAD, at most `max_redirects` hops (0: a redirect is the answer,
  the default). Credentials given for a request go only to the origin they were given for: a hop to any
  other origin (another host, port or scheme, so an https to http downgrade too) is sent without them,
  and without any `Authorization`, `Proxy-Authorization` or `Cookie` header whoever set it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urljoin, urlsplit

from multidict import CIMultiDictProxy

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Credentials whatever the caller called them: never carried to another origin.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int | None]


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    timeout: float
    max_body: int
    connect_timeout: float | None = None
    read_timeout: float | None = None
    max_redirects: int = 0


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


def origin(url: str) -> Origin:
    """RFC 6454 origin: scheme, host and port, the default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


@dataclass(frozen=True, slots=True)
class Hop:
    """One request of an exchange: the first one, or one a redirect led to."""

    method: str
    url: str
    headers: Mapping[str, str]
    credentials: Mapping[str, str] = field(default_factory=dict)
    credentials_origin: Origin | None = None  # None: the origin of the first request
    redirects: int = 0

    def headers_to_send(self) -> Mapping[str, str]:
        if not self.redirects:
            return {**self.headers, **self.credentials} if self.credentials else self.headers
        if origin(self.url) == self.credentials_origin:
            return {**self.headers, **self.credentials}
        return {k: v for k, v in self.headers.items() if k.lower() not in CREDENTIAL_HEADERS}


def next_hop(policy: HttpPolicy, hop: Hop, status: int, location: str | None) -> Hop | None:
    """Where a response sends the exchange next, or None when this response is the answer."""
    if (
        status not in REDIRECT_STATUSES
        or not location
        or hop.redirects >= policy.max_redirects
        or hop.method not in ("GET", "HEAD")
    ):
        return None
    target = urljoin(hop.url, location.strip())
    if urlsplit(target).scheme.lower() not in _DEFAULT_PORTS:
        return None
    first_origin = hop.credentials_origin if hop.redirects else origin(hop.url)
    return replace(hop, url=target, credentials_origin=first_origin, redirects=hop.redirects + 1)
