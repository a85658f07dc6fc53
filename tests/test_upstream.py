"""`upstream.Upstream` request assembly: static headers and the copy kept for a retry with new credentials."""

from __future__ import annotations

from mcp_anything import upstream
from mcp_anything.config import parse_config
from mcp_anything.outbound.none import create as no_outbound_auth
from mcp_anything.outbound.registry import STRATEGIES
from mcp_anything.tools import HttpRequest


def _upstream(headers: dict[str, str]) -> upstream.Upstream:
    raw = {"name": "u", "base_url": "http://u.test", "headers": headers, "openapi": {"source": "unused.yaml"}}
    config = parse_config(
        {"groups": [{"name": "g", "upstreams": ["u"], "inbound_auth": {"strategy": "none"}}], "upstreams": [raw]}
    )
    u = config.upstreams[0]
    return upstream.Upstream(u, "http://u.test", no_outbound_auth(u.outbound_auth, config))


def test_a_static_header_replaces_the_requests_own_header_whatever_its_case() -> None:
    u = _upstream({"accept": "application/xml", "X-Gateway": "mcp-anything"})
    request = HttpRequest("GET", "/items", headers={"Accept": "application/json", "X-Other": "1"}, cookies={"c": "v"})
    headers = u.headers_for(request)
    assert sorted((k.lower(), v) for k, v in headers.items()) == [
        ("accept", "application/xml"),
        ("cookie", "c=v"),
        ("x-gateway", "mcp-anything"),
        ("x-other", "1"),
    ]


def test_without_static_headers_or_cookies_the_request_headers_go_as_they_are() -> None:
    request = HttpRequest("GET", "/items", headers={"Accept": "application/json"})
    assert _upstream({}).headers_for(request) is request.headers


def test_the_strategies_that_may_retry_with_new_credentials_are_real_strategies() -> None:
    assert set(STRATEGIES) >= upstream._REFRESHING_STRATEGIES
