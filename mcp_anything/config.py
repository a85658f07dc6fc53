"""The configuration contract: typed models, `${ENV}` expansion and validation.

Every model forbids unknown keys: a typo in a security setting must stop the
gateway, not silently switch the setting off. Problems are collected and
reported together, each with the location of the key that caused it
(`upstreams[0].openapi.source: file not found: specs/x.yaml`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from limits import parse as parse_rate
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)


class ConfigError(Exception):
    """One or more problems in a config file, each prefixed with its location."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# --- scalar types -----------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """`30s`, `100ms`, `2m`, `1h` or a bare number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 100ms or 2m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration such as 30s, 100ms or 2m, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in the config as `30s`, `100ms`, `2m` or a number."""

_NAME = r"^[a-zA-Z0-9_-]+$"


def _require_http_url(url: str) -> str:
    if not re.match(r"^https?://[^/?#]+", url):
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    return url


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- inbound auth (per group) -------------------------------------------------


def _asymmetric_algorithms(cls: type, algorithms: list[str]) -> list[str]:
    """Signature algorithms for tokens the gateway verifies: never `none`, never a shared secret (HMAC)."""
    allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
    bad = [a for a in algorithms if a not in allowed]
    if bad:
        raise ValueError(f"unsupported algorithm(s) {bad}; expected some of {sorted(allowed)}")
    if not algorithms:
        raise ValueError("at least one algorithm is required")
    return algorithms


class JwtConfig(StrictModel):
    issuer: str
    jwks_url: str | None = None
    audience: str | list[str] | None = None
    algorithms: list[str] = ["RS256"]
    leeway: Duration = 30.0
    required_claims: list[str] = ["exp"]
    required_scopes: list[str] = []
    # An unknown `kid` refetches the JWKS at most once per this interval.
    min_refresh_interval: Duration = 30.0
    timeout: Duration = 5.0  # for fetching the discovery document and the JWKS

    _asymmetric_only = field_validator("algorithms")(_asymmetric_algorithms)

    @field_validator("audience")
    @classmethod
    def _some_audience(cls, audience: str | list[str] | None) -> str | list[str] | None:
        # An empty audience would silently turn the audience check off.
        values = [audience] if isinstance(audience, str) else audience or []
        if audience is not None and (not values or "" in values):
            raise ValueError("audience cannot be empty; leave it out to accept any audience (not recommended)")
        return audience

    @model_validator(mode="after")
    def _where_keys_come_from(self) -> JwtConfig:
        if self.jwks_url is not None and not self.jwks_url.startswith(("https://", "http://")):
            raise ValueError(f"jwks_url: expected an http(s) URL, got {self.jwks_url!r}")
        if self.jwks_url is None and not self.issuer.startswith(("https://", "http://")):
            raise ValueError("issuer: not an http(s) URL, so its keys cannot be discovered; set jwks_url")
        return self


class IntrospectionConfig(StrictModel):
    endpoint: str
    client_id: str
    client_secret: SecretStr
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    cache_ttl: Duration = 60.0
    timeout: Duration = 5.0
    required_scopes: list[str] = []
    issuer: str | None = None  # advertised in protected resource metadata

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, endpoint: str) -> str:
        if not endpoint.startswith(("https://", "http://")):
            raise ValueError(f"expected an http(s) URL, got {endpoint!r}")
        return endpoint


class ApiKeyConfig(StrictModel):
    header: str = "X-API-Key"
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


class InboundLuaConfig(StrictModel):
    source: Path
    timeout: Duration = 0.1
    memory_limit_mb: int = Field(default=16, ge=1, le=1024)
    # The script's `params` table: values for the script, secrets through ${ENV} (never os.getenv in Lua).
    params: dict[str, SecretStr] = {}


class _StrategyBlock(StrictModel):
    """`{strategy: X, X: {...}}`: the block named by `strategy` must be present, no other."""

    strategy: str

    @model_validator(mode="after")
    def _block_matches_strategy(self) -> _StrategyBlock:
        blocks = [name for name in type(self).model_fields if name != "strategy"]
        if self.strategy != "none" and getattr(self, self.strategy) is None:
            raise ValueError(f"strategy {self.strategy!r} needs a `{self.strategy}:` block")
        extra = [b for b in blocks if b != self.strategy and getattr(self, b) is not None]
        if extra:
            raise ValueError(f"`{extra[0]}:` block given but strategy is {self.strategy!r}")
        return self


class InboundAuthConfig(_StrategyBlock):
    strategy: Literal["none", "jwt", "introspection", "apikey", "lua"] = "none"
    jwt: JwtConfig | None = None
    introspection: IntrospectionConfig | None = None
    apikey: ApiKeyConfig | None = None
    lua: InboundLuaConfig | None = None


# --- authorization (per group) --------------------------------------------------


class CapabilitiesConfig(StrictModel):
    """Which tools each caller may use, from a signed capability claim (Kuadrant MCP Gateway's wristband)."""

    # header: verify the signed JWT in `header`; claim: read `claim` from the verified inbound identity.
    source: Literal["header", "claim"] = "header"
    header: str = "x-mcp-authorized"
    public_key: SecretStr | None = None  # a PEM file path (relative to the config), or the PEM itself (from ${ENV})
    algorithms: list[str] = ["ES256"]
    issuer: str | None = None  # checked against `iss` when set
    leeway: Duration = 30.0  # clock skew allowed on exp, nbf and iat
    claim: str = "allowed-capabilities"

    _asymmetric_only = field_validator("algorithms")(_asymmetric_algorithms)

    @model_validator(mode="after")
    def _keys_fit_source(self) -> CapabilitiesConfig:
        if self.source == "header" and self.public_key is None:
            raise ValueError("`public_key` is required with source: header (an unverified header is never trusted)")
        header_only = sorted({"header", "public_key", "algorithms", "issuer", "leeway"} & self.model_fields_set)
        if self.source == "claim" and header_only:
            raise ValueError(f"{header_only} only apply to source: header (with source: claim, inbound auth verifies)")
        return self


class RuleConfig(StrictModel):
    effect: Literal["allow", "deny"]
    when: str = "true"  # a CEL expression over `jwt` and, for calls, `mcp.tool.name` / `mcp.tool.arguments`
    tools: list[str] | None = None  # glob patterns on tool names; None: the rule gates the whole endpoint

    @field_validator("when")
    @classmethod
    def _compiles(cls, when: str) -> str:
        from mcp_anything.authz.rules import check_expression

        check_expression(when)
        return when

    @field_validator("tools")
    @classmethod
    def _not_empty(cls, tools: list[str] | None) -> list[str] | None:
        if tools == []:
            raise ValueError("an empty list matches no tool; omit `tools` to gate the whole endpoint")
        return tools

    @model_validator(mode="after")
    def _endpoint_rules_see_only_jwt(self) -> RuleConfig:
        from mcp_anything.authz.rules import uses_tool

        if self.tools is None and uses_tool(self.when):
            raise ValueError(
                "a rule without `tools` decides who may connect, before any tool is known, so its `when` "
                "cannot use mcp.tool; add `tools: ['*']` to check every call instead"
            )
        return self


class AuthorizationConfig(StrictModel):
    default: Literal["allow", "deny"] = "allow"  # when no rule matches a tool
    capabilities: CapabilitiesConfig | None = None
    rules: list[RuleConfig] = []

    @model_validator(mode="after")
    def _deny_needs_rules(self) -> AuthorizationConfig:
        if self.default == "deny" and not self.rules:
            raise ValueError("default: deny without rules refuses every tool to everyone; add allow `rules`")
        return self


class RateLimitConfig(StrictModel):
    """One limit on a group's tool calls, counted per caller, per tool, or per caller and tool."""

    per: Literal["subject", "tool", "subject_tool"]
    limit: str  # `limits` notation: 100/minute, 10/second, 1000 per hour
    tools: list[str] | None = None  # glob patterns on tool names; None: every tool of the group

    @field_validator("limit")
    @classmethod
    def _parses(cls, limit: str) -> str:
        try:
            parse_rate(limit)
        except ValueError:
            raise ValueError(f"expected a rate such as 100/minute, 10/second or 1000 per hour, got {limit!r}") from None
        return limit


class GroupConfig(StrictModel):
    name: str = Field(pattern=_NAME)
    endpoint: str = "/mcp"
    upstreams: list[str]
    inbound_auth: InboundAuthConfig = InboundAuthConfig()
    authorization: AuthorizationConfig = AuthorizationConfig()
    rate_limits: list[RateLimitConfig] = []

    @field_validator("endpoint")
    @classmethod
    def _endpoint_path(cls, endpoint: str) -> str:
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", endpoint):
            raise ValueError(f"expected a path such as /mcp or /team/mcp, got {endpoint!r}")
        return endpoint


# --- outbound auth (per upstream) ----------------------------------------------


_PRINTABLE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 field name
_FRAMING_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


def _header_value_secret(secret: SecretStr) -> SecretStr:
    """A credential sent as (part of) a header value: a stray newline from a secret file fails here, not per call."""
    if not _PRINTABLE.fullmatch(secret.get_secret_value()):
        raise ValueError("must be printable ASCII, no line breaks or surrounding spaces (check its ${ENV} variable)")
    return secret


class BearerConfig(StrictModel):
    token: Annotated[SecretStr, AfterValidator(_header_value_secret)]


class OutboundApiKeyConfig(StrictModel):
    header: str | None = None
    query: str | None = Field(default=None, min_length=1)
    value: Annotated[SecretStr, AfterValidator(_header_value_secret)]

    @field_validator("header")
    @classmethod
    def _header_name(cls, header: str | None) -> str | None:
        if header is not None and not _HEADER_NAME.fullmatch(header):
            raise ValueError(f"not a valid HTTP header name: {header!r}")
        if header is not None and header.lower() in _FRAMING_HEADERS:
            raise ValueError(f"{header!r} is set by the gateway; name the header the upstream reads the key from")
        return header

    @model_validator(mode="after")
    def _one_place(self) -> OutboundApiKeyConfig:
        if (self.header is None) == (self.query is None):
            raise ValueError("set exactly one of `header` or `query`")
        return self


class ClientCredentialsConfig(StrictModel):
    token_url: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scopes: list[str] = []
    audience: str | None = None  # sent as both `audience` and `resource` (RFC 8707)
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    refresh_skew: Duration = 30.0  # fetch a new token this long before the current one expires
    timeout: Duration = 10.0

    @field_validator("token_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return _require_http_url(url)

    @field_validator("scopes")
    @classmethod
    def _scope_tokens(cls, scopes: list[str]) -> list[str]:
        for i, scope in enumerate(scopes):
            if not re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", scope):  # RFC 6749 §3.3 scope-token
                raise ValueError(f"item {i}, {scope!r}, is not one scope; list each scope as its own item")
        return scopes

    @field_validator("timeout")
    @classmethod
    def _positive(cls, timeout: float) -> float:
        if timeout <= 0:
            raise ValueError("must be more than 0")
        return timeout


class OutboundLuaConfig(StrictModel):
    source: Path
    allowed_hosts: list[str] = []  # exact host names the script's fetch() may call
    timeout: Duration = 2.0  # bounds the whole script run, fetch() calls included
    memory_limit_mb: int = Field(default=16, ge=1, le=1024)
    # The script's `params` table: values for the script, secrets through ${ENV} (never os.getenv in Lua).
    params: dict[str, SecretStr] = {}

    @field_validator("allowed_hosts")
    @classmethod
    def _bare_hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not host or any(c in host for c in "/@ \t") or host.count(":") == 1:
                raise ValueError(
                    f"expected a bare host name such as auth.example.com (no scheme, port or path), got {host!r}"
                )
        return [host.lower() for host in hosts]


class OutboundAuthConfig(_StrategyBlock):
    strategy: Literal["none", "bearer", "api_key", "oauth2_client_credentials", "lua"] = "none"
    bearer: BearerConfig | None = None
    api_key: OutboundApiKeyConfig | None = None
    oauth2_client_credentials: ClientCredentialsConfig | None = None
    lua: OutboundLuaConfig | None = None

    @property
    def header(self) -> str | None:
        """The header this strategy always sets, if it is known from the config alone."""
        if self.strategy in ("bearer", "oauth2_client_credentials"):
            return "Authorization"
        return self.api_key.header if self.api_key is not None else None


# --- upstreams -------------------------------------------------------------------


class OpenApiConfig(StrictModel):
    source: str  # file path relative to the config file, or an http(s) URL
    headers: dict[str, SecretStr] = {}  # sent when fetching the spec by URL


IDEMPOTENT_METHODS = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
HttpMethod = Literal["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "POST", "PATCH", "TRACE"]


class RetryConfig(StrictModel):
    """Retries of one upstream request: only when the upstream cannot have acted on it, or said so."""

    attempts: int = Field(default=2, ge=0, le=10)  # retries after the first try; 0 turns retries off
    backoff: Duration = 0.1  # the first retry waits up to this long (full jitter), doubling for each later one
    statuses: list[int] = [502, 503, 504]
    methods: list[HttpMethod] = list(IDEMPOTENT_METHODS)

    @field_validator("statuses")
    @classmethod
    def _http_statuses(cls, statuses: list[int]) -> list[int]:
        bad = [s for s in statuses if not 400 <= s <= 599]
        if bad:
            raise ValueError(f"only 4xx and 5xx statuses can be retried, got {bad}")
        return statuses


class CircuitBreakerConfig(StrictModel):
    failures: int = Field(default=5, ge=0)  # consecutive failed calls that open the circuit; 0 turns it off
    reset_after: Duration = 30.0  # how long it stays open before one probe call is let through


class UpstreamConfig(StrictModel):
    name: str = Field(pattern=_NAME)
    type: Literal["http"] = "http"
    tool_prefix: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9_-]*$")
    capability_name: str | None = None
    base_url: str | None = None  # default: the spec's first server URL
    timeout: Duration = 30.0  # the whole call, retries included
    connect_timeout: Duration = 5.0  # establishing one TCP (and TLS) connection
    read_timeout: Duration | None = None  # the longest silence while waiting for response bytes; None: only `timeout`
    max_connections: int = Field(default=100, ge=1)
    max_response_bytes: ByteSize = ByteSize(10 * 1024 * 1024)
    retries: RetryConfig = RetryConfig()
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    headers: dict[str, str] = {}
    openapi: OpenApiConfig
    overlays: list[str] = []
    include: list[str] = []
    exclude: list[str] = []
    server_variables: dict[str, str] = {}
    outbound_auth: OutboundAuthConfig = OutboundAuthConfig()
    # false: tools declare no outputSchema (for upstreams whose responses drift from their spec)
    output_schemas: bool = True

    @property
    def prefix(self) -> str:
        return self.name if self.tool_prefix is None else self.tool_prefix

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        return None if url is None else _require_http_url(url)

    @model_validator(mode="after")
    def _one_source_per_credential_header(self) -> UpstreamConfig:
        credential = self.outbound_auth.header
        if credential is not None and any(name.lower() == credential.lower() for name in self.headers):
            raise ValueError(
                f"`headers` sets {credential!r}, which outbound_auth ({self.outbound_auth.strategy}) also sets;"
                " keep the credential in outbound_auth only"
            )
        return self


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _reload_interval(value: Any) -> float:
    """`off` (YAML reads it as false) or 0 turn polling off; otherwise a duration."""
    if value is False or value == "off":
        return 0.0
    return parse_duration(value)


class TracingConfig(StrictModel):
    enabled: bool = False
    service_name: str = "mcp-anything"
    exporter: Literal["otlp", "console"] = "otlp"
    # OTLP over HTTP; None: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else http://localhost:4318/v1/traces.
    endpoint: str | None = None
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)  # of traces the caller did not already sample


class ServerConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    # None: the defaults described in `origins.py`; "*" allows any.
    allowed_origins: list[str] | None = None
    allowed_hosts: list[str] | None = None
    max_body_bytes: ByteSize = ByteSize(4 * 1024 * 1024)
    shutdown_timeout: Duration = 30.0
    metrics: bool = True  # Prometheus metrics at /metrics
    tracing: TracingConfig = TracingConfig()
    audit_log: str = "stderr"  # stderr | stdout | off | a file path (relative to the config file)
    reload_interval: Annotated[float, BeforeValidator(_reload_interval)] = 2.0
    # memory:// (per replica) or redis://[:password@]host:port/db (shared); may hold a password, so a secret.
    rate_limit_storage: SecretStr = SecretStr("memory://")

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage_scheme(cls, uri: SecretStr) -> SecretStr:
        scheme = uri.get_secret_value().split("://", 1)[0]
        if scheme not in ("memory", "redis", "rediss", "redis+sentinel", "redis+cluster"):
            raise ValueError(f"expected memory:// or a redis:// URL, got a {scheme!r} URL")
        return uri

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS


class Config(StrictModel):
    server: ServerConfig = ServerConfig()
    groups: list[GroupConfig]
    upstreams: list[UpstreamConfig]
    # Where relative paths (specs, overlays, scripts, keys) are resolved from.
    base_dir: Path = Path(".")

    def cross_reference_problems(self) -> list[str]:
        """Problems no single section can see: duplicate names, groups naming unknown upstreams."""
        problems: list[str] = []
        problems += _duplicates("upstreams", [u.name for u in self.upstreams], "name")
        problems += _duplicates("groups", [g.name for g in self.groups], "name")
        problems += _duplicates("groups", [g.endpoint for g in self.groups], "endpoint")
        reserved = {"/healthz", "/readyz"} | ({"/metrics"} if self.server.metrics else set())
        for i, group in enumerate(self.groups):
            if group.endpoint in reserved:
                problems.append(f"groups[{i}].endpoint: {group.endpoint} is served by the gateway itself")
        known = {u.name for u in self.upstreams}
        for i, group in enumerate(self.groups):
            for j, name in enumerate(group.upstreams):
                if name not in known:
                    problems.append(f"groups[{i}].upstreams[{j}]: unknown upstream {name!r}; known: {sorted(known)}")
        return problems

    def upstream(self, name: str) -> UpstreamConfig:
        return next(u for u in self.upstreams if u.name == name)

    def resolve_path(self, path: str | Path) -> Path:
        return (self.base_dir / path).resolve()

    @property
    def audit_destination(self) -> str | Path:
        """`server.audit_log` with a file path resolved against the config file."""
        audit = self.server.audit_log
        return audit if audit in ("stderr", "stdout", "off") else self.resolve_path(audit)


def _duplicates(section: str, values: list[str], key: str) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for i, value in enumerate(values):
        if value in seen:
            problems.append(f"{section}[{i}].{key}: {value!r} is already used by {section}[{seen[value]}]")
        seen.setdefault(value, i)
    return problems


# --- loading ---------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(node: Any, env: dict[str, str], location: str = "", problems: list[str] | None = None) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string; `$$` is a literal `$`.

    An unset variable without a default is a problem naming the key; the
    variable's value never appears in a message.
    """
    if problems is None:
        problems = []
    if isinstance(node, dict):
        return {k: expand_env(v, env, _join(location, str(k)), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [expand_env(v, env, f"{location}[{i}]", problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "$" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{location or '<root>'}: environment variable {name} is not set and has no default")
        return ""

    return _ENV_REF.sub(substitute, node)


def _join(location: str, key: str) -> str:
    return f"{location}.{key}" if location else key


def format_validation_error(error: ValidationError) -> list[str]:
    """One line per problem, `location: message`, never echoing the offending value (it may be a secret)."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        location = ""
        for part in item["loc"]:
            if isinstance(part, int):
                location += f"[{part}]"
            elif part not in ("function-after", "function-before") and not str(part).startswith(
                ("literal[", "str", "list[", "dict[")
            ):
                location = _join(location, str(part))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see config.example.yaml)"
        problems.append(f"{location or '<root>'}: {message}")
    return list(dict.fromkeys(problems))


