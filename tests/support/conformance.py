"""Real-spec conformance: every tool of a spec, called through the real gateway, judged by Prism.

For one spec: Prism (`prism mock`) serves it and validates every request against the
original document; a small recording proxy between the gateway and Prism keeps Prism's
verdict for each request (the `sl-violations` header, or Prism's own problem+json
error); the gateway serves the spec's tools; the official MCP client calls every tool
with arguments generated from its input schema (tests/support/arguments.py).

Prism checks security requirements before anything else, so the gateway is given
upstream credentials that satisfy the spec's security schemes (static headers for
`Authorization` and API-key headers or cookies, the `api_key` outbound strategy for a
key in the query); Prism checks their presence, never their value.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import aiohttp
import jsonschema_rs
import orjson
from starlette.types import Receive, Scope, Send
from yarl import URL

from mcp_anything.config import parse_config
from mcp_anything.openapi import load_upstream_tools
from mcp_anything.openapi.documents import parse
from mcp_anything.server import create_app
from tests.conftest import mcp_client
from tests.support import node
from tests.support.arguments import FULL, MINIMAL, RANDOM, generate
from tests.support.servers import ServerThread, free_port

ACCEPTED, REJECTED, CREDENTIALS, NOT_SENT = "accepted", "rejected", "needs credentials", "not sent"
BAD_RESULT = "result refused by client"
PRISM_CRASH = "crashed Prism"
PRISM_ERRORS = "https://stoplight.io/prism/errors#"
PRISM_TIMEOUT = 4.0  # seconds; below the gateway's upstream timeout, itself below the MCP client's
# Prism found nothing wrong with the request but has no mock response to send back.
_ACCEPTED_PRISM_ERRORS = frozenset({"NO_RESPONSE_RESPONSE_DEFINED"})
_HOP_HEADERS = (b"host", b"connection", b"content-length", b"transfer-encoding")


@dataclass
class Call:
    tool: str
    arguments: dict[str, Any]
    outcome: str
    detail: str = ""


@dataclass
class SpecResult:
    spec: str
    operations: int = 0
    tools: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    error: str | None = None

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.calls if c.outcome == outcome)


@dataclass
class Verdict:
    method: str
    target: str
    status: int
    problems: list[str]
    credentials_missing: bool
    crashed: bool = False


class VerdictProxy:
    """An ASGI app forwarding every request to Prism unchanged and recording Prism's verdict."""

    def __init__(self, prism_url: str) -> None:
        self.prism_url = prism_url
        self.verdicts: list[Verdict] = []
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        target = scope["raw_path"].decode() + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.lower() not in _HOP_HEADERS]
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=PRISM_TIMEOUT)
            self._session = aiohttp.ClientSession(auto_decompress=False, timeout=timeout)
        url = URL(self.prism_url + target, encoded=True)
        try:
            async with self._session.request(
                scope["method"], url, headers=headers, data=body, allow_redirects=False
            ) as response:
                status, payload = response.status, await response.read()
                self.verdicts.append(_verdict(scope["method"], target, status, response.headers, payload))
                out_headers = [
                    (k.encode(), v.encode())
                    for k, v in response.headers.items()
                    if k.lower() not in ("transfer-encoding", "connection", "content-length")
                ]
        except (aiohttp.ClientError, TimeoutError):  # Prism died on this request, or hangs
            self.verdicts.append(Verdict(scope["method"], target, 502, [], False, crashed=True))
            status, payload, out_headers = 502, b"", []
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._session is not None:
                    await self._session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _verdict(method: str, target: str, status: int, headers: Any, payload: bytes) -> Verdict:
    problems = []
    with contextlib.suppress(ValueError):
        for violation in orjson.loads(headers.get("sl-violations", "[]")):
            if violation.get("location", [""])[0] == "request" and violation.get("severity") == "Error":
                problems.append(str(violation.get("message")))
    credentials_missing = False
    if headers.get("content-type", "").startswith("application/problem+json"):
        with contextlib.suppress(ValueError):
            problem = orjson.loads(payload)
            kind = str(problem.get("type", "")).removeprefix(PRISM_ERRORS)
            validation = [v for v in problem.get("validation", []) if isinstance(v, dict)]
            if kind == "UNAUTHORIZED":
                credentials_missing = True
            elif validation:
                problems += [f"{'.'.join(map(str, v.get('location', [])))}: {v.get('message')}" for v in validation]
            elif kind not in _ACCEPTED_PRISM_ERRORS and problem.get("type", "").startswith(PRISM_ERRORS):
                problems.append(f"{kind}: {problem.get('detail') or problem.get('title')}")
    return Verdict(method, target, status, list(dict.fromkeys(problems)), credentials_missing)


class Prism:
    """`prism mock` serving one spec on a fixed local port; restartable, because some requests crash it."""

    def __init__(self, spec: Path) -> None:
        self.spec = spec
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as this object, closed in __exit__
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Prism:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()

    def start(self) -> None:
        self._log.seek(0)
        self._log.truncate()
        self._process = subprocess.Popen(
            node.command("prism", "mock", "-h", "127.0.0.1", "-p", str(self.port), str(self.spec)),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=node.env(),
        )
        deadline = time.monotonic() + 90
        while True:
            if not self.alive():
                raise RuntimeError(f"Prism could not serve {self.spec.name}: {self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"Prism did not start for {self.spec.name}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def wait_dead(self) -> None:
        """After a failed request: let a crashing Prism exit (so its log is complete), stop a hung one."""
        if self._process is not None:
            try:
                self._process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self) -> str:
        """The error Prism printed last (for a crash: the exception line)."""
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").splitlines()
        errors = [line for line in lines if "Error" in line and "info" not in line]
        return errors[-1].strip()[:300] if errors else "no answer within the timeout"


