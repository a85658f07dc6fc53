"""Signed capability claims, compatible with Kuadrant's MCP Gateway.

An authorization service (Authorino, for example) signs a short-lived JWT, the
"wristband", and passes it in the `x-mcp-authorized` header. Its
`allowed-capabilities` claim is a JSON-encoded string:

    {"tools": {"<server name>": ["<tool name without prefix>", ...]}}

A server name is an upstream's `capability_name`, or its `name` when it has none.
The same claim can instead come from the verified inbound identity
(`source: claim`), where a JSON object is accepted as well as a string.

Anything wrong with the header or the claim is a `CapabilityError`; the caller then
gets no tools.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import JWSRegistry
from starlette.datastructures import Headers

from mcp_anything.identity import Identity
from mcp_anything.tools import Tool

if TYPE_CHECKING:
    from mcp_anything.config import CapabilitiesConfig, Config, UpstreamConfig


class CapabilityError(Exception):
    """The capability header or claim is missing or invalid; the message says why, never what it held."""


@dataclass(frozen=True, slots=True)
class Allowance:
    """The tools a caller may use: upstream name -> tool names without the upstream's prefix."""

    tools: Mapping[str, frozenset[str]]
    unknown_servers: tuple[str, ...] = ()  # server names in the claim that match no upstream

    def granted(self, tools: Iterable[Tool]) -> list[Tool]:
        """The given tools this allowance grants, in order (one dict and one set lookup per tool)."""
        allowed, none = self.tools, frozenset[str]()
        return [tool for tool in tools if tool.base_name in allowed.get(tool.upstream, none)]


NOTHING = Allowance({})


class CapabilitySource(Protocol):
    def allowance(self, identity: Identity, headers: Headers) -> Allowance:
        """The caller's allowance, or raise CapabilityError."""
        ...


def server_names(upstreams: list[UpstreamConfig]) -> dict[str, str]:
    """Server name in capability claims -> upstream name; raises ValueError on a name two upstreams share."""
    names: dict[str, str] = {}
    for upstream in upstreams:
        server = upstream.capability_name or upstream.name
        if server in names:
            raise ValueError(f"upstreams {names[server]!r} and {upstream.name!r} share the server name {server!r}")
        names[server] = upstream.name
    return names


