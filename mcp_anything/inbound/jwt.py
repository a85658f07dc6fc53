"""`strategy: jwt`: a bearer JWT (RFC 7519) signed by the issuer's keys (RFC 7515, RFC 7517).

A token that verified is remembered (by its SHA-256) until it expires, at most
five minutes, so a client repeating its token pays for one signature check.

The JWKS is fetched on first use (from `jwks_url`, or the issuer's OpenID
discovery document) and kept for `jwks_cache_ttl`, or for the response's
`Cache-Control: max-age` when that is shorter (but never less than
`min_refresh_interval`). Once that has passed, the next request refetches it
first, so a key the issuer withdrew stops being accepted, and so do the tokens
verified with it and remembered. A token whose `kid` is not held causes one
refetch too, at most one per `min_refresh_interval`: rotation works without a
restart, and made-up kids cannot hammer the identity provider. Every refetch
is shared by the requests waiting on it. When a refetch fails, the keys
already held keep working, and the next attempt is `min_refresh_interval`
later.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import JWSRegistry, extract_compact, validate_compact
from joserfc.jwt import JWTClaimsRegistry

from mcp_anything.config import Config, InboundAuthConfig, JwtConfig
from mcp_anything.http_client import AsyncHttpClient, BodyTooLarge, HttpPolicy
from mcp_anything.identity import Identity
from mcp_anything.inbound.base import AuthError, InboundRequest
from mcp_anything.inbound.bearer import IdentityCache, bearer_token, check_scopes, identity_from_claims
from mcp_anything.inbound.provider import json_object, max_age
from mcp_anything.metrics import token_metrics

log = logging.getLogger(__name__)

# Without any key every request fails, so retry sooner than the refetch interval.
_RETRY_WITHOUT_KEYS = 2.0
_MAX_DOCUMENT_BYTES = 1024 * 1024
_MAX_REDIRECTS = 5  # public documents, fetched without credentials
_REMEMBER_MAX = 300.0

_CLAIM_PROBLEMS = {
    "iss": "token issuer is not the configured issuer",
    "aud": "token audience does not include this server",
    "nbf": "token is not valid yet (nbf)",
    "iat": "token is issued in the future (iat)",
}


class _FetchError(Exception):
    """The discovery document or JWKS could not be fetched or understood (logged, never shown to callers)."""


class JwtAuthenticator:
    def __init__(
        self,
        config: JwtConfig,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`wall_clock` judges `exp`, `nbf` and `iat`; `clock` times the cache and the JWKS refetches."""
        self._config = config
        self._clock = clock
        self._wall_clock = wall_clock
        self.authorization_servers = [config.issuer]
        self.scopes_supported = list(config.required_scopes)  # advertised in protected resource metadata
        # JWSRegistry checks `crit` and the algorithm allow-list; other header
        # parameters are left alone, as identity providers add their own.
        self._registry = JWSRegistry(algorithms=config.algorithms, strict_check_header=False)
        options: dict[str, Any] = {"iss": {"essential": True, "value": config.issuer}}
        if config.audience is not None:
            audiences = [config.audience] if isinstance(config.audience, str) else config.audience
            options["aud"] = {"essential": True, "values": audiences}
        for claim in config.required_claims:
            options.setdefault(claim, {}).update(essential=True)
        self._claims = JWTClaimsRegistry(now=lambda: int(wall_clock()), leeway=int(config.leeway), **options)
        self._jwks_url = config.jwks_url
        # Labelled by the issuer when the JWKS URL comes from discovery.
        self._metrics = token_metrics("jwks", config.jwks_url or config.issuer)
        self._keys: dict[str, Key] = {}
        self._sole_key: Key | None = None  # what a token without `kid` may be checked against
        self._lock = asyncio.Lock()
        self._last_fetch: float | None = None
        self._last_fetch_failed = False
        # `clock` time from which the keys held are refetched before use; none held yet: fetched on demand.
        self._fresh_until = math.inf
        policy = HttpPolicy(timeout=config.timeout, max_body=_MAX_DOCUMENT_BYTES, max_redirects=_MAX_REDIRECTS)
        self._http = AsyncHttpClient(policy, max_connections=4)
        # Verifying a signature is most of the cost of a request; a client sends the same token many times.
        self._verified = IdentityCache(clock=clock)

    async def authenticate(self, request: InboundRequest) -> Identity:
        token = bearer_token(request)
        if self._clock() >= self._fresh_until:
            await self._refresh(when_stale=True)
        digest = self._verified.digest(token)
        identity = self._verified.get(digest)
        if identity is None:
            identity = await self._verify(token)
            self._verified.put(digest, identity, self._remember_for(identity.claims))
        check_scopes(identity.scopes, self._config.required_scopes)
        return identity

    async def _verify(self, token: str) -> Identity:
        try:
            signed = extract_compact(token.encode())
            header = signed.headers()
        except (JoseError, ValueError, TypeError):
            raise AuthError("token is not a well-formed JWT") from None
        if header.get("alg") not in self._config.algorithms:
            raise AuthError(f"token signing algorithm is not accepted; expected one of {self._config.algorithms}")
        key = await self._key_for(header.get("kid"))
        if key.alg is not None and key.alg != header["alg"]:
            raise AuthError("token signing algorithm does not match its key")
        try:
            valid = validate_compact(signed, key, registry=self._registry)
        except JoseError as exc:  # e.g. an unknown `crit` extension, or a key of the wrong type for `alg`
            raise AuthError(f"token cannot be verified ({exc.error})") from None
        if not valid:
            raise AuthError("token signature is invalid")
        claims = json_object(signed.payload)
        if claims is None:
            raise AuthError("token payload is not a JSON object")
        self._validate_claims(claims)
        return identity_from_claims("jwt", claims, token)

    def _remember_for(self, claims: Mapping[str, Any]) -> float:
        """Seconds a verified token stays verified: until `exp` (plus leeway), at most _REMEMBER_MAX."""
        exp = claims.get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            return min(exp + self._config.leeway - self._wall_clock(), _REMEMBER_MAX)
        return _REMEMBER_MAX

    def _validate_claims(self, claims: dict[str, Any]) -> None:
        try:
            self._claims.validate(claims)
        except ExpiredTokenError:
            raise AuthError("token has expired") from None
        except MissingClaimError as exc:
            raise AuthError(f"token lacks required claim(s): {exc.claim}") from None
        except ClaimError as exc:
            raise AuthError(_CLAIM_PROBLEMS.get(exc.claim, f"token claim {exc.claim!r} is invalid")) from None

    async def _key_for(self, kid: Any) -> Key:
        if kid is not None and not isinstance(kid, str):
            raise AuthError("token is not a well-formed JWT")
        key = self._lookup(kid)
        if key is None:
            await self._refresh(when_stale=False)
            key = self._lookup(kid)
        if key is not None:
            return key
        if self._last_fetch_failed:
            raise AuthError("the identity provider's signing keys could not be fetched", status=503)
        if kid is None:
            raise AuthError("token has no `kid` and the issuer publishes several keys")
        raise AuthError("token is signed with an unknown key")

    def _lookup(self, kid: str | None) -> Key | None:
        return self._sole_key if kid is None else self._keys.get(kid)

    async def _refresh(self, *, when_stale: bool) -> None:
        """Refetch the JWKS: once the keys held are stale (`when_stale`), else unless fetched recently.

        Concurrent callers share one fetch.
        """
        async with self._lock:
            config = self._config
            now = self._clock()
            if when_stale:
                if now < self._fresh_until:
                    return
            else:
                has_keys = bool(self._keys) or self._sole_key is not None
                interval = config.min_refresh_interval if has_keys else _RETRY_WITHOUT_KEYS
                if self._last_fetch is not None and now - self._last_fetch < interval:
                    return
            self._last_fetch = now
            try:
                keys, lifetime = await self._fetch_keys()
            except _FetchError as exc:
                self._metrics.fetched(ok=False)
                self._last_fetch_failed = True
                self._fresh_until = now + config.min_refresh_interval
                held = f"keeping the {len(self._keys)} key(s) already fetched" if self._keys else "no keys yet"
                log.error("jwt: cannot refresh signing keys for issuer %s: %s (%s)", config.issuer, exc, held)
                return
            self._metrics.fetched(ok=True)
            self._last_fetch_failed = False
            ttl = config.jwks_cache_ttl
            if lifetime is not None:
                ttl = min(ttl, max(lifetime, config.min_refresh_interval))
            self._fresh_until = now + ttl
            if _fingerprints(self._keys, self._sole_key) - _fingerprints_of(keys):
                self._verified.clear()  # a key the issuer withdrew must stop vouching for tokens
            self._keys = {key.kid: key for key in keys if key.kid is not None}
            self._sole_key = keys[0] if len(keys) == 1 else None
            log.info("jwt: fetched %d signing key(s) for issuer %s", len(keys), config.issuer)

    async def _fetch_keys(self) -> tuple[list[Key], float | None]:
        """The usable keys, and for how long the response says they may be kept (None: not said)."""
        if self._jwks_url is None:
            self._jwks_url = await self._discover_jwks_url()
        document, lifetime = await self._get_json(self._jwks_url)
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise _FetchError(f"{self._jwks_url} is not a JWK Set (no `keys` list)")
        keys = [key for entry in entries if (key := self._usable_key(entry)) is not None]
        if not keys:
            raise _FetchError(f"{self._jwks_url} has no signature key for algorithms {self._config.algorithms}")
        return keys, lifetime

    def _usable_key(self, entry: Any) -> Key | None:
        """A public signature key for one of the configured algorithms, or None (RFC 7517: skip what is not)."""
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
            return None
        if "alg" in entry and entry["alg"] not in self._config.algorithms:
            return None
        try:
            return JWKRegistry.import_key(entry)
        except (JoseError, ValueError, TypeError) as exc:
            log.warning("jwt: ignoring unusable key %r from %s: %s", entry.get("kid"), self._jwks_url, exc)
            return None

    async def _discover_jwks_url(self) -> str:
        url = f"{self._config.issuer.rstrip('/')}/.well-known/openid-configuration"
        document, _ = await self._get_json(url)
        # OpenID Connect Discovery 1.0 section 4.3: the document must name the issuer asked for.
        if document.get("issuer") != self._config.issuer:
            raise _FetchError(f"{url} names issuer {document.get('issuer')!r}, not {self._config.issuer!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise _FetchError(f"{url} has no usable `jwks_uri`")
        return jwks_uri

    async def _get_json(self, url: str) -> tuple[dict[str, Any], float | None]:
        """The JSON object at `url`, and its `Cache-Control: max-age` if any."""
        try:
            response = await self._http.request("GET", url, headers={"Accept": "application/json"})
        except BodyTooLarge:
            raise _FetchError(f"GET {url} returned more than {_MAX_DOCUMENT_BYTES} bytes") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _FetchError(f"GET {url} failed: {exc.__class__.__name__} {exc}") from None
        if response.status != 200:
            raise _FetchError(f"GET {url} answered HTTP {response.status}")
        document = json_object(response.body)
        if document is None:
            raise _FetchError(f"GET {url} did not return a JSON object")
        return document, max_age(response.headers)

    async def aclose(self) -> None:
        await self._http.aclose()


def _fingerprints(keys: Mapping[str, Key], sole_key: Key | None) -> set[tuple[str | None, str]]:
    return _fingerprints_of([*keys.values(), *([sole_key] if sole_key is not None else [])])


def _fingerprints_of(keys: list[Key]) -> set[tuple[str | None, str]]:
    """Each key by kid and RFC 7638 thumbprint: a kid reused for another key is a withdrawn key too."""
    return {(key.kid, key.thumbprint()) for key in keys}


def create(config: InboundAuthConfig, root: Config) -> JwtAuthenticator:
    assert config.jwt is not None
    if config.jwt.audience is None:
        log.warning(
            "jwt: no `audience` configured for issuer %s: ANY token this issuer signs for ANY service "
            "will be accepted. Set inbound_auth.jwt.audience to this gateway's audience.",
            config.jwt.issuer,
        )
    return JwtAuthenticator(config.jwt)
