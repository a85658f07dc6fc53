"""`strategy: lua`: a sandboxed Lua script decides whether a request is authenticated.

The script sees `headers` (case-insensitive: `headers["authorization"]` and
`headers["Authorization"]` are the same), `method`, `path` and `params` (the
config's `params:` map). It returns `true`, optionally followed by a claims
table (`sub`, `scope` as a space-separated string or a list, anything else),
or `false` to deny. Anything else, an error, a timeout or running out of
memory denies the request too (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from mcp_anything.config import Config, InboundAuthConfig
from mcp_anything.identity import Identity, fingerprint
from mcp_anything.inbound.base import AuthError, InboundRequest
from mcp_anything.lua import CaseInsensitive, Sandbox, ScriptError, lua_type

log = logging.getLogger(__name__)

MIN_REDACTED_LENGTH = 6  # shorter header values and words are not scrubbed from logged script errors


class LuaAuthenticator:
    authorization_servers: list[str] = []

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    async def authenticate(self, request: InboundRequest) -> Identity:
        headers = CaseInsensitive()
        for name, value in request.headers.items():  # names arrive lower-cased
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        try:
            result = await self._sandbox.run({"headers": headers, "method": request.method, "path": request.path})
            return _identity(result, request.headers.get("authorization"))
        except ScriptError as exc:
            log.warning(
                "inbound Lua script %s denied the request: %s error: %s",
                self._sandbox.name,
                exc.kind,
                _redact(exc.message, headers.values()),
            )
            raise AuthError("the authentication script could not verify the request") from None

    async def aclose(self) -> None:
        pass


def _identity(result: tuple[Any, ...], credential: str | None) -> Identity:
    allowed = result[0] if result else None
    if allowed is False:
        raise AuthError("the authentication script denied the request")
    if allowed is not True:
        raise ScriptError("result", f"expected true or false as the first return value, got a {lua_type(allowed)}")
    claims = result[1] if len(result) > 1 else {}
    if not isinstance(claims, dict):
        raise ScriptError("result", f"expected a claims table as the second return value, got a {lua_type(claims)}")
    subject = claims.get("sub")
    if subject is not None and not isinstance(subject, str | int):
        raise ScriptError("result", "claim `sub` must be a string")
    return Identity(
        strategy="lua",
        subject=None if subject is None else str(subject),
        scopes=_scopes(claims.get("scope")),
        claims=claims,
        # Without `sub`, the script vouched for whoever sent the Authorization header, if it was read at all.
        fingerprint=None if subject is not None else fingerprint(claims, credential),
    )


def _scopes(scope: Any) -> frozenset[str]:
    if scope is None:
        return frozenset()
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scope, list) and all(isinstance(s, str) for s in scope):
        return frozenset(scope)
    raise ScriptError("result", "claim `scope` must be a space-separated string or a list of strings")


def _redact(message: str, header_values: Iterable[str]) -> str:
    # A script may build its error message from a header (error("bad token " .. token)): scrub
    # whole values and their words (the token in "Bearer <token>").
    secrets = {part for value in header_values for part in (value, *value.split())}
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_REDACTED_LENGTH:
            message = message.replace(secret, "[redacted]")
    return message


def create(config: InboundAuthConfig, root: Config) -> LuaAuthenticator:
    assert config.lua is not None  # guaranteed by InboundAuthConfig's validation
    sandbox = Sandbox(
        root.resolve_path(config.lua.source),
        location="inbound_auth.lua.source",  # the server prefixes the group: groups[0].inbound_auth...
        timeout=config.lua.timeout,
        memory_limit_mb=config.lua.memory_limit_mb,
        constants={"params": {k: v.get_secret_value() for k, v in config.lua.params.items()}},
    )
    return LuaAuthenticator(sandbox)