def _parse_allowance(value: Any, servers: Mapping[str, str], claim: str) -> Allowance:
    """Read `{"tools": {"<server>": ["<tool>", ...]}}`, given as JSON text or (from inbound claims) an object."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise CapabilityError(f"claim {claim!r} is not valid JSON") from None
    if not isinstance(value, dict):
        raise CapabilityError(f"claim {claim!r} is not a JSON object")
    by_server = value.get("tools", {})  # other capability types (prompts, resources) are not served here
    if not isinstance(by_server, dict) or not all(
        isinstance(tools, list) and all(isinstance(t, str) for t in tools) for tools in by_server.values()
    ):
        raise CapabilityError(f'claim {claim!r}: expected {{"tools": {{"<server>": ["<tool>", ...]}}}}')
    allowed: dict[str, frozenset[str]] = {}
    unknown: list[str] = []
    for server, tools in by_server.items():
        upstream = servers.get(server)
        if upstream is None:
            unknown.append(server)
        else:
            allowed[upstream] = frozenset(tools)
    return Allowance(allowed, tuple(unknown))


class ClaimCapabilities:
    """`source: claim`: the inbound authentication already verified the claims."""

    def __init__(self, claim: str, servers: Mapping[str, str]) -> None:
        self.claim = claim
        self.servers = servers

    def allowance(self, identity: Identity, headers: Headers) -> Allowance:
        if self.claim not in identity.claims:
            raise CapabilityError(f"the caller's identity has no {self.claim!r} claim")
        return _parse_allowance(identity.claims[self.claim], self.servers, self.claim)


class HeaderCapabilities:
    """`source: header`: verify the signed wristband JWT (RFC 7519) in one request header.

    Beyond signature and expiry, a wristband can be bound: to this group (`audience`), to
    the caller who presents it (`bind_subject`), and to a short life (`max_lifetime`), so
    that one that leaks cannot be replayed at another group, by another caller, for long.
    """

    def __init__(self, config: CapabilitiesConfig, key: Key, servers: Mapping[str, str]) -> None:
        self.header = config.header
        self.claim = config.claim
        self.key = key
        self.algorithms = list(config.algorithms)
        self.servers = servers
        self.bind_subject = config.bind_subject
        self.max_lifetime = config.max_lifetime
        required: dict[str, Any] = {"exp": {"essential": True}}
        if config.issuer is not None:
            required["iss"] = {"essential": True, "value": config.issuer}
        if config.audience is not None:
            audience = [config.audience] if isinstance(config.audience, str) else config.audience
            required["aud"] = {"essential": True, "values": audience}
        if config.max_lifetime is not None:
            required["iat"] = {"essential": True}
        if config.bind_subject:
            required["sub"] = {"essential": True}
        # Checks exp, and nbf / iat when present, against the clock at validation time.
        self.claims_registry = jwt.JWTClaimsRegistry(leeway=int(config.leeway), **required)

    def allowance(self, identity: Identity, headers: Headers) -> Allowance:
        values = headers.getlist(self.header)
        if not values:
            raise CapabilityError(f"no {self.header} header")
        if len(values) > 1:
            raise CapabilityError(f"{len(values)} {self.header} headers; expected exactly one")
        try:
            token = jwt.decode(values[0], self.key, algorithms=self.algorithms)
            self.claims_registry.validate(token.claims)
        except ExpiredTokenError:
            raise CapabilityError(f"{self.header} has expired") from None
        except MissingClaimError as exc:
            raise CapabilityError(f"{self.header} lacks the required claim(s) {exc.claim}") from None
        except InvalidClaimError as exc:
            if exc.claim == "aud":
                raise CapabilityError(f"{self.header} was issued for another audience") from None
            raise CapabilityError(f"{self.header} is invalid: {str(exc).removesuffix(': ')}") from None
        except JoseError as exc:  # bad signature, algorithm not allowed, wrong issuer, nbf / iat in the future
            raise CapabilityError(f"{self.header} is invalid: {str(exc).removesuffix(': ')}") from None
        except Exception:  # malformed base64, JSON or segments: never let a bad header through
            raise CapabilityError(f"{self.header} is not a well-formed JWT") from None
        claims = token.claims
        if self.max_lifetime is not None and claims["exp"] - claims["iat"] > self.max_lifetime:
            raise CapabilityError(f"{self.header} lives longer than max_lifetime ({self.max_lifetime:g}s)")
        if self.bind_subject and (identity.subject is None or claims["sub"] != identity.subject):
            raise CapabilityError(f"{self.header} was issued to another subject than the caller's")
        if self.claim not in claims:
            raise CapabilityError(f"{self.header} has no {self.claim!r} claim")
        return _parse_allowance(claims[self.claim], self.servers, self.claim)


def load_public_key(config: CapabilitiesConfig, root: Config) -> Key:
    """The verification key from `public_key` (PEM text, or a PEM file relative to the config).

    Raises ValueError naming the problem: a missing file, a private key, or a key that
    does not fit `algorithms`.
    """
    assert config.public_key is not None  # the config model requires it with source: header
    value = config.public_key.get_secret_value().strip()
    if value.startswith("-----BEGIN"):
        pem = value
    else:
        path = root.resolve_path(value)
        try:
            pem = path.read_text()
        except OSError as exc:
            raise ValueError(f"cannot read PEM file {value!r} ({path}): {exc.strerror}") from None
    algorithms = [JWSRegistry.algorithms[name] for name in config.algorithms]
    key_types = sorted({alg.key_type for alg in algorithms})
    if len(key_types) > 1:
        raise ValueError(f"algorithms {config.algorithms} need different key types {key_types}; one key cannot")
    try:
        key = JWKRegistry.import_key(pem, key_types[0])
    except Exception:
        raise ValueError(f"not a PEM {key_types[0]} public key") from None
    if key.is_private:
        raise ValueError("expected a public key, got a private key: give the gateway only the public half")
    for alg in algorithms:
        try:
            alg.check_key(key)
        except JoseError as exc:
            raise ValueError(f"the key does not fit {alg.name}: {exc.description}") from None
    return key