@dataclass(frozen=True)
class ConfigSource:
    """Where the serving config comes from, so that it can be read again on reload."""

    path: Path
    overrides: Mapping[str, Any] = field(default_factory=dict)  # `server` values given on the command line

    def load(self) -> Config:
        config = load_config(self.path)
        if self.overrides:
            config = config.model_copy(update={"server": config.server.model_copy(update=dict(self.overrides))})
        return config

    def watched(self, config: Config) -> list[Path]:
        """The local files `config` is built from: itself, specs, overlays and Lua scripts."""
        paths = [self.path.resolve()]
        for upstream in config.upstreams:
            if not upstream.openapi.source.startswith(("http://", "https://")):
                paths.append(config.resolve_path(upstream.openapi.source))
            paths += [config.resolve_path(overlay) for overlay in upstream.overlays]
            if upstream.outbound_auth.lua is not None:
                paths.append(config.resolve_path(upstream.outbound_auth.lua.source))
        paths += [config.resolve_path(g.inbound_auth.lua.source) for g in config.groups if g.inbound_auth.lua]
        return list(dict.fromkeys(paths))


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read, expand and validate a config file; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    return parse_config(raw, base_dir=path.parent, env=env)


def parse_config(raw: Any, base_dir: Path = Path("."), env: dict[str, str] | None = None) -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(["<root>: expected a mapping with `groups` and `upstreams`"])
    problems: list[str] = []
    expanded = expand_env(raw, dict(os.environ) if env is None else env, problems=problems)
    if problems:
        raise ConfigError(problems)
    try:
        config = Config.model_validate({**expanded, "base_dir": base_dir.resolve()})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    problems = config.cross_reference_problems()
    if problems:
        raise ConfigError(problems)
    return config
