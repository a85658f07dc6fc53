"""`strategy: api_key`: a static key sent in a header or a query parameter.

A key in the query string shows up in the upstream's access logs; prefer a
header whenever the upstream accepts one.
"""

from __future__ import annotations

from mcp_anything.config import Config, OutboundAuthConfig
from mcp_anything.outbound.base import set_header, set_query
from mcp_anything.tools import HttpRequest


class ApiKeyAuth:
    def __init__(self, *, header: str | None = None, query: str | None = None, value: str) -> None:
        if (header is None) == (query is None):
            raise ValueError("exactly one of header or query")
        self._place = f"header={header!r}" if header is not None else f"query={query!r}"
        self._name = header or query or ""
        self._set = set_header if header is not None else set_query
        self._value = value

    def __repr__(self) -> str:
        return f"ApiKeyAuth({self._place}, value='**********')"

    async def apply(self, request: HttpRequest) -> None:
        self._set(request, self._name, self._value)

    async def refresh(self, refused: HttpRequest | None = None) -> bool:
        return False  # the same static key would be refused again

    async def aclose(self) -> None:
        pass


def create(config: OutboundAuthConfig, root: Config) -> ApiKeyAuth:
    api_key = config.api_key
    assert api_key is not None  # guaranteed by OutboundAuthConfig validation
    return ApiKeyAuth(header=api_key.header, query=api_key.query, value=api_key.value.get_secret_value())
