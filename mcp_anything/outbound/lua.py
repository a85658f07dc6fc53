"""`strategy: lua`: the outbound script strategy (see `outbound.script`) with a Lua script.

Lua scripts also see `params` (the config's `params:` map, secrets through `${ENV}`),
`fetch` (the same function as `ctx.fetch`, returning `{status=, headers=, body=}` with
`headers` looked up case-insensitively), and `json_decode(string)` / `json_encode(value)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mcp_anything.config import Config, OutboundAuthConfig
from mcp_anything.lua import Sandbox
from mcp_anything.outbound.script import Fetcher, ScriptOutboundAuth
from mcp_anything.scripting import LUA, ScriptError, lua_type


def json_decode(text: Any) -> Any:
    if not isinstance(text, str):
        raise ScriptError("runtime", f"json_decode: expected a string, got a {lua_type(text)}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScriptError(
            "runtime", f"json_decode: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None


def json_encode(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise ScriptError("runtime", "json_encode: NaN and infinity have no JSON form") from None


def create(config: OutboundAuthConfig, root: Config) -> ScriptOutboundAuth:
    lua = config.lua
    assert lua is not None  # guaranteed by OutboundAuthConfig's validation
    fetcher = Fetcher(lua.allowed_hosts, max_body=lua.memory_limit_mb << 20, language=LUA)
    # The server prefixes the location with the upstream: upstreams[0].outbound_auth.lua.source
    path, location = root.resolve_path(lua.source), "lua.source"
    functions: dict[str, Callable[..., Any]] = {
        "fetch": fetcher,
        "json_decode": json_decode,
        "json_encode": json_encode,
    }
    params = {k: v.get_secret_value() for k, v in lua.params.items()}
    options = lua.sandbox_options()
    sandbox = Sandbox(path, location=location, functions=functions, constants={"params": params}, **options)
    return ScriptOutboundAuth(sandbox, fetcher, secrets=[*params.values(), *options["env"].values()])
