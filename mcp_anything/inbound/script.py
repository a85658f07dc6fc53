"""A sandboxed script decides whether a request is authenticated: `strategy: lua` and `strategy: js`.

The script sees `headers` (case-insensitive: `headers["authorization"]` and
`headers["Authorization"]` are the same), `method`, `path` and `ctx.env` (the
variables listed in `env:`). It returns `true`, optionally with claims (`sub`,
`scope` as a space-separated string or a list, anything else kept as a claim),
or just the claims (denied if they carry a verdict such as `valid` or `allow` that is
not `true`), or `false` to deny. Lua returns claims as a second value
(`return true, {sub = "alice"}`), JavaScript as an object (`return {sub: "alice"}`)
or a pair (`return [true, {sub: "alice"}]`). Anything else, an error, a timeout or
running out of memory denies the request too (fail closed), with a log line
saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from mcp_anything.identity import Identity, fingerprint
from mcp_anything.inbound.base import AuthError, InboundRequest
from mcp_anything.scripting import CaseInsensitive, Sandbox, ScriptError, redact

log = logging.getLogger(__name__)

INPUTS = ("headers", "method", "path", "ctx")  # what the script sees (JavaScript: its parameters)
# A claims object returned alone allows the request, so one that carries a verdict of its own
# (`return {valid: false}`) must not: anything but `true` under these names denies (fail closed).
VERDICT_CLAIMS = frozenset({"valid", "allow", "allowed", "authenticated", "authorized", "ok", "success", "active"})


class ScriptAuthenticator:
    authorization_servers: list[str] = []

    def __init__(self, sandbox: Sandbox, secrets: Iterable[str] = ()) -> None:
        """`secrets`: what the script is given (its env, Lua params), scrubbed from logged errors like headers."""
        self._sandbox = sandbox
        self._secrets = tuple(secrets)
        self._language = sandbox.language

    async def authenticate(self, request: InboundRequest) -> Identity:
        headers = CaseInsensitive()
        for name, value in request.headers.items():  # names arrive lower-cased
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        try:
            result = await self._sandbox.run({"headers": headers, "method": request.method, "path": request.path})
            return self._identity(self._language.values(result), request.headers.get("authorization"))
        except ScriptError as exc:
            log.warning(
                "inbound %s script %s denied the request: %s error: %s",
                self._language.title,
                self._sandbox.name,
                exc.kind,
                redact(exc.message, (*headers.values(), *self._secrets)),
            )
            raise AuthError("the authentication script could not verify the request") from None

    def _identity(self, values: tuple[Any, ...], credential: str | None) -> Identity:
        type_name = self._language.type_name
        allowed = values[0] if values else None
        claims = values[1] if len(values) > 1 else {}
        if isinstance(allowed, dict) and allowed and len(values) == 1:  # the claims alone: allowed
            verdicts = sorted(name for name in VERDICT_CLAIMS & allowed.keys() if allowed[name] is not True)
            if verdicts:
                log.info(
                    "inbound %s script %s returned claims whose %s is not true: request denied",
                    self._language.title,
                    self._sandbox.name,
                    ", ".join(verdicts),
                )
                raise AuthError("the authentication script denied the request")
            allowed, claims = True, allowed
        if allowed is False:
            log.info("inbound %s script %s returned false: request denied", self._language.title, self._sandbox.name)
            raise AuthError("the authentication script denied the request")
        if allowed is not True:
            raise ScriptError("result", f"expected true, false or claims as the result, got a {type_name(allowed)}")
        if not isinstance(claims, dict):
            raise ScriptError("result", f"expected the claims as a table of name to value, got a {type_name(claims)}")
        subject = claims.get("sub")
        if subject is not None and not isinstance(subject, str | int):
            raise ScriptError("result", "claim `sub` must be a string")
        # An empty `sub` names nobody (as in `identity_from_claims`): the caller is then fingerprinted.
        subject = None if subject is None or subject == "" else str(subject)
        return Identity(
            strategy=self._language.strategy,
            subject=subject,
            scopes=_scopes(claims.get("scope")),
            claims=claims,
            # Without `sub`, the script vouched for whoever sent the Authorization header, if it was read at all.
            fingerprint=None if subject is not None else fingerprint(claims, credential),
        )

    async def aclose(self) -> None:
        self._sandbox.close()


def _scopes(scope: Any) -> frozenset[str]:
    if scope is None:
        return frozenset()
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scope, list) and all(isinstance(s, str) for s in scope):
        return frozenset(scope)
    raise ScriptError("result", "claim `scope` must be a space-separated string or a list of strings")
