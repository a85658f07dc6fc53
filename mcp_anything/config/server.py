"""`server`: where the gateway listens and what it serves besides the groups."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, ByteSize, Field, SecretStr, field_validator, model_validator

from mcp_anything.config.limits import LimitsConfig
from mcp_anything.config.sessions import SessionsConfig
from mcp_anything.config.types import Credential, Duration, HttpUrl, Interval, StrictModel

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")  # as they appear in Host and Origin


class TracingConfig(StrictModel):
    enabled: bool = False
    service_name: str = "mcp-anything"
    exporter: Literal["otlp", "console"] = "otlp"
    # OTLP over HTTP; None: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else http://localhost:4318/v1/traces.
    endpoint: HttpUrl | None = None
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)  # of traces the caller did not already sample


def _metrics_switch(value: Any) -> Any:
    """`metrics: true` / `false`, the short form, is `metrics: {enabled: ...}`."""
    return {"enabled": value} if isinstance(value, bool) else value


class MetricsConfig(StrictModel):
    """`/metrics`: Prometheus text. Tool names, upstreams and outcome counts are not for every caller."""

    enabled: bool = True
    # Serve /metrics on this port of `server.host` only (its own listener), not on the MCP port.
    port: int | None = Field(default=None, ge=1, le=65535)
    # Require `Authorization: Bearer <token>` (compared in constant time); from ${ENV}.
    token: Credential | None = None

    @property
    def exposed(self) -> bool:
        """Served on the MCP port to anyone who can reach it."""
        return self.enabled and self.port is None and self.token is None


class ServerConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: HttpUrl | None = None
    # None: the defaults of `origin_allowlist` / `host_allowlist` (see `origins.py`); "*" allows any.
    allowed_origins: list[str] | None = None
    allowed_hosts: list[str] | None = None
    max_body_bytes: ByteSize = ByteSize(4 * 1024 * 1024)
    limits: LimitsConfig = LimitsConfig()
    shutdown_timeout: Duration = 30.0
    metrics: Annotated[MetricsConfig, BeforeValidator(_metrics_switch)] = MetricsConfig()
    tracing: TracingConfig = TracingConfig()
    audit_log: str = "stderr"  # stderr | stdout | off | a file path (relative to the config file)
    reload_interval: Interval = 2.0
    # A reload that loosens a group's security (see config/weakening.py) is refused unless the NEW config
    # says so: a half-written or mistaken file cannot switch protection off by accident.
    allow_weakening_reload: bool = False
    # memory:// (per replica) or redis://[:password@]host:port/db (shared); may hold a password, so a secret.
    rate_limit_storage: SecretStr = SecretStr("memory://")
    sessions: SessionsConfig = SessionsConfig()

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage_scheme(cls, uri: SecretStr) -> SecretStr:
        scheme = uri.get_secret_value().split("://", 1)[0]
        if scheme not in ("memory", "redis", "rediss", "redis+sentinel", "redis+cluster"):
            raise ValueError(f"expected memory:// or a redis:// URL, got a {scheme!r} URL")
        return uri

    @model_validator(mode="after")
    def _metrics_port_is_another(self) -> ServerConfig:
        if self.metrics.port is not None and self.metrics.port == self.port:
            raise ValueError("metrics.port: the MCP port; give /metrics another port, or leave `port` out")
        return self

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    @property
    def origin_allowlist(self) -> list[str]:
        """`allowed_origins`, else the public origin, plus loopback origins on any port when bound to loopback."""
        if self.allowed_origins is not None:
            return self.allowed_origins
        public = urlsplit(self.base_url)
        origins = [f"{public.scheme}://{public.netloc}".lower()]
        if self.loopback:
            origins += [f"{scheme}://{name}:*" for scheme in ("http", "https") for name in _LOOPBACK_NAMES]
        return origins

    @property
    def host_allowlist(self) -> list[str]:
        """`allowed_hosts`, else loopback names and the public host when bound to loopback, else any (`*`)."""
        if self.allowed_hosts is not None:
            return self.allowed_hosts
        return [*_LOOPBACK_NAMES, urlsplit(self.base_url).netloc] if self.loopback else ["*"]
