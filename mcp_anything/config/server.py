"""`server`: where the gateway listens and what it serves besides the groups."""

from __future__ import annotations

from typing import Literal

from pydantic import ByteSize, Field, SecretStr, field_validator

from mcp_anything.config.sessions import SessionsConfig
from mcp_anything.config.types import Duration, HttpUrl, Interval, StrictModel

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class TracingConfig(StrictModel):
    enabled: bool = False
    service_name: str = "mcp-anything"
    exporter: Literal["otlp", "console"] = "otlp"
    # OTLP over HTTP; None: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else http://localhost:4318/v1/traces.
    endpoint: HttpUrl | None = None
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)  # of traces the caller did not already sample


class ServerConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: HttpUrl | None = None
    # None: the defaults described in `origins.py`; "*" allows any.
    allowed_origins: list[str] | None = None
    allowed_hosts: list[str] | None = None
    max_body_bytes: ByteSize = ByteSize(4 * 1024 * 1024)
    shutdown_timeout: Duration = 30.0
    metrics: bool = True  # Prometheus metrics at /metrics
    tracing: TracingConfig = TracingConfig()
    audit_log: str = "stderr"  # stderr | stdout | off | a file path (relative to the config file)
    reload_interval: Interval = 2.0
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

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS
