"""`groups[].inbound_auth`: how a group verifies its callers, one strategy per group."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, model_validator

from mcp_anything.config.scripts import InboundJsConfig, InboundLuaConfig
from mcp_anything.config.strategy import StrategyBlock
from mcp_anything.config.types import (
    AsymmetricAlgorithms,
    Audience,
    Duration,
    HeaderName,
    HttpUrl,
    StrictModel,
    is_http_url,
)


class JwtConfig(StrictModel):
    issuer: str
    jwks_url: HttpUrl | None = None
    audience: Audience | None = None
    algorithms: AsymmetricAlgorithms = ["RS256"]
    leeway: Duration = 30.0
    required_claims: list[str] = ["exp"]
    required_scopes: list[str] = []
    # An unknown `kid` refetches the JWKS at most once per this interval.
    min_refresh_interval: Duration = 30.0
    # Keys are refetched after this long (sooner on a shorter max-age), so withdrawn keys stop working.
    jwks_cache_ttl: Duration = 300.0
    timeout: Duration = 5.0  # for fetching the discovery document and the JWKS

    @model_validator(mode="after")
    def _where_keys_come_from(self) -> JwtConfig:
        if self.jwks_url is None and not is_http_url(self.issuer):
            raise ValueError("issuer: not an http(s) URL, so its keys cannot be discovered; set jwks_url")
        return self


class IntrospectionConfig(StrictModel):
    endpoint: HttpUrl
    client_id: str
    client_secret: SecretStr
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    cache_ttl: Duration = 60.0
    timeout: Duration = 5.0
    required_scopes: list[str] = []
    issuer: str | None = None  # advertised in protected resource metadata


class ApiKeyConfig(StrictModel):
    header: HeaderName = "X-API-Key"
    value: SecretStr | None = None
    values: list[SecretStr] | dict[str, SecretStr] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ApiKeyConfig:
        if (self.value is None) == (self.values is None):
            raise ValueError("set exactly one of `value` or `values`")
        secrets = [key.get_secret_value() for key in self.named_keys().values()]
        if not secrets:
            raise ValueError("`values` needs at least one key")
        if "" in secrets:
            raise ValueError("an API key cannot be empty (is its environment variable set?)")
        if len(set(secrets)) != len(secrets):
            raise ValueError("two API keys are the same; give each caller its own key")
        return self

    def named_keys(self) -> dict[str, SecretStr]:
        """Caller name -> key: the map's names, else `apikey-1`, `apikey-2`, ... in order."""
        if isinstance(self.values, dict):
            return dict(self.values)
        keys = [self.value] if self.value is not None else list(self.values or [])
        return {f"apikey-{i}": key for i, key in enumerate(keys, start=1)}


def _api_key_spelling(strategy: Any) -> Any:
    # `apikey` was the inbound spelling before both directions settled on `api_key`; old configs keep working.
    return "api_key" if strategy == "apikey" else strategy


class InboundAuthConfig(StrategyBlock):
    # No default: `none` is written out, never what a missing key means.
    strategy: Annotated[
        Literal["none", "jwt", "introspection", "api_key", "lua", "js"], BeforeValidator(_api_key_spelling)
    ]
    jwt: JwtConfig | None = None
    introspection: IntrospectionConfig | None = None
    api_key: ApiKeyConfig | None = Field(default=None, validation_alias=AliasChoices("api_key", "apikey"))
    lua: InboundLuaConfig | None = None
    js: InboundJsConfig | None = None
