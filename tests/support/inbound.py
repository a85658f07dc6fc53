"""Building one group's authenticator from a raw `inbound_auth` block, as the gateway does."""

from __future__ import annotations

from typing import Any

from mcp_anything.config import parse_config
from mcp_anything.inbound import Authenticator, create_authenticator


def raw_config(inbound_auth: dict[str, Any]) -> dict[str, Any]:
    """A minimal config whose one group uses `inbound_auth` (parsing it loads no spec)."""
    return {
        "groups": [{"name": "g", "upstreams": ["u"], "inbound_auth": inbound_auth}],
        "upstreams": [{"name": "u", "openapi": {"source": "spec.yaml"}}],
    }


def authenticator(inbound_auth: dict[str, Any], env: dict[str, str] | None = None) -> Authenticator:
    config = parse_config(raw_config(inbound_auth), env=env or {})
    return create_authenticator(config.groups[0].inbound_auth, config)
