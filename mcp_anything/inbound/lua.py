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
    # The server prefixes the location with the group: groups[0].inbound_auth.lua.source
    path, location = root.resolve_path(lua.source), "inbound_auth.lua.source"
    params = {k: v.get_secret_value() for k, v in lua.params.items()}
    options = lua.sandbox_options()
    sandbox = Sandbox(path, location=location, constants={"params": params}, **options)
    return ScriptAuthenticator(sandbox, secrets=[*params.values(), *options["env"].values()])
