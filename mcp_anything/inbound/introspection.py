"""`strategy: introspection`: ask the authorization server about the token (RFC 7662).

Active results are cached by the token's SHA-256 for min(cache_ttl, exp - now),
never longer; inactive ones are not cached, so a token becomes usable the
moment it is. Concurrent requests with one token share one introspection call.
An unreachable or failing endpoint fails closed with 503.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp

from mcp_anything.config import Config, InboundAuthConfig, IntrospectionConfig
from mcp_anything.http_client import AsyncHttpClient, BodyTooLarge, HttpPolicy
from mcp_anything.identity import Identity
from mcp_anything.inbound.base import AuthError, InboundRequest
from mcp_anything.inbound.bearer import IdentityCache, bearer_token, check_scopes, identity_from_claims
from mcp_anything.inbound.provider import json_object
from mcp_anything.metrics import token_metrics

log = logging.getLogger(__name__)

_MAX_RESPONSE_BYTES = 256 * 1024
_UNAVAILABLE = "the token introspection endpoint is unavailable"


class IntrospectionAuthenticator:
    def __init__(
        self,
        config: IntrospectionConfig,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`wall_clock` judges `exp`; `clock` times the cache."""
        self._config = config
        self._wall_clock = wall_clock
        self.authorization_servers = [config.issuer] if config.issuer else []
        self.scopes_supported = list(config.required_scopes)  # advertised in protected resource metadata
        self._cache = IdentityCache(clock=clock)
        self._metrics = token_metrics("introspection", config.endpoint)
        self._inflight: dict[bytes, asyncio.Task[Identity]] = {}
        # A POST carrying the gateway's credentials: a redirect is not followed (it is an error).
        self._http = AsyncHttpClient(HttpPolicy(timeout=config.timeout, max_body=_MAX_RESPONSE_BYTES))
        self._form_credentials: dict[str, str] = {}
        self._headers = {"Accept": "application/json"}
        secret = config.client_secret.get_secret_value()
        if config.auth_method == "client_secret_basic":
            # RFC 6749 section 2.3.1: id and secret are form-urlencoded before base64.
            pair = f"{quote(config.client_id, safe='')}:{quote(secret, safe='')}".encode()
            self._headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        else:
            self._form_credentials = {"client_id": config.client_id, "client_secret": secret}

    async def authenticate(self, request: InboundRequest) -> Identity:
        token = bearer_token(request)
        digest = self._cache.digest(token)
        identity = self._cache.get(digest)
        if identity is None:
            identity = await self._introspect_once(digest, token)
        else:
            self._metrics.cache_hit()
        check_scopes(identity.scopes, self._config.required_scopes)
        return identity

    async def _introspect_once(self, digest: bytes, token: str) -> Identity:
        task = self._inflight.get(digest)
        if task is None:
            task = asyncio.create_task(self._introspect(digest, token))
            self._inflight[digest] = task
            task.add_done_callback(lambda _: self._inflight.pop(digest, None))
        # Shielded: one caller giving up must not cancel the call the others wait on.
        return await asyncio.shield(task)

    async def _introspect(self, digest: bytes, token: str) -> Identity:
        try:
            response = await self._post(token)
        except AuthError:
            self._metrics.fetched(ok=False)
            raise
        self._metrics.fetched(ok=True)
        if response.get("active") is not True:
            raise AuthError("token is not active")
        now = self._wall_clock()
        exp = response.get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool) and exp <= now:
            raise AuthError("token has expired")
        issuer = response.get("iss")
        if self._config.issuer and issuer is not None and issuer != self._config.issuer:
            raise AuthError("token issuer is not the configured issuer")
        identity = identity_from_claims("introspection", response, token, subject_claims=("sub", "username"))
        ttl = self._config.cache_ttl
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            ttl = min(ttl, exp - now)
        self._cache.put(digest, identity, ttl)
        return identity

    async def _post(self, token: str) -> dict[str, Any]:
        form = {"token": token, "token_type_hint": "access_token", **self._form_credentials}
        endpoint = self._config.endpoint
        try:
            response = await self._http.request("POST", endpoint, data=form, headers=self._headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error("introspection: POST %s failed: %s %s", endpoint, exc.__class__.__name__, exc)
            raise AuthError(_UNAVAILABLE, status=503) from None
        except BodyTooLarge:
            document = None
        else:
            if response.status != 200:
                # 401/403 here means the gateway's own client credentials were refused.
                log.error("introspection: POST %s answered HTTP %d", endpoint, response.status)
                raise AuthError(_UNAVAILABLE, status=503)
            document = json_object(response.body)
        if document is None:
            log.error(
                "introspection: POST %s did not return a JSON object of at most %d bytes", endpoint, _MAX_RESPONSE_BYTES
            )
            raise AuthError(_UNAVAILABLE, status=503)
        return document

    async def aclose(self) -> None:
        await self._http.aclose()


def create(config: InboundAuthConfig, root: Config) -> IntrospectionAuthenticator:
    assert config.introspection is not None
    return IntrospectionAuthenticator(config.introspection)
