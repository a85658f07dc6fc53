"""The outbound authentication contract, and the two ways a strategy places a credential.

The caller's own credentials never reach an upstream: strategies only ever add the
upstream's configured credentials to a request the gateway built itself.
"""

from __future__ import annotations

from typing import Protocol

from mcp_anything.tools import HttpRequest


class OutboundAuthError(Exception):
    """Credentials could not be obtained; the message becomes the tool's isError text (never a secret)."""


class OutboundAuth(Protocol):
    async def apply(self, request: HttpRequest) -> None:
        """Add credentials to `request` (headers or query); raise OutboundAuthError on failure."""
        ...

    async def refresh(self, refused: HttpRequest | None = None) -> bool:
        """The upstream answered 401 to `refused`: drop the credentials it carried; True if one retry may succeed.

        Credentials cached since `refused` was sent are newer and kept, so concurrent calls refused with one
        credential renew it once. None drops whatever is cached.
        """
        ...

    async def aclose(self) -> None: ...


def set_header(request: HttpRequest, name: str, value: str) -> None:
    """Set a credential header, replacing any header of that name in any case.

    Header names are case-insensitive, and a header parameter declared in the
    spec (an `X-API-Key` argument, say) must never override the configured credential.
    """
    lowered = name.lower()
    for existing in [key for key in request.headers if key.lower() == lowered]:
        del request.headers[existing]
    request.headers[name] = value


def set_query(request: HttpRequest, name: str, value: str) -> None:
    """Set a credential query parameter, replacing any parameter of that name the arguments produced.

    Names are compared ignoring case: an upstream that reads query names case-insensitively must not
    see a caller's `API_KEY` beside (or instead of) the gateway's `api_key`.
    """
    folded = name.lower()
    request.query[:] = [(key, item) for key, item in request.query if key.lower() != folded]
    request.query.append((name, value))
