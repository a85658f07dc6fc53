"""Hostile input: JSON-RPC fuzzing against the real gateway, Host/Origin checks, body limits, and
properties of request building for arbitrary argument values.

Every answer to garbage is a JSON-RPC or HTTP protocol error: never a 500, never a traceback, and
the gateway keeps serving.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx2
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mcp_anything.app import create_app
from mcp_anything.config import ServerConfig, parse_config
from mcp_anything.openapi.documents import Documents, source_uri
from mcp_anything.origins import HostOriginPolicy
from mcp_anything.outbound.none import create as no_outbound_auth
from mcp_anything.tools import ArgumentError, Tool
from mcp_anything.upstream import Upstream
from tests.support.gateway import echo_config
from tests.support.mcp import INITIALIZE
from tests.support.openapi import SHARED_SPECS, SPECS, load
from tests.support.servers import ServerThread

MAX_BODY = 64 * 1024
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
MODERN = {**ACCEPT, "MCP-Protocol-Version": "2026-07-28"}


@pytest.fixture(scope="module")
def gateway_url(upstream_server: tuple[Any, str]) -> Iterator[str]:
    raw = echo_config(upstream_server[1])
    raw["server"] = {"max_body_bytes": MAX_BODY}
    with ServerThread(create_app(parse_config(raw, base_dir=SPECS, env={})), lifespan="on") as server:
        yield server.url


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=gateway_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def session(http: httpx2.Client) -> dict[str, str]:
    """Headers of an open handshake-era session, so fuzzed requests get past the session check."""
    opened = http.post("/mcp", json=INITIALIZE, headers=ACCEPT)
    return {**ACCEPT, "Mcp-Session-Id": opened.headers["mcp-session-id"]}


def assert_protocol_answer(response: httpx2.Response) -> None:
    """A 2xx or 4xx answer; a body, if any, is JSON with no traceback in it."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert "Traceback" not in response.text
    if response.content == b"Invalid HTTP request received.":  # refused by uvicorn's HTTP parser (control bytes)
        assert response.status_code == 400
    elif response.content:
        body = orjson.loads(response.content)
        if response.status_code >= 400 and "jsonrpc" in body:
            assert isinstance(body["error"]["code"], int) and isinstance(body["error"]["message"], str)


def assert_still_serving(http: httpx2.Client, session: dict[str, str]) -> None:
    listed = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=session)
    assert listed.status_code == 200 and listed.json()["result"]["tools"]


# --- JSON-RPC fuzzing -------------------------------------------------------------------------------

# Integers within what orjson parses as integers: a bigger one arrives as a float.
json_integers = st.integers(-(2**63), 2**64 - 1)
json_scalars = st.none() | st.booleans() | json_integers | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
methods = st.sampled_from(
    ["initialize", "ping", "tools/list", "tools/call", "server/discover", "notifications/initialized", "x/y"]
) | st.text(max_size=20)
tool_names = st.sampled_from(["echo_get_item", "echo_create_item", "echo_search_items"]) | st.text(max_size=70)
params = st.fixed_dictionaries(
    {},
    optional={
        "name": tool_names | json_values,
        "arguments": st.dictionaries(st.sampled_from(["itemId", "q", "name", "limit", "x"]), json_values) | json_values,
        "_meta": json_values,
        "protocolVersion": st.sampled_from(["2025-06-18", "2026-07-28"]) | json_values,
        "capabilities": json_values,
        "clientInfo": json_values,
    },
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.just("2.0") | json_values,
        "id": st.integers(min_value=-(2**63), max_value=2**64) | st.text(max_size=30) | json_values,
        "method": methods | json_values,
        "params": params | json_values,
        "result": json_values,
        "error": json_values,
    },
)
header_sets = st.sampled_from(["none", "session", "modern"])
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(str.strip)

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _headers(kind: str, session: dict[str, str], method: Any = None) -> dict[str, str]:
    if kind == "session":
        return session
    if kind == "modern":
        sendable = isinstance(method, str) and method.isascii() and method == method.strip()  # what h11 will send
        return {**MODERN, "Mcp-Method": method} if sendable else MODERN
    return ACCEPT


