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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import aiohttp
import jsonschema_rs
import orjson
from starlette.types import Receive, Scope, Send
from yarl import URL

from mcp_anything.app import create_app
from mcp_anything.config import parse_config
from mcp_anything.openapi import load_upstream_tools
from mcp_anything.openapi.documents import parse
from mcp_anything.openapi.findings import Finding
from mcp_anything.openapi.operation import METHODS
from tests.support import node
from tests.support.arguments import FULL, MINIMAL, RANDOM, generate_noting_omissions
from tests.support.mcp import mcp_client
from tests.support.servers import ServerThread, free_port, read_body, stop_process

ACCEPTED, REJECTED, CREDENTIALS, NOT_SENT = "accepted", "rejected", "needs credentials", "not sent"
BAD_RESULT = "result refused by client"
PRISM_CRASH = "crashed Prism"
NO_RESPONSE = "Prism's log says the request passed validation, but no complete response came back"
PRISM_ERRORS = "https://stoplight.io/prism/errors#"
PRISM_TIMEOUT = 4.0  # seconds; below the gateway's upstream timeout, itself below the MCP client's
# Prism found nothing wrong with the request but has no mock response to send back.
_ACCEPTED_PRISM_ERRORS = frozenset({"NO_RESPONSE_RESPONSE_DEFINED"})
# Each call is judged by the one request it makes, and a request that crashed the mock (which the
# run restarts) must not be held against the next calls: no retries, no circuit breaker.
ONE_REQUEST_PER_CALL = {"timeout": "6s", "retries": {"attempts": 0}, "circuit_breaker": {"failures": 0}}
UNUSED = "http://127.0.0.1:9"  # the base URL while only building tools
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
    findings: list[Finding] = field(default_factory=list)  # what the tools approximate (openapi.findings)
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
        body = await read_body(receive)
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
        try:
            self.start()
        except BaseException:
            self.__exit__()  # no `with` block runs, so nothing else would close the log
            raise
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
        stop_process(self._process)
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

    def passed_validation(self) -> bool:
        """Whether Prism's log says the last request it received passed validation."""
        self._log.seek(0)
        log = self._log.read().decode(errors="replace")
        return "The request passed the validation rules" in log.rpartition("Request received")[2]

    def log_tail(self) -> str:
        """The error Prism printed last (for a crash: the exception line)."""
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").splitlines()
        errors = [line for line in lines if "Error" in line and "info" not in line]
        return errors[-1].strip()[:300] if errors else "no answer within the timeout"


BASIC = "Basic " + base64.b64encode(b"conformance:secret").decode()
BEARER = "Bearer conformance-token"


