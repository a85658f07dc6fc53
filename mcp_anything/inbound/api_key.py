"""`strategy: api_key` (formerly `apikey`): a static key in a request header.

The presented key is compared with every configured key, always all of them,
in constant time over SHA-256 digests (equal lengths, so not even a key's
length leaks), so the response time says nothing about which key came close.
Keys are never logged nor echoed.
"""

from __future__ import annotations

import hashlib
import hmac
from types import MappingProxyType

from mcp_anything.config import ApiKeyConfig, Config, InboundAuthConfig
from mcp_anything.identity import Identity
from mcp_anything.inbound.base import AuthError, InboundRequest


class ApiKeyAuthenticator:
    authorization_servers: list[str] = []

    def __init__(self, config: ApiKeyConfig) -> None:
        self._header = config.header
        # One Identity per key, built once.
        self._keys = [
            (
                hashlib.sha256(key.get_secret_value().encode()).digest(),
                # `apikey`, the strategy's first spelling, stays in principals so audit logs and limits carry over.
                Identity(strategy="apikey", subject=name, claims=MappingProxyType({"sub": name})),
            )
            for name, key in config.named_keys().items()
        ]

    async def authenticate(self, request: InboundRequest) -> Identity:
        presented = request.headers.get(self._header)
        if not presented:
            raise AuthError(f"missing API key: send it in the {self._header} header")
        digest = hashlib.sha256(presented.encode()).digest()
        match: Identity | None = None
        for key_digest, identity in self._keys:
            if hmac.compare_digest(digest, key_digest) and match is None:
                match = identity
        if match is None:
            raise AuthError(f"the API key in the {self._header} header is not valid")
        return match

    async def aclose(self) -> None:
        pass


def create(config: InboundAuthConfig, root: Config) -> ApiKeyAuthenticator:
    assert config.api_key is not None
    return ApiKeyAuthenticator(config.api_key)
