"""A sandboxed script produces the upstream's credentials: `strategy: lua` and `strategy: js`.

The script sees `ctx.env` (the variables listed in `env:`) and
`ctx.fetch(url, {method, headers, body})`: an HTTP request to a host listed in
`allowed_hosts` (exact host name, or host:port; redirects are not followed),
synchronous from the script's point of view. Any other host is refused with an
error naming that setting.

It returns an `Authorization` header value, or a table of headers, optionally
with a lifetime in seconds (Lua: a second return value; JavaScript: a pair,
`return [value, lifetime]`): with a lifetime the result is cached for that long,
without one the script runs for every call. The whole run, fetches included, is
bounded by `timeout`, and runs in a worker thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
from multidict import CIMultiDict

from mcp_anything.config.headers import has_line_break, is_token
from mcp_anything.http_client import BodyTooLarge, HttpPolicy, SyncHttpClient
from mcp_anything.outbound.base import OutboundAuthError
from mcp_anything.scripting import CaseInsensitive, Language, Sandbox, ScriptError, redact, time_left
from mcp_anything.tools import HttpRequest

MAX_MESSAGE = 300  # longest script error message passed on to the caller


@dataclass(frozen=True, slots=True)
class _Credentials:
    headers: dict[str, str]
    expires: float  # time.monotonic(); 0: not cached


class Fetcher:
    """The script's `fetch`: synchronous (it runs in the script's worker thread), limited to allowed hosts.

    An allowed host is a host name (any port) or `host:port` (that port only).
    """

    def __init__(self, allowed_hosts: list[str], *, max_body: int, language: Language) -> None:
        self._allowed = frozenset(allowed_hosts)
        self._max_body = max_body
        self._type_name = language.type_name
        self._setting = f"{language.strategy}.allowed_hosts"  # named when a host is refused
        # No redirects: a redirect could lead to a host outside allowed_hosts. The script's own
        # deadline bounds each request (`time_left`), so the policy's timeout is never the one reached.
        self._client = SyncHttpClient(HttpPolicy(timeout=math.inf, max_body=max_body))

    def __call__(self, url: Any, options: Any = None) -> dict[str, Any]:
        if not isinstance(url, str):
            raise ScriptError("runtime", f"fetch: url must be a string, got a {self._type_name(url)}")
        method, headers, body = _fetch_options({} if options is None else options, self._type_name)
        try:
            parsed = httpx2.URL(url)
        except httpx2.InvalidURL:
            raise ScriptError("runtime", "fetch: not a valid URL") from None
        if parsed.scheme not in ("http", "https"):
            raise ScriptError("runtime", f"fetch: only http and https URLs are allowed, got {parsed.scheme!r}")
        host = parsed.host.lower()
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        if host not in self._allowed and f"{host}:{port}" not in self._allowed:
            listed = "" if self._allowed else " (it lists no host)"
            raise ScriptError("runtime", f"fetch: host {host!r} is not in {self._setting}{listed}")
        if time_left() <= 0:
            raise ScriptError("runtime", "fetch: the script's timeout has passed")
        try:
            response = self._client.request(method, str(parsed), headers=headers, content=body, timeout=time_left())
        except BodyTooLarge:
            raise ScriptError("runtime", f"fetch: the response from {host} is larger than memory_limit_mb") from None
        except (TimeoutError, httpx2.TimeoutException):
            raise ScriptError("runtime", f"fetch: {host} did not answer within the script's timeout") from None
        except httpx2.HTTPError as exc:
            raise ScriptError("runtime", f"fetch: request to {host} failed ({type(exc).__name__})") from None
        response_headers = CaseInsensitive()
        for name, value in response.headers.items():
            name = name.lower()
            response_headers[name] = f"{response_headers[name]}, {value}" if name in response_headers else value
        return {"status": response.status, "headers": response_headers, "body": response.body}

    def close(self) -> None:
        self._client.close()


def _fetch_options(options: Any, type_name: Callable[[Any], str]) -> tuple[str, dict[str, str], str | None]:
    if not isinstance(options, dict):
        raise ScriptError("runtime", f"fetch: options must be a table of options, got a {type_name(options)}")
    unknown = sorted(set(options) - {"method", "headers", "body"})
    if unknown:
        raise ScriptError("runtime", f"fetch: unknown option {unknown[0]!r}; expected method, headers, body")
    method = options.get("method", "GET")
    if not isinstance(method, str) or not is_token(method):
        raise ScriptError("runtime", "fetch: method must be an HTTP method name such as GET or POST")
    headers = _header_table(options.get("headers", {}), "fetch: headers", type_name)
    body = options.get("body")
    if body is not None and not isinstance(body, str):
        raise ScriptError("runtime", f"fetch: body must be a string, got a {type_name(body)}")
    return method.upper(), headers, body


def _header_table(value: Any, what: str, type_name: Callable[[Any], str]) -> dict[str, str]:
    """Header names and values from a script, checked so nothing can be smuggled into the request."""
    if not isinstance(value, dict):
        raise ScriptError("result", f"{what} must be a table of header name to value, got a {type_name(value)}")
    headers = {}
    for name, header_value in value.items():
        if not is_token(name):
            raise ScriptError("result", f"{what}: {name!r} is not a valid header name")
        if isinstance(header_value, int | float) and not isinstance(header_value, bool):
            header_value = str(header_value)
        if not isinstance(header_value, str) or has_line_break(header_value):
            raise ScriptError("result", f"{what}: the value of {name!r} must be a string without line breaks")
        headers[name] = header_value
    return headers


def _carries(request: HttpRequest, credentials: dict[str, str]) -> bool:
    sent = CIMultiDict(request.headers)
    return all(sent.get(name) == value for name, value in credentials.items())


class ScriptOutboundAuth:
    def __init__(self, sandbox: Sandbox, fetcher: Fetcher, secrets: Iterable[str] = ()) -> None:
        """`secrets`: what the script is given (its env, Lua params), scrubbed from its error messages."""
        self._sandbox = sandbox
        self._fetcher = fetcher
        self._secrets = tuple(secrets)
        self._language = sandbox.language
        self._cached: _Credentials | None = None
        self._lock = anyio.Lock()  # one script run at a time refills the cache

    async def apply(self, request: HttpRequest) -> None:
        for name, value in (await self._headers()).items():
            for existing in [k for k in request.headers if k.lower() == name.lower()]:
                del request.headers[existing]
            request.headers[name] = value

    async def _headers(self) -> dict[str, str]:
        cached = self._cached
        if cached is not None and cached.expires > time.monotonic():
            return cached.headers
        async with self._lock:
            cached = self._cached
            if cached is not None and cached.expires > time.monotonic():
                return cached.headers
            try:
                credentials = self._credentials(await self._sandbox.run({}))
            except ScriptError as exc:
                raise OutboundAuthError(
                    f"outbound auth script {self._sandbox.name} failed ({exc.kind}):"
                    f" {redact(exc.message, self._secrets)[:MAX_MESSAGE]}"
                ) from None
            self._cached = credentials if credentials.expires else None
            return credentials.headers

    async def refresh(self, refused: HttpRequest | None = None) -> bool:
        """Drop the cached credentials if `refused` carried them; ones cached since are newer and kept."""
        cached = self._cached
        if cached is not None and (refused is None or _carries(refused, cached.headers)):
            self._cached = None
        return True

    async def aclose(self) -> None:
        self._sandbox.close()
        self._fetcher.close()

    def _credentials(self, result: tuple[Any, ...]) -> _Credentials:
        values = self._language.values(result)
        type_name = self._language.type_name
        value = values[0] if values else None
        if isinstance(value, str):
            headers = _header_table({"Authorization": value}, "the returned Authorization value", type_name)
        elif isinstance(value, dict) and value:
            headers = _header_table(value, "the returned headers", type_name)
        else:
            raise ScriptError(
                "result",
                f"expected an Authorization header value (string) or a table of headers, got a {type_name(value)}",
            )
        lifetime = values[1] if len(values) > 1 else None
        if lifetime is None:
            return _Credentials(headers, expires=0)
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            raise ScriptError("result", "the lifetime (second value) must be a positive number of seconds")
        return _Credentials(headers, expires=time.monotonic() + lifetime)