@pytest.mark.slow
@FUZZ
@given(body=st.binary(max_size=512), kind=header_sets)
def test_fuzz_raw_bytes(http: httpx2.Client, session: dict[str, str], body: bytes, kind: str) -> None:
    assert_protocol_answer(http.post("/mcp", content=body, headers=_headers(kind, session)))


@pytest.mark.slow
@FUZZ
@given(message=messages, kind=header_sets)
def test_fuzz_json_rpc_messages(http: httpx2.Client, session: dict[str, str], message: dict, kind: str) -> None:
    body = orjson.dumps(message, option=orjson.OPT_PASSTHROUGH_DATACLASS) if _dumpable(message) else b"{}"
    assert_protocol_answer(http.post("/mcp", content=body, headers=_headers(kind, session, message.get("method"))))


@pytest.mark.slow
@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(["MCP-Protocol-Version", "Mcp-Session-Id", "Mcp-Method", "Mcp-Name", "Accept", "Content-Type"]),
        header_text,
    ),
    method=methods,
)
def test_fuzz_transport_headers(http: httpx2.Client, headers: dict[str, str], method: str) -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"name": "echo_get_item"}}
    for verb in ("POST", "GET", "DELETE"):
        response = http.request(verb, "/mcp", content=orjson.dumps(message), headers=headers)
        if verb == "GET" and response.status_code == 200:
            continue  # an event stream was opened: nothing to parse
        assert_protocol_answer(response)


def _dumpable(message: dict) -> bool:
    try:
        orjson.dumps(message)
    except TypeError:  # integers past 64 bits: sent as text below
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'"just a string"',
        b"\xff\xfe{not utf-8",
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": "\xed\xa0\x80"}}',  # a lone surrogate
        b'{"jsonrpc": "2.0", "id": ' + b"9" * 400 + b', "method": "tools/list"}',  # a huge id
        b'{"jsonrpc": "2.0", "id": 1e400, "method": "tools/list"}',
        b'{"jsonrpc": "2.0", "id": 18446744073709551616, "method": "tools/list"}',
        b'{"jsonrpc": "2.0", "id": "' + b"i" * 60000 + b'", "method": "tools/list"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo_get_item", "arguments": '
        + b'{"itemId": ' * 1020
        + b"1"
        + b"}" * 1020
        + b"}}",
        b"[" * 1025 + b"]" * 1025,  # past orjson's depth limit (1024)
        b"[" * 60000,
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo_create_item", "arguments": '
        b'{"name": "' + b"n" * 1000 + b'", "price": -0.0, "kind": null}}}',
    ],
    ids=lambda b: f"{len(b)}B:{b[:24]!r}",
)
@pytest.mark.parametrize("kind", ["session", "modern"])
def test_edge_bodies(http: httpx2.Client, session: dict[str, str], body: bytes, kind: str) -> None:
    assert_protocol_answer(http.post("/mcp", content=body, headers=_headers(kind, session)))
    assert_still_serving(http, session)


@pytest.mark.slow
def test_the_gateway_keeps_serving_after_the_fuzzing(http: httpx2.Client, session: dict[str, str]) -> None:
    assert_still_serving(http, session)
    assert http.get("/healthz").status_code == 200


# --- body limit ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bodies_over_the_limit_get_413(http: httpx2.Client, session: dict[str, str]) -> None:
    big = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "pad": "' + b"x" * MAX_BODY + b'"}'
    declared = http.post("/mcp", content=big, headers=session)
    assert declared.status_code == 413 and declared.json() == {"error": "request_too_large", "limit_bytes": MAX_BODY}

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = http.post("/mcp", content=chunks(), headers=session)
    assert streamed.status_code == 413
    assert_still_serving(http, session)