def upstreams(spec: Path) -> list[dict[str, Any]]:
    """Upstream settings satisfying the spec's security schemes (placeholder values), as an operator would write them.

    Header and cookie API keys become static `headers`; an API key in the query becomes the
    `api_key` outbound auth strategy. `Authorization` carries one credential per request, so
    when some operations accept only Basic and others Bearer, the Basic ones are served by a
    second upstream (`include`d there, `exclude`d from the first) that sends Basic. A spec that
    declares an `Authorization` header parameter gets a static one: the gateway never takes
    `Authorization` as an argument, its operator configures it.
    """
    document = parse(spec.read_bytes(), spec.as_uri())
    schemes = (document.get("components") or {}).get("securitySchemes") or document.get("securityDefinitions") or {}
    headers: dict[str, str] = {}
    outbound: dict[str, Any] = {"strategy": "none"}
    kinds: dict[str, str] = {}  # scheme name -> the kind of Authorization it needs
    for name, scheme in schemes.items():
        if not isinstance(scheme, dict):
            continue
        kind, key, where = scheme.get("type"), scheme.get("name"), scheme.get("in")
        if kind == "apiKey" and isinstance(key, str) and where == "header":
            headers[key] = "conformance-key"
        elif kind == "apiKey" and isinstance(key, str) and where == "cookie":
            headers["Cookie"] = f"{key}=conformance-key"
        elif kind == "apiKey" and isinstance(key, str) and where == "query":
            outbound = {"strategy": "api_key", "api_key": {"query": key, "value": "conformance-key"}}
        elif kind == "basic" or (kind == "http" and str(scheme.get("scheme", "")).lower() == "basic"):
            kinds[name] = "basic"
        elif kind in ("oauth2", "openIdConnect") or (kind == "http" and str(scheme.get("scheme")).lower() == "bearer"):
            kinds[name] = "bearer"
    basic_only = []
    for label, operation in _operations(document):
        security = operation.get("security", document.get("security")) or []
        needs = [
            {kinds[n] for n in requirement if n in kinds} for requirement in security if isinstance(requirement, dict)
        ]
        if needs and not any(n <= {"bearer"} for n in needs) and {"basic"} in needs:
            basic_only.append(label)
        params = operation.get("parameters") or []
        if any(
            isinstance(p, dict) and p.get("in") == "header" and str(p.get("name")).lower() == "authorization"
            for p in params
        ):
            headers.setdefault("Authorization", BEARER)
    if "bearer" in kinds.values():
        headers["Authorization"] = BEARER
    elif "basic" in kinds.values():
        headers.setdefault("Authorization", BASIC)
        basic_only = []  # the one upstream already sends Basic
    first = {"name": "spec", "headers": headers, "outbound_auth": outbound, "exclude": basic_only}
    if not basic_only:
        return [first]
    second = {**first, "name": "spec_basic", "headers": {**headers, "Authorization": BASIC}}
    return [first, {**second, "exclude": [], "include": basic_only}]


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`METHOD /path`, operation) for every operation written inline in the document."""
    for path, item in (document.get("paths") or {}).items():
        for method, operation in item.items() if isinstance(item, dict) else ():
            if method in METHODS and isinstance(operation, dict):
                yield f"{method.upper()} {path}", {**operation, "parameters": _all_parameters(item, operation)}


def _all_parameters(item: dict[str, Any], operation: dict[str, Any]) -> list[Any]:
    return [*(item.get("parameters") or []), *(operation.get("parameters") or [])]


async def run_spec(spec: Path, calls_per_tool: int = 3, seed: int = 0, name: str | None = None) -> SpecResult:
    """Load `spec`, serve it through the gateway in front of Prism, call every tool; return what happened."""
    result = SpecResult(spec=name or spec.name)
    settings = [
        {**upstream, **ONE_REQUEST_PER_CALL, "tool_prefix": "", "openapi": {"source": str(spec)}, "base_url": UNUSED}
        for upstream in upstreams(spec)
    ]
    # Every tool is listed and called: no search mode whatever the spec's size.
    group = {
        "name": "conformance",
        "upstreams": [u["name"] for u in settings],
        "inbound_auth": {"strategy": "none"},
        "discovery": {"mode": "all"},
    }
    raw = {"groups": [group], "upstreams": settings}
    try:
        probe = parse_config(raw, env={})
        built = [load_upstream_tools(u, probe, f"upstreams[{i}]") for i, u in enumerate(probe.upstreams)]
        routed = {label for upstream in settings for label in upstream.get("include", [])}
        result.operations = built[0].operations
        result.skipped = [s for s in built[0].skipped if s[0] not in routed]
        result.findings = [finding for b in built for finding in b.findings]
        tools = [tool for b in built for tool in b.tools]
        result.tools = len(tools)
        if not tools:
            return result  # nothing to call (a 3.1 spec with webhooks only); Prism refuses such specs
        schemas = {tool.name: tool.input_schema for tool in tools}
        with Prism(spec) as prism:
            proxy = VerdictProxy(prism.url)
            with ServerThread(proxy) as proxied:
                for upstream in settings:
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
                arguments, omitted = generate_noting_omissions(schemas[name], rng, mode)
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
                    if prism.passed_validation():  # e.g. a 1xx final response, which no HTTP client completes
                        detail = f"{verdict.method} {verdict.target}: {NO_RESPONSE}"
                        result.calls.append(Call(name, arguments, ACCEPTED, detail))
                    else:
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
                    result.calls.append(Call(name, arguments, ACCEPTED, _notes(outcome, omitted)))


DRIFT = "does not match the output schema"


def _notes(outcome: Any, omitted: list[str]) -> str:
    """What an accepted call's record should still say: optional arguments left out, a drifting response."""
    notes = []
    if omitted:
        notes.append(
            f"left out optional {', '.join(omitted)}: no value found that is valid and matches exactly one of its "
            "alternatives (the tool's schema says `anyOf` for a spec's `oneOf`, so the run treats both as exclusive)"
        )
    text = outcome.content[0].text if outcome.is_error and outcome.content else ""
    if DRIFT in str(text):
        notes.append("response drift: " + str(text).split("\n", 1)[0][:300])
    return "; ".join(notes)
