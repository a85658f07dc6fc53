"""`strategy: lua`: a sandboxed Lua script produces the upstream's credentials.

The script sees `params` (the config's `params:` map, secrets through
`${ENV}`), plus:

- `fetch(url, {method=, headers=, body=})`: an HTTP request to a host listed in
  `allowed_hosts` (exact match; redirects are not followed), returning
  `{status=, headers=, body=}` (`headers` looked up case-insensitively);
- `json_decode(string)` and `json_encode(value)`.

It returns an `Authorization` header value, or a table of headers, optionally
followed by a lifetime in seconds: with a lifetime the result is cached for
that long, without one the script runs for every call. The whole run, fetches
included, is bounded by `timeout`; it runs in a worker thread, so the event
loop never waits on it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2

from mcp_anything.config import Config, OutboundAuthConfig, OutboundLuaConfig
from mcp_anything.headers import has_line_break, is_token
from mcp_anything.lua import CaseInsensitive, Sandbox, ScriptError, lua_type, time_left
from mcp_anything.outbound.base import OutboundAuthError
from mcp_anything.tools import HttpRequest

MAX_MESSAGE = 300  # longest script error message passed on to the caller


@dataclass(frozen=True, slots=True)
class _Credentials:
    headers: dict[str, str]
    expires: float  # time.monotonic(); 0: not cached


class Fetcher:
    """The script's `fetch`: synchronous (it runs in the script's worker thread), limited to allowed hosts."""

    def __init__(self, allowed_hosts: list[str], max_body: int) -> None:
        self._allowed = frozenset(allowed_hosts)
        self._max_body = max_body
        # No redirects: a redirect could lead to a host outside allowed_hosts.
        self._client = httpx2.Client(follow_redirects=False)

    def __call__(self, url: Any, options: Any = None) -> dict[str, Any]:
        if not isinstance(url, str):
            raise ScriptError("runtime", f"fetch: url must be a string, got a {lua_type(url)}")
        method, headers, body = _fetch_options({} if options is None else options)
        try:
            parsed = httpx2.URL(url)
        except httpx2.InvalidURL:
            raise ScriptError("runtime", "fetch: not a valid URL") from None
        if parsed.scheme not in ("http", "https"):
            raise ScriptError("runtime", f"fetch: only http and https URLs are allowed, got {parsed.scheme!r}")
        host = parsed.host.lower()
        if host not in self._allowed:
            raise ScriptError("runtime", f"fetch: host {host!r} is not in allowed_hosts")
        if time_left() <= 0:
            raise ScriptError("runtime", "fetch: the script's timeout has passed")
        try:
            with self._client.stream(method, parsed, headers=headers, content=body, timeout=time_left()) as response:
                content = self._read(response, host)
        except httpx2.TimeoutException:
            raise ScriptError("runtime", f"fetch: {host} did not answer within the script's timeout") from None
        except httpx2.HTTPError as exc:
            raise ScriptError("runtime", f"fetch: request to {host} failed ({type(exc).__name__})") from None
        response_headers = CaseInsensitive()
        for name, value in response.headers.multi_items():
            name = name.lower()
            response_headers[name] = f"{response_headers[name]}, {value}" if name in response_headers else value
        return {"status": response.status_code, "headers": response_headers, "body": content}

    def _read(self, response: httpx2.Response, host: str) -> bytes:
        content = bytearray()
        for chunk in response.iter_bytes():
            content += chunk
            if len(content) > self._max_body:
                raise ScriptError("runtime", f"fetch: the response from {host} is larger than memory_limit_mb")
            if time_left() <= 0:
                raise ScriptError("runtime", f"fetch: {host} did not answer within the script's timeout")
        return bytes(content)

    def close(self) -> None:
        self._client.close()


def _fetch_options(options: Any) -> tuple[str, dict[str, str], str | None]:
    if not isinstance(options, dict):
        raise ScriptError("runtime", f"fetch: options must be a table, got a {lua_type(options)}")
    unknown = sorted(set(options) - {"method", "headers", "body"})
    if unknown:
        raise ScriptError("runtime", f"fetch: unknown option {unknown[0]!r}; expected method, headers, body")
    method = options.get("method", "GET")
    if not isinstance(method, str) or not is_token(method):
        raise ScriptError("runtime", "fetch: method must be an HTTP method name such as GET or POST")
    headers = _header_table(options.get("headers", {}), "fetch: headers")
    body = options.get("body")
    if body is not None and not isinstance(body, str):
        raise ScriptError("runtime", f"fetch: body must be a string, got a {lua_type(body)}")
    return method.upper(), headers, body


def _header_table(value: Any, what: str) -> dict[str, str]:
    """Header names and values from a script, checked so nothing can be smuggled into the request."""
    if not isinstance(value, dict):
        raise ScriptError("result", f"{what} must be a table of name = value, got a {lua_type(value)}")
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


class LuaOutboundAuth:
    def __init__(self, sandbox: Sandbox, fetcher: Fetcher) -> None:
        self._sandbox = sandbox
        self._fetcher = fetcher
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
                credentials = _credentials(await self._sandbox.run({}))
            except ScriptError as exc:
                raise OutboundAuthError(
                    f"outbound auth script {self._sandbox.name} failed ({exc.kind}): {exc.message[:MAX_MESSAGE]}"
                ) from None
            self._cached = credentials if credentials.expires else None
            return credentials.headers

    async def refresh(self) -> bool:
        self._cached = None
        return True

    async def aclose(self) -> None:
        self._fetcher.close()


def _credentials(result: tuple[Any, ...]) -> _Credentials:
    value = result[0] if result else None
    if isinstance(value, str):
        headers = _header_table({"Authorization": value}, "the returned Authorization value")
    elif isinstance(value, dict) and value:
        headers = _header_table(value, "the returned headers")
    else:
        raise ScriptError(
            "result", f"expected an Authorization header value (string) or a table of headers, got a {lua_type(value)}"
        )
    lifetime = result[1] if len(result) > 1 else None
    if lifetime is None:
        return _Credentials(headers, expires=0)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        raise ScriptError("result", "the second return value (lifetime) must be a positive number of seconds")
    return _Credentials(headers, expires=time.monotonic() + lifetime)


def create(config: OutboundAuthConfig, root: Config) -> LuaOutboundAuth:
    lua: OutboundLuaConfig | None = config.lua
    assert lua is not None  # guaranteed by OutboundAuthConfig's validation
    fetcher = Fetcher(lua.allowed_hosts, max_body=lua.memory_limit_mb << 20)
    sandbox = Sandbox(
        root.resolve_path(lua.source),
        location="lua.source",  # the server prefixes the upstream: upstreams[0].outbound_auth.lua.source
        timeout=lua.timeout,
        memory_limit_mb=lua.memory_limit_mb,
        functions={"fetch": fetcher, "json_decode": json_decode, "json_encode": json_encode},
        constants={"params": {k: v.get_secret_value() for k, v in lua.params.items()}},
    )
    return LuaOutboundAuth(sandbox, fetcher)
