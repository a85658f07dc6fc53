"""The Redis client for state shared by replicas (session revocations, OAuth2 tokens)."""

from __future__ import annotations

from typing import Any

from mcp_anything.config import ConfigError


def redis_client(uri: str, key: str) -> Any:
    """A coredis client for `uri`, the value of config key `key` (named when the redis extra is missing)."""
    try:
        import coredis  # the redis extra (the client `limits[async-redis]` brings)
    except ImportError:
        raise ConfigError([f"{key}: Redis needs the redis extra: pip install 'mcp-anything[redis]'"]) from None
    return coredis.Redis.from_url(uri)
