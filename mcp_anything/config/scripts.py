"""The `lua:` and `js:` blocks of the script strategies, in both directions.

One base model per direction holds what both runtimes share (source, limits, the
`ctx.env` allowlist, and outbound the hosts `fetch` may call); the runtime's own
models only add what differs (Lua's `params`, JavaScript's longer outbound timeout).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, TypedDict

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, field_validator

from mcp_anything.config.types import Duration, StrictModel

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _read_env(names: Any, info: ValidationInfo) -> Any:
    """The listed variables' values, from the environment the config was expanded with."""
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError("expected a list of environment variable names, such as [CLIENT_ID, CLIENT_SECRET]")
    context = info.context if isinstance(info.context, dict) else {}
    environment = context.get("env", os.environ)
    values: dict[str, SecretStr] = {}
    for name in names:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        if name not in environment:
            raise ValueError(f"environment variable {name} is listed but not set")
        values[name] = SecretStr(environment[name])
    return values


# Listed as names; held as name -> value, read once at load (and again on reload).
EnvAllowlist = Annotated[dict[str, SecretStr], BeforeValidator(_read_env)]


class SandboxOptions(TypedDict):
    """The keyword arguments `lua.Sandbox` and `js.Sandbox` take from any script block."""

    timeout: float
    memory_limit_mb: int
    env: dict[str, str]


class ScriptConfig(StrictModel):
    """What every script strategy block has."""

    source: Path
    timeout: Duration = 0.1
    memory_limit_mb: int = Field(default=16, ge=1, le=1024)
    # The only variables the script's `ctx.env` shows; any other name reads as nil / undefined.
    env: EnvAllowlist = {}

    def sandbox_options(self) -> SandboxOptions:
        env = {name: value.get_secret_value() for name, value in self.env.items()}
        return SandboxOptions(timeout=self.timeout, memory_limit_mb=self.memory_limit_mb, env=env)


class OutboundScriptConfig(ScriptConfig):
    """An outbound script: it may `fetch` from the hosts listed."""

    # Exact host names (or host:port) the script's fetch may call; empty: fetch refuses every URL.
    allowed_hosts: list[str] = []
    timeout: Duration = 2.0  # bounds the whole script run, fetch calls included

    @field_validator("allowed_hosts")
    @classmethod
    def _bare_hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            name, colon, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
            if not name or any(c in name for c in "/@ \t[]") or (colon and not port.isdigit()):
                raise ValueError(
                    f"expected a host name such as auth.example.com, or host:port (no scheme or path), got {host!r}"
                )
        return [host.lower() for host in hosts]


class LuaParams(StrictModel):
    # The script's `params` table: values for the script, secrets through ${ENV} (never os.getenv in Lua).
    params: dict[str, SecretStr] = {}


class InboundLuaConfig(ScriptConfig, LuaParams):
    pass


class InboundJsConfig(ScriptConfig):
    pass


class OutboundLuaConfig(OutboundScriptConfig, LuaParams):
    pass


class OutboundJsConfig(OutboundScriptConfig):
    timeout: Duration = 5.0
