"""`strategy: lua`: the inbound script strategy (see `inbound.script`) with a Lua script.

Lua scripts also see `params`, the config's `params:` map.
"""

from __future__ import annotations

from mcp_anything.config import Config, InboundAuthConfig
from mcp_anything.inbound.script import ScriptAuthenticator
from mcp_anything.lua import Sandbox


def create(config: InboundAuthConfig, root: Config) -> ScriptAuthenticator:
    lua = config.lua
    assert lua is not None  # guaranteed by InboundAuthConfig's validation
    sandbox = Sandbox(
        root.resolve_path(lua.source),
        location="inbound_auth.lua.source",  # the server prefixes the group: groups[0].inbound_auth...
        timeout=lua.timeout,
        memory_limit_mb=lua.memory_limit_mb,
        constants={"params": {k: v.get_secret_value() for k, v in lua.params.items()}},
        env=lua.env_values(),
    )
    return ScriptAuthenticator(sandbox)
