"""The configuration contract: one typed model per section, `${ENV}` expansion and validation.

Every model forbids unknown keys: a typo in a security setting must stop the
gateway, not silently switch the setting off. This package imports nothing from
the project, so any module may import it (`config.headers`, the RFC 9110 syntax
checks, serves request building and the scripts too).
"""

from mcp_anything.config.authz import AuthorizationConfig, CapabilitiesConfig, RuleConfig
from mcp_anything.config.discovery import CALL_TOOL, GATEWAY_TOOLS, SEARCH_TOOLS, DiscoveryConfig
from mcp_anything.config.expressions import compile_expression, uses_tool
from mcp_anything.config.filters import ClaimVariable, FilterOperation, ResponseFilter
from mcp_anything.config.groups import GroupConfig, RateLimitConfig
from mcp_anything.config.inbound import (
    ApiKeyConfig,
    InboundAuthConfig,
    IntrospectionConfig,
    JwtConfig,
)
from mcp_anything.config.limits import LimitsConfig
from mcp_anything.config.loading import (
    ConfigError,
    ConfigSource,
    expand_env,
    format_validation_error,
    load_config,
    parse_config,
)
from mcp_anything.config.outbound import (
    BearerConfig,
    ClientCredentialsConfig,
    OutboundApiKeyConfig,
    OutboundAuthConfig,
)
from mcp_anything.config.root import Config
from mcp_anything.config.scripts import (
    InboundJsConfig,
    InboundLuaConfig,
    OutboundJsConfig,
    OutboundLuaConfig,
    OutboundScriptConfig,
    ScriptConfig,
)
from mcp_anything.config.server import LOOPBACK_HOSTS, MetricsConfig, ServerConfig, TracingConfig
from mcp_anything.config.sessions import MIN_SESSION_KEY_BYTES, SessionsConfig
from mcp_anything.config.types import Duration, StrictModel, parse_duration
from mcp_anything.config.upstreams import (
    IDEMPOTENT_METHODS,
    CircuitBreakerConfig,
    HttpMethod,
    OpenApiConfig,
    RetryConfig,
    UpstreamConfig,
)
from mcp_anything.config.weakening import Weakening, weakenings

__all__ = [
    "CALL_TOOL",
    "GATEWAY_TOOLS",
    "IDEMPOTENT_METHODS",
    "LOOPBACK_HOSTS",
    "MIN_SESSION_KEY_BYTES",
    "SEARCH_TOOLS",
    "ApiKeyConfig",
    "AuthorizationConfig",
    "BearerConfig",
    "CapabilitiesConfig",
    "CircuitBreakerConfig",
    "ClaimVariable",
    "ClientCredentialsConfig",
    "Config",
    "ConfigError",
    "ConfigSource",
    "DiscoveryConfig",
    "Duration",
    "FilterOperation",
    "GroupConfig",
    "HttpMethod",
    "InboundAuthConfig",
    "InboundJsConfig",
    "InboundLuaConfig",
    "IntrospectionConfig",
    "JwtConfig",
    "LimitsConfig",
    "MetricsConfig",
    "OpenApiConfig",
    "OutboundApiKeyConfig",
    "OutboundAuthConfig",
    "OutboundJsConfig",
    "OutboundLuaConfig",
    "OutboundScriptConfig",
    "RateLimitConfig",
    "ResponseFilter",
    "RetryConfig",
    "RuleConfig",
    "ScriptConfig",
    "ServerConfig",
    "SessionsConfig",
    "StrictModel",
    "TracingConfig",
    "UpstreamConfig",
    "Weakening",
    "compile_expression",
    "expand_env",
    "format_validation_error",
    "load_config",
    "parse_config",
    "parse_duration",
    "uses_tool",
    "weakenings",
]