def credentials(spec: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Upstream settings satisfying the spec's security schemes (placeholder values).

    Header and cookie schemes become static upstream `headers`; an API key in the query
    becomes the `api_key` outbound auth strategy. One `Authorization` header cannot be
    Basic and Bearer at once: Bearer wins.
    """
    document = parse(spec.read_bytes(), spec.as_uri())
    schemes = (document.get("components") or {}).get("securitySchemes") or document.get("securityDefinitions") or {}
    headers: dict[str, str] = {}
    outbound: dict[str, Any] = {"strategy": "none"}
    for scheme in schemes.values():
        if not isinstance(scheme, dict):
            continue
        kind, name, where = scheme.get("type"), scheme.get("name"), scheme.get("in")
        if kind == "apiKey" and isinstance(name, str) and where == "header":
            headers[name] = "conformance-key"
        elif kind == "apiKey" and isinstance(name, str) and where == "cookie":
            headers["Cookie"] = f"{name}=conformance-key"
        elif kind == "apiKey" and isinstance(name, str) and where == "query":
            outbound = {"strategy": "api_key", "api_key": {"query": name, "value": "conformance-key"}}
        elif kind == "basic" or (kind == "http" and str(scheme.get("scheme", "")).lower() == "basic"):
            headers.setdefault("Authorization", "Basic " + base64.b64encode(b"conformance:secret").decode())
        elif kind in ("oauth2", "openIdConnect") or (kind == "http" and str(scheme.get("scheme")).lower() == "bearer"):
            headers["Authorization"] = "Bearer conformance-token"
    return headers, outbound


async def run_spec(spec: Path, calls_per_tool: int = 3, seed: int = 0, name: str | None = None) -> SpecResult:
    """Load `spec`, serve it through the gateway in front of Prism, call every tool; return what happened."""
    result = SpecResult(spec=name or spec.name)
    headers, outbound = credentials(spec)
    upstream = {
        "name": "spec",
        "tool_prefix": "",
        "timeout": "6s",
        "headers": headers,
        "outbound_auth": outbound,
        "openapi": {"source": str(spec)},
    }
    raw = {"groups": [{"name": "conformance", "upstreams": ["spec"]}], "upstreams": [upstream]}
    try:
        upstream["base_url"] = "http://127.0.0.1:9"  # replaced by the proxy's URL below
        probe = parse_config(raw, env={})
        built = load_upstream_tools(probe.upstreams[0], probe, "upstreams[0]")
        result.operations, result.tools, result.skipped = built.operations, len(built.tools), built.skipped
        if not built.tools:
            return result  # nothing to call (a 3.1 spec with webhooks only); Prism refuses such specs
        schemas = {tool.name: tool.input_schema for tool in built.tools}
        with Prism(spec) as prism:
            proxy = VerdictProxy(prism.url)
            with ServerThread(proxy) as proxied:
                upstream["base_url"] = proxied.url
                config = parse_config(raw, env={})
                with ServerThread(create_app(config), lifespan="on") as gateway:
                    await _call_every_tool(gateway.url + "/mcp", schemas, prism, proxy, result, calls_per_tool, seed)
    except Exception as exc:  # one spec's failure must not hide the others' results
        result.error = f"{type(exc).__name__}: {exc}"
    return result


async def _call_every_tool(
    url: str,
    schemas: dict[str, Any],
    prism: Prism,
    proxy: VerdictProxy,
    result: SpecResult,
    calls_per_tool: int,
    seed: int,
) -> None:
    rng = Random(seed)
    modes = [MINIMAL, FULL, *([RANDOM] * max(0, calls_per_tool - 2))][:calls_per_tool]
    async with mcp_client(url) as client:
        listed = [tool.name for tool in (await client.list_tools()).tools]
        for name in sorted(listed):
            validator = jsonschema_rs.validator_for(schemas[name])
            for mode in modes:
                arguments = generate(schemas[name], rng, mode)
                if not validator.is_valid(arguments):
                    message = next(validator.iter_errors(arguments)).message
                    result.calls.append(Call(name, arguments, NOT_SENT, f"no valid arguments exist: {message}"))
                    continue
                seen = len(proxy.verdicts)
                try:
                    outcome = await client.call_tool(name, arguments)
                except RuntimeError as exc:  # the MCP client refused the result (output schema)
                    result.calls.append(Call(name, arguments, BAD_RESULT, str(exc)[:300]))
                    continue
                if len(proxy.verdicts) > seen and proxy.verdicts[-1].crashed:
                    prism.wait_dead()
                    verdict = proxy.verdicts[-1]
                    detail = f"{verdict.method} {verdict.target}: {prism.log_tail()}"
                    result.calls.append(Call(name, arguments, PRISM_CRASH, detail))
                    prism.start()
                    continue
                if len(proxy.verdicts) == seen:
                    text = outcome.content[0].text if outcome.content else ""
                    result.calls.append(Call(name, arguments, NOT_SENT, str(text)[:300]))
                    continue
                verdict = proxy.verdicts[-1]
                if verdict.problems:
                    detail = f"{verdict.method} {verdict.target} -> {verdict.status}: " + "; ".join(verdict.problems)
                    result.calls.append(Call(name, arguments, REJECTED, detail))
                elif verdict.credentials_missing:
                    result.calls.append(Call(name, arguments, CREDENTIALS, f"{verdict.method} {verdict.target}"))
                else:
                    result.calls.append(Call(name, arguments, ACCEPTED))
