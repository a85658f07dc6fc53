"""The shared outbound HTTP stack (`mcp_anything.http_client`) against real servers on 127.0.0.1:
compressed bodies capped by their inflated size, redirects and where credentials may go."""

from __future__ import annotations

import math
import resource
import struct
import time
import zlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from mcp_anything.config import (
    ClientCredentialsConfig,
    ConfigError,
    IntrospectionConfig,
    JwtConfig,
    parse_config,
)
from mcp_anything.http_client import HttpPolicy
from mcp_anything.http_client.policy import Hop, next_hop
from mcp_anything.inbound import AuthError, InboundRequest
from mcp_anything.inbound.introspection import IntrospectionAuthenticator
from mcp_anything.inbound.jwt import JwtAuthenticator
from mcp_anything.openapi.loader import load_upstream_tools
from mcp_anything.outbound import OutboundAuthError
from mcp_anything.outbound.client_credentials import BACKOFF_FIRST, MAX_RESPONSE_BYTES, ClientCredentialsAuth
from mcp_anything.outbound.script import Fetcher
from mcp_anything.scripting import LUA, ScriptError, set_deadline
from mcp_anything.tools import HttpRequest
from tests.support.clock import FakeClock
from tests.support.servers import ServerThread

pytestmark = pytest.mark.anyio

# A JWT with a `kid`: enough for the authenticator to ask the JWKS for keys.
UNSIGNED_JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln"
INFLATED = 3 << 29  # 1.5 GiB of zeros...
_PIECE = 1 << 20


