"""`strategy: oauth2_client_credentials`: the client credentials grant, RFC 6749 §4.4.

The gateway authenticates to the token endpoint as itself (`client_secret_basic`,
§2.3.1, or `client_secret_post`), caches the access token (§5.1) until
`refresh_skew` before `expires_in` runs out, and turns error responses (§5.2)
into an OutboundAuthError carrying `error` and `error_description`.

One token request at a time: callers that find no usable token all wait on
the same fetch. After an upstream 401, only the token that was refused is
dropped: concurrent calls refused with one token cause one new token request,
and a call refused with a token already replaced just retries with the new
one. While the endpoint keeps failing, fetches back off exponentially and
callers in between fail at once with the last error; a token that is due
for renewal but not yet expired is still used meanwhile, so a short outage of
the token endpoint within the skew costs no call. With `cache: redis://...`
the replicas share one token (shared_tokens.py): a replica's fetch goes
through the cache first.

Why not authlib's `AsyncOAuth2Client`: its `client_secret_basic` puts the raw
client id and secret into the Basic credentials, where §2.3.1 requires them to
be form-urlencoded first, so a secret containing `%`, `+` or `:` is refused by
servers that decode them (oauth2-mock-server, Keycloak, authlib's own server;
the tests use such a secret). Beyond that it would only build a three-field
form and parse the JSON answer: caching with a skew, single-flight, backoff and
secret-free errors are ours either way, because its token lock guards only
requests sent through its own httpx2 client, while upstream calls go out
through aiohttp. So the grant stays here, on the gateway's shared HTTP client
(`http_client`: no redirects, the response capped at MAX_RESPONSE_BYTES counted
after decompression), and authlib is not a dependency.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import orjson
from multidict import CIMultiDict

from mcp_anything.config import ClientCredentialsConfig, Config, OutboundAuthConfig
from mcp_anything.config.headers import is_visible
from mcp_anything.http_client import AsyncHttpClient, BodyTooLarge, HttpPolicy
from mcp_anything.metrics import token_metrics
from mcp_anything.outbound.base import OutboundAuthError, set_header
from mcp_anything.outbound.shared_tokens import SharedTokens, renewal_margin
from mcp_anything.tools import HttpRequest

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5  # seconds of fail-fast after the first failed token request
BACKOFF_MAX = 30.0  # doubling stops here
# A token response is a few KB; a body that inflates past this is refused, not read.
MAX_RESPONSE_BYTES = 64 * 1024
_DESCRIPTION_MAX = 300
_REDACTED = "**********"


class ClientCredentialsAuth:
    def __init__(self, config: ClientCredentialsConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._endpoint = _without_userinfo_and_query(config.token_url)
        self._metrics = token_metrics("client_credentials", self._endpoint)
        self._form, self._headers = _token_request(config)
        secret = config.client_secret.get_secret_value()
        # Whatever the endpoint or a library echoes back, none of these reach a message.
        basic = self._headers.get("Authorization", "").removeprefix("Basic ")
        self._secrets = [s for s in (secret, quote(secret, safe=""), basic) if s]
        # A redirect would resend the client credentials somewhere else: the 3xx is an error instead.
        self._http = AsyncHttpClient(HttpPolicy(timeout=config.timeout, max_body=MAX_RESPONSE_BYTES), max_connections=4)
        self._authorization = ""
        self._refresh_at = 0.0  # the `clock` time from which a new token is fetched; 0: no token
        self._expires_at = 0.0  # ... and from which the cached one is no longer used even if that fails
        self._fetch: asyncio.Task[str] | None = None
        self._shared = None if config.cache.get_secret_value() == "memory" else SharedTokens(config)
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = ""

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(token_url={self._endpoint!r}, client_id={self._config.client_id!r})"

    async def apply(self, request: HttpRequest) -> None:
        authorization = self._authorization
        if self._clock() >= self._refresh_at:
            try:
                authorization = await self._renew()
            except OutboundAuthError:
                if self._clock() >= self._expires_at:
                    raise
        else:
            self._metrics.cache_hit()
        set_header(request, "Authorization", authorization)

    async def refresh(self, refused: HttpRequest | None = None) -> bool:
        """Drop the token `refused` carried (any token when None); a newer one is kept for the retry."""
        # A token being fetched right now is newer than the one the upstream refused.
        if self._fetch is None and (refused is None or _authorization_of(refused) == self._authorization):
            self._refresh_at = self._expires_at = 0.0
            if self._shared is not None:  # or this replica would read the refused token back
                await self._shared.forget(self._authorization.removeprefix("Bearer "))
        return True

    async def aclose(self) -> None:
        if self._fetch is not None:
            self._fetch.cancel()
        if self._shared is not None:
            self._shared.close()
        await self._http.aclose()

    async def _renew(self) -> str:
        if self._fetch is None:
            now = self._clock()
            if now < self._retry_at:
                raise OutboundAuthError(f"{self._last_error} (next attempt in {self._retry_at - now:.1f}s)")
            self._fetch = asyncio.create_task(self._fetch_token())
            # Mark the outcome as seen even if every waiter was cancelled meanwhile.
            self._fetch.add_done_callback(lambda task: task.cancelled() or task.exception())
        # A caller that gives up must not cancel the fetch the others are waiting on.
        return await asyncio.shield(self._fetch)

    async def _fetch_token(self) -> str:
        started = self._clock()
        try:
            if self._shared is None:
                token, lifetime = await self._request_token()
                cached = False
            else:
                token, lifetime, cached = await self._shared.fetch(self._request_token)
        except OutboundAuthError as error:
            self._metrics.fetched(ok=False)
            self._failures += 1
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(self._failures - 1, 16))
            self._retry_at = self._clock() + delay
            self._last_error = str(error)
            log.warning("%s; next attempt in %.1fs", error, delay)
            raise
        finally:
            self._fetch = None
        self._failures = 0
        self._authorization = f"Bearer {token}"
        if lifetime is None:
            self._refresh_at = self._expires_at = math.inf
        else:
            self._expires_at = started + lifetime
            self._refresh_at = self._expires_at - renewal_margin(lifetime, self._config.refresh_skew)
        if cached:  # another replica fetched it
            self._metrics.cache_hit()
            return self._authorization
        self._metrics.fetched(ok=True)
        log.info(
            "OAuth2 token for client %r from %s, %s",
            self._config.client_id,
            self._endpoint,
            f"valid for {lifetime:g}s" if lifetime is not None else "no expires_in: used until the upstream refuses it",
        )
        return self._authorization

    async def _request_token(self) -> tuple[str, float | None]:
        try:
            response = await self._http.request("POST", self._config.token_url, data=self._form, headers=self._headers)
        except BodyTooLarge:
            raise self._error(f"the response is larger than {MAX_RESPONSE_BYTES} bytes") from None
        except TimeoutError:
            raise self._error(f"no answer within {self._config.timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise self._error(f"{type(exc).__name__}: {exc}") from None
        status = response.status
        try:
            payload: Any = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            raise self._error(f"HTTP {status}, and the body is not a JSON object")
        if status != 200 or "error" in payload:
            raise self._error(_oauth_error(status, payload))
        return self._parse_token(payload)

    def _parse_token(self, payload: dict[str, Any]) -> tuple[str, float | None]:
        """The §5.1 success response: a Bearer `access_token` and, usually, `expires_in`."""
        token = payload.get("access_token")
        if not isinstance(token, str) or not is_visible(token):
            raise self._error("the response has no usable access_token")
        token_type = payload.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise self._error(f"token_type {str(token_type)[:40]!r} is not supported; expected Bearer")
        expires_in = payload.get("expires_in")
        if expires_in is None:
            return token, None
        try:
            lifetime = float(expires_in)  # some servers send it as a string
        except (TypeError, ValueError):
            lifetime = math.nan
        if not lifetime > 0 or math.isinf(lifetime):
            raise self._error(f"expires_in {str(expires_in)[:40]!r} is not a positive number of seconds")
        return token, lifetime

    def _error(self, detail: str) -> OutboundAuthError:
        message = f"OAuth2 token request to {self._endpoint} for client {self._config.client_id!r} failed: {detail}"
        for secret in self._secrets:
            message = message.replace(secret, _REDACTED)
        return OutboundAuthError(message)


def _token_request(config: ClientCredentialsConfig) -> tuple[dict[str, str], dict[str, str]]:
    """The §4.4.2 form and headers, built once: the same request is sent for every token."""
    form = {"grant_type": "client_credentials"}
    if config.scopes:
        form["scope"] = " ".join(config.scopes)
    if config.audience is not None:
        # Auth0 and Okta read `audience`; RFC 8707 servers read `resource`.
        form["audience"] = config.audience
        form["resource"] = config.audience
    headers = {"Accept": "application/json"}
    secret = config.client_secret.get_secret_value()
    if config.auth_method == "client_secret_basic":
        # §2.3.1: form-urlencode both parts before joining them; quote() writes a space as %20,
        # which decoders that do not map `+` to a space read correctly too.
        credentials = f"{quote(config.client_id, safe='')}:{quote(secret, safe='')}"
        headers["Authorization"] = f"Basic {base64.b64encode(credentials.encode()).decode()}"
    else:
        form["client_id"] = config.client_id
        form["client_secret"] = secret
    return form, headers


def _oauth_error(status: int, payload: dict[str, Any]) -> str:
    """`error: error_description` from a §5.2 error response; the description is cut and made printable."""
    error = payload.get("error")
    if not isinstance(error, str):
        return f"HTTP {status} without an OAuth error code"
    description = payload.get("error_description")
    detail = f"{error}: {description}" if isinstance(description, str) and description else error
    detail = "".join(c if c.isprintable() else " " for c in detail)
    return f"{detail[:_DESCRIPTION_MAX]} (HTTP {status})"


def _authorization_of(request: HttpRequest) -> str | None:
    return CIMultiDict(request.headers).get("Authorization")


def _without_userinfo_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def create(config: OutboundAuthConfig, root: Config) -> ClientCredentialsAuth:
    assert config.oauth2_client_credentials is not None  # guaranteed by OutboundAuthConfig validation
    return ClientCredentialsAuth(config.oauth2_client_credentials)