# --- Host and Origin ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),
        ({"Origin": "http://localhost:5173"}, 200),
        ({"Origin": "http://127.0.0.1:6274"}, 200),
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "http://localhost.evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Host": "localhost:8080"}, 200),
        ({"Host": "evil.example"}, 421),
        ({"Host": "127.0.0.1.evil.example:80"}, 421),
    ],
)
def test_loopback_defaults(http: httpx2.Client, session: dict[str, str], headers: dict, status: int) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    response = http.post("/mcp", json=ping, headers={**session, **headers})
    assert response.status_code == status, response.text
    if status != 200:
        assert response.json()["error"]["message"] in ("Origin not allowed", "Host header not allowed")


@pytest.mark.slow
def test_configured_allowlists(upstream_url: str) -> None:
    raw = echo_config(upstream_url)
    raw["server"] = {"allowed_origins": ["https://app.example.com"], "allowed_hosts": ["mcp.example.com"]}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}
    app = create_app(parse_config(raw, base_dir=SPECS, env={}))
    with ServerThread(app, lifespan="on") as server, httpx2.Client(base_url=server.url) as http:
        ok = {**ACCEPT, "Host": "mcp.example.com"}
        assert http.post("/mcp", json=ping, headers=ok).status_code == 200
        assert http.post("/mcp", json=ping, headers={**ok, "Origin": "https://app.example.com"}).status_code == 200
        assert http.post("/mcp", json=ping, headers={**ok, "Origin": "http://localhost:3000"}).status_code == 403
        assert http.post("/mcp", json=ping, headers=ACCEPT).status_code == 421, "loopback names no longer allowed"
        assert http.get("/healthz").status_code == 200, "probes are not MCP endpoints"


def test_default_policies_by_bind_address() -> None:
    public = HostOriginPolicy(ServerConfig(host="0.0.0.0", public_url="https://mcp.example.com"))
    assert public.host_allowed("10.0.0.7:8080"), "no Host check by default off loopback"
    assert public.origin_allowed("https://mcp.example.com")
    assert not public.origin_allowed("http://localhost:3000")
    wildcard = HostOriginPolicy(ServerConfig(allowed_origins=["*"], allowed_hosts=["api.example.com:8443"]))
    assert wildcard.origin_allowed("https://anything.example")
    assert wildcard.host_allowed("api.example.com:8443") and not wildcard.host_allowed("api.example.com:8444")


# --- request building: properties for arbitrary argument values ------------------------------------------

OWN_SPECS = [SPECS / name for name in ("echo.yaml", "pets.yaml", "faults.yaml", "parameters.yaml")]
CORPUS_SPECS = [
    SHARED_SPECS / "oas-examples" / "3.0" / name
    for name in (
        "parameters-style.json",
        "parameters-extreme.json",
        "parameters-cookies.json",
        "parameters-common.json",
        "petstore.json",
        "request-examples.json",
    )
]
BASE_URL = "http://upstream.test:8080/api/v1"
STATIC_HEADERS = {"X-Gateway": "mcp-anything"}

# Characters that try to break out of a path segment, a query, a header line or a cookie.
_PIECES = ["a", "Z", "0", "/", ".", "..", "../", "?", "#", "%", "%2e", "%2F", "&", "=", ";", ",", " ", "\r", "\n"]
_PIECES += ["\r\n", "\0", "\t", ":", "@", "[", "]", '"', "'", "\\", "+", "~", "é", "\u2028", "\U0001f600", "Host:"]
nasty_text = st.lists(st.sampled_from(_PIECES), max_size=8).map("".join)


