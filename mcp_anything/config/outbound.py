"""`upstreams[].outbound_auth`: the credential the gateway sends to an upstream, one strategy per upstream."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from mcp_anything.config.scripts import OutboundJsConfig, OutboundLuaConfig
from mcp_anything.config.strategy import StrategyBlock
from mcp_anything.config.types import (
    Credential,
    Duration,
    HeaderName,
    HttpUrl,
    PositiveDuration,
    SharedStore,
    StrictModel,
)

# Headers the HTTP client writes itself: a credential there would break the request's framing.
_FRAMING_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class BearerConfig(StrictModel):
    token: Credential


class OutboundApiKeyConfig(StrictModel):
    header: HeaderName | None = None
    query: str | None = Field(default=None, min_length=1)
    value: Credential

    @field_validator("header")
    @classmethod
    def _not_framing(cls, header: str | None) -> str | None:
        if header is not None and header.lower() in _FRAMING_HEADERS:
            raise ValueError(f"{header!r} is set by the gateway; name the header the upstream reads the key from")
        return header

    @model_validator(mode="after")
    def _one_place(self) -> OutboundApiKeyConfig:
        if (self.header is None) == (self.query is None):
            raise ValueError("set exactly one of `header` or `query`")
        return self


class ClientCredentialsConfig(StrictModel):
    token_url: HttpUrl
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scopes: list[str] = []
    audience: str | None = None  # sent as both `audience` and `resource` (RFC 8707)
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    refresh_skew: Duration = 30.0  # fetch a new token this long before the current one expires
    timeout: PositiveDuration = 10.0
    # Where the token is kept: `memory` (each replica fetches its own) or redis://... (one token for every
    # replica using the same Redis, fetched by one of them, stored encrypted with a key from client_secret).
    cache: SharedStore = SecretStr("memory")

    @field_validator("scopes")
    @classmethod
    def _scope_tokens(cls, scopes: list[str]) -> list[str]:
        for i, scope in enumerate(scopes):
            if not re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", scope):  # RFC 6749 §3.3 scope-token
                raise ValueError(f"item {i}, {scope!r}, is not one scope; list each scope as its own item")
        return scopes


class OutboundAuthConfig(StrategyBlock):
    strategy: Literal["none", "bearer", "api_key", "oauth2_client_credentials", "lua", "js"] = "none"
    bearer: BearerConfig | None = None
    api_key: OutboundApiKeyConfig | None = None
    oauth2_client_credentials: ClientCredentialsConfig | None = None
    lua: OutboundLuaConfig | None = None
    js: OutboundJsConfig | None = None

    @property
    def header(self) -> str | None:
        """The header this strategy always sets, if it is known from the config alone."""
        if self.strategy in ("bearer", "oauth2_client_credentials"):
            return "Authorization"
        return self.api_key.header if self.api_key is not None else None

    @property
    def query(self) -> str | None:
        """The query parameter this strategy always sets, if it is known from the config alone."""
        return self.api_key.query if self.strategy == "api_key" and self.api_key is not None else None