@cache
def gzip_bomb() -> bytes:
    """...as a gzip body of about 1.5 MB: one fully flushed MiB of deflate output, repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    piece = compressor.compress(bytes(_PIECE)) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    zeros = bytes(_PIECE)
    for _ in range(INFLATED // _PIECE):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    final = b"\x03\x00"  # an empty final fixed-Huffman block
    return header + piece * (INFLATED // _PIECE) + final + struct.pack("<II", crc, INFLATED & 0xFFFFFFFF)


class Server:
    """Answers every request with `status`, `headers` and `body`, sent in 64 KiB pieces; records requests."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.requests.append((scope["path"], {k.decode(): v.decode() for k, v in scope["headers"]}))
        headers = [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        for offset in range(0, len(self.body), 1 << 16):
            await send(
                {"type": "http.response.body", "body": self.body[offset : offset + (1 << 16)], "more_body": True}
            )
        await send({"type": "http.response.body", "body": b""})


def serve(server: Server) -> ServerThread:
    return ServerThread(server, lifespan="off")


def test_the_bomb_is_what_it_says() -> None:
    body = gzip_bomb()
    assert 1_400_000 < len(body) < 1_700_000
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    assert inflater.decompress(body, 1 << 20) == bytes(1 << 20)  # a valid gzip stream of zeros


async def test_a_token_endpoint_gzip_bomb_is_refused_at_the_cap_and_backed_off() -> None:
    bomb = Server(headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, body=gzip_bomb())
    clock = FakeClock()
    with serve(bomb) as running:
        config = ClientCredentialsConfig(
            token_url=running.url + "/token", client_id="gateway", client_secret="bomb-test-secret"
        )
        auth = ClientCredentialsAuth(config, clock=clock.monotonic)
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            with pytest.raises(OutboundAuthError, match=f"larger than {MAX_RESPONSE_BYTES} bytes"):
                await auth.apply(HttpRequest("GET", "/x"))
            grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
            assert grown_mb < 100, f"peak resident size grew {grown_mb:.0f} MB"
            # The failure is remembered: calls within the backoff fail at once, without a request.
            clock.advance(BACKOFF_FIRST / 2)
            with pytest.raises(OutboundAuthError, match="next attempt in"):
                await auth.apply(HttpRequest("GET", "/x"))
            assert len(bomb.requests) == 1
            clock.advance(BACKOFF_FIRST)
            with pytest.raises(OutboundAuthError, match="larger than"):
                await auth.apply(HttpRequest("GET", "/x"))
            assert len(bomb.requests) == 2
        finally:
            await auth.aclose()


async def test_identity_provider_answers_are_capped_by_their_inflated_size(caplog: pytest.LogCaptureFixture) -> None:
    bomb = Server(headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, body=gzip_bomb())
    with serve(bomb) as running:
        jwks = JwtAuthenticator(JwtConfig(issuer="https://issuer.example", jwks_url=running.url + "/jwks"))
        introspection = IntrospectionAuthenticator(
            IntrospectionConfig(endpoint=running.url + "/introspect", client_id="gateway", client_secret="secret-1")
        )
        request = InboundRequest("POST", "/mcp", Headers({"authorization": f"Bearer {UNSIGNED_JWT}"}))
        try:
            for authenticator in (jwks, introspection):
                with pytest.raises(AuthError) as refused:
                    await authenticator.authenticate(request)
                assert refused.value.status == 503
        finally:
            await jwks.aclose()
            await introspection.aclose()
    assert "returned more than 1048576 bytes" in caplog.text  # the JWKS
    assert "did not return a JSON object of at most 262144 bytes" in caplog.text  # introspection


def test_a_script_fetch_is_capped_by_the_inflated_size() -> None:
    bomb = Server(headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, body=gzip_bomb())
    fetch = Fetcher(["127.0.0.1"], max_body=1 << 20, language=LUA)
    set_deadline(time.monotonic() + 30)
    try:
        with serve(bomb) as running, pytest.raises(ScriptError, match="larger than memory_limit_mb"):
            fetch(running.url + "/token")
    finally:
        set_deadline(math.inf)
        fetch.close()


@pytest.fixture
def two_origins() -> Iterator[tuple[Server, str, Server, str]]:
    """A spec host and another origin (another port on 127.0.0.1) that serves the spec too."""
    spec = (Path(__file__).parent / "specs" / "echo.yaml").read_bytes()
    other = Server(headers={"Content-Type": "application/yaml"}, body=spec)
    with serve(other) as other_running:
        home = Server(status=302, headers={"Location": other_running.url + "/moved.yaml"})
        with serve(home) as home_running:
            yield home, home_running.url, other, other_running.url


def load(source: str, tmp_path: Path) -> None:
    raw = {
        "groups": [{"name": "g", "upstreams": ["api"], "inbound_auth": {"strategy": "none"}}],
        "upstreams": [
            {
                "name": "api",
                "base_url": "http://127.0.0.1:9",
                "openapi": {"source": source, "headers": {"Authorization": "Bearer ${SPEC_TOKEN}", "X-Key": "k3y"}},
            }
        ],
    }
    config = parse_config(raw, base_dir=tmp_path, env={"SPEC_TOKEN": "spec-s3cret"})
    load_upstream_tools(config.upstreams[0], config, "upstreams[0]")


def test_spec_credentials_never_follow_a_redirect_to_another_origin(
    two_origins: tuple[Server, str, Server, str], tmp_path: Path
) -> None:
    home, home_url, other, _ = two_origins
    load(home_url + "/openapi.yaml", tmp_path)  # the redirect is followed: the spec loads
    [(_, sent_home)] = home.requests
    assert sent_home["authorization"] == "Bearer spec-s3cret"
    assert sent_home["x-key"] == "k3y"
    [(path, sent_other)] = other.requests
    assert path == "/moved.yaml"
    assert "authorization" not in sent_other
    assert "x-key" not in sent_other


def test_spec_credentials_follow_a_redirect_within_their_origin(tmp_path: Path) -> None:
    spec = (Path(__file__).parent / "specs" / "echo.yaml").read_bytes()
    server = Server(headers={"Content-Type": "application/yaml"}, body=spec)

    async def moved_then_served(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/openapi.yaml":
            server.requests.append((scope["path"], {k.decode(): v.decode() for k, v in scope["headers"]}))
            await send({"type": "http.response.start", "status": 301, "headers": [(b"location", b"/v2/openapi.yaml")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await server(scope, receive, send)

    with ServerThread(moved_then_served, lifespan="off") as running:
        load(running.url + "/openapi.yaml", tmp_path)
    assert [path for path, _ in server.requests] == ["/openapi.yaml", "/v2/openapi.yaml"]
    assert all(sent["authorization"] == "Bearer spec-s3cret" for _, sent in server.requests)


def test_a_spec_bomb_is_refused_by_its_inflated_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_anything.openapi import documents

    monkeypatch.setattr(documents, "_FETCH_POLICY", HttpPolicy(timeout=10, max_body=1 << 20))
    bomb = Server(headers={"Content-Type": "application/yaml", "Content-Encoding": "gzip"}, body=gzip_bomb())
    with serve(bomb) as running, pytest.raises(ConfigError, match="larger than"):
        load(running.url + "/openapi.yaml", tmp_path)


POLICY = HttpPolicy(timeout=1, max_body=1, max_redirects=2)


@pytest.mark.parametrize(
    ("url", "location", "credentials_sent"),
    [
        ("https://api.example.com/a", "/b", True),  # same origin
        ("https://api.example.com/a", "https://api.example.com:443/b", True),  # the default port written out
        ("https://api.example.com/a", "https://API.example.com/b", True),  # host names are case-insensitive
        ("https://api.example.com/a", "http://api.example.com/b", False),  # a downgrade is another origin
        ("https://api.example.com/a", "https://api.example.com:8443/b", False),
        ("https://api.example.com/a", "https://evil.example.com/b", False),
        ("https://api.example.com/a", "//evil.example.com/b", False),
    ],
)
def test_credentials_go_to_their_origin_only(url: str, location: str, credentials_sent: bool) -> None:
    hop = Hop("GET", url, {"Accept": "*/*", "Cookie": "c=1"}, {"Authorization": "Bearer t"})
    following = next_hop(POLICY, hop, 302, location)
    assert following is not None
    sent = following.headers_to_send()
    assert ("Authorization" in sent) is credentials_sent
    assert ("Cookie" in sent) is credentials_sent  # a credential whoever set it
    assert sent["Accept"] == "*/*"


def test_which_responses_are_followed() -> None:
    get = Hop("GET", "https://a.example/x", {})
    assert next_hop(POLICY, get, 200, "/y") is None
    assert next_hop(POLICY, get, 302, None) is None
    assert next_hop(POLICY, get, 302, "file:///etc/passwd") is None
    assert next_hop(POLICY, Hop("POST", "https://a.example/x", {}), 307, "/y") is None  # a body is never resent
    assert next_hop(HttpPolicy(timeout=1, max_body=1), get, 302, "/y") is None  # max_redirects 0: the answer
    second = next_hop(POLICY, get, 302, "/y")
    assert second is not None
    third = next_hop(POLICY, second, 302, "/z")
    assert third is not None and third.url == "https://a.example/z"
    assert next_hop(POLICY, third, 302, "/w") is None  # the third redirect is the answer