def values_for(schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped like `schema` (types, enums, bounds), with strings made of `_PIECES`."""
    if not isinstance(schema, dict) or depth > 4:
        return json_scalars
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([values_for(s, depth + 1) for s in schema[key]])
    if schema.get("allOf"):
        return values_for(schema["allOf"][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([values_for({**schema, "type": k}, depth) for k in kind])
    if kind == "string":
        return nasty_text
    if kind == "integer":  # within what orjson parses as an integer: an argument cannot be bigger
        low, high = schema.get("minimum", -(2**63)), schema.get("maximum", 2**64 - 1)
        return st.integers(min_value=max(low, -(2**63)), max_value=min(high, 2**64 - 1))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(values_for(schema.get("items"), depth + 1), max_size=3)
    properties = schema.get("properties")
    if kind == "object" or properties:
        if not properties:
            return st.dictionaries(nasty_text, nasty_text | json_integers, max_size=3)
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: values_for(v, depth + 1) for k, v in properties.items() if k in required},
            optional={k: values_for(v, depth + 1) for k, v in properties.items() if k not in required},
        )
    return json_values


def declared_headers(spec: Path, tool: Tool) -> set[str]:
    """The header and cookie parameter names the spec declares for the tool's operation."""
    uri = source_uri(str(spec), Path)
    documents = Documents(uri)
    item = documents.load(uri)["paths"][tool.path]
    declared = set()
    for param in [*item.get("parameters", []), *item[tool.method.lower()].get("parameters", [])]:
        if "$ref" in param:
            param = documents.resolve(param["$ref"], uri)[0]
        if param.get("in") in ("header", "cookie"):
            declared.add((param["in"], param["name"].lower()))
    return declared


def _cases(specs: list[Path]) -> list[tuple[Path, Tool, Upstream]]:
    cases = []
    for spec in specs:
        raw = {"name": "u", "base_url": BASE_URL, "headers": STATIC_HEADERS, "openapi": {"source": str(spec)}}
        config = parse_config(
            {"groups": [{"name": "g", "upstreams": ["u"], "inbound_auth": {"strategy": "none"}}], "upstreams": [raw]}
        )
        upstream = Upstream(config.upstreams[0], BASE_URL, no_outbound_auth(config.upstreams[0].outbound_auth, config))
        cases += [(spec, tool, upstream) for tool in load(spec, name="u", headers=STATIC_HEADERS).tools]
    return cases


built = {"requests": 0, "with_headers": 0, "with_cookies": 0}


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def check_request_properties(cases: list[tuple[Path, Tool, Upstream]], data: st.DataObject) -> None:
    spec, tool, upstream = data.draw(st.sampled_from(cases), label="tool")
    arguments = data.draw(values_for(tool.input_schema), label="arguments")
    try:
        tool.validate(arguments)
        request = tool.build_request(arguments)  # may refuse too: an empty path parameter, a line break in a header
    except ArgumentError:
        assume(False)
    built["requests"] += 1
    built["with_headers"] += bool({h.lower() for h in request.headers} - {"content-type", "accept"})
    built["with_cookies"] += bool(request.cookies)

    url = upstream.url_for(request)
    assert (url.scheme, url.host, url.port) == ("http", "upstream.test", 8080)
    assert url.raw_path.startswith("/api/v1/") or url.raw_path == "/api/v1", url.raw_path
    assert url.raw_fragment == "" and "#" not in str(url)
    for segment in url.raw_path.split("/"):
        assert unquote(segment) not in ("..", "."), url.raw_path
    assert "?" not in url.raw_path

    declared = declared_headers(spec, tool)
    gateway_own = {"content-type", "accept", "x-gateway"}  # set from the operation and the config, never arguments
    allowed = {name for where, name in declared if where == "header"} | gateway_own
    headers = upstream.headers_for(request)
    for name, value in headers.items():
        assert not any(c in name + value for c in "\r\n\0"), (name, value)
        if name.lower() == "cookie":
            continue
        assert name.lower() in allowed, (name, tool.name, declared)
    assert headers["X-Gateway"] == "mcp-anything", "a declared header never overrides the gateway's own"
    for name, value in request.cookies.items():
        assert ("cookie", name.lower()) in declared
        assert not any(c in value for c in ';, \r\n\0"'), value


@pytest.mark.slow
@pytest.mark.parametrize(
    "specs", [pytest.param(OWN_SPECS, id="own"), pytest.param(CORPUS_SPECS, id="corpus", marks=pytest.mark.corpus)]
)
def test_requests_stay_on_the_upstream_and_declare_every_header(specs: list[Path]) -> None:
    built.update(dict.fromkeys(built, 0))
    check_request_properties(_cases(specs))
    # Guard against passing by rejecting everything: most argument sets must pass validation.
    assert built["requests"] > 500 and built["with_headers"] > 20 and built["with_cookies"] > 20, built
