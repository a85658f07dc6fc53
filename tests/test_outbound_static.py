"""Static outbound credentials: `bearer` and `api_key`, and their config checks."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_anything.config import Config, ConfigError, parse_config
from mcp_anything.outbound import OutboundAuth, create_outbound_auth
from mcp_anything.tools import HttpRequest

pytestmark = pytest.mark.anyio

SECRET = "k3y-Value_0123456789"


def config_with(outbound_auth: dict[str, Any], secret: str = SECRET, **upstream_settings: Any) -> Config:
    upstream = {"name": "api", "openapi": {"source": "api.yaml"}, "outbound_auth": outbound_auth, **upstream_settings}
    return parse_config(
        {
            "groups": [{"name": "g", "upstreams": ["api"], "inbound_auth": {"strategy": "none"}}],
            "upstreams": [upstream],
        },
        env={"UPSTREAM_SECRET": secret},
    )


def auth_for(outbound_auth: dict[str, Any]) -> OutboundAuth:
    config = config_with(outbound_auth)
    return create_outbound_auth(config.upstreams[0].outbound_auth, config)


async def applied(auth: OutboundAuth, request: HttpRequest) -> HttpRequest:
    await auth.apply(request)
    return request


async def test_bearer_sets_authorization_over_any_the_arguments_set() -> None:
    auth = auth_for({"strategy": "bearer", "bearer": {"token": "${UPSTREAM_SECRET}"}})
    request = await applied(auth, HttpRequest("GET", "/pets", headers={"authorization": "x", "Accept": "a/b"}))
    assert request.headers == {"Accept": "a/b", "Authorization": f"Bearer {SECRET}"}
    assert await auth.refresh() is False  # a retry with the same static token cannot succeed


async def test_api_key_in_a_header_replaces_a_declared_header_parameter_of_any_case() -> None:
    auth = auth_for({"strategy": "api_key", "api_key": {"header": "X-API-Key", "value": "${UPSTREAM_SECRET}"}})
    request = await applied(auth, HttpRequest("GET", "/pets", headers={"x-api-key": "caller's"}))
    assert request.headers == {"X-API-Key": SECRET}
    assert request.query == []
    assert await auth.refresh() is False


async def test_api_key_in_the_query_replaces_a_parameter_of_that_name_in_any_case_only() -> None:
    auth = auth_for({"strategy": "api_key", "api_key": {"query": "api_key", "value": "${UPSTREAM_SECRET}"}})
    query = [("api_key", "caller's"), ("API_KEY", "caller's too"), ("limit", "5"), ("api_keys", "x")]
    request = await applied(auth, HttpRequest("GET", "/pets", query=query))
    assert request.query == [("limit", "5"), ("api_keys", "x"), ("api_key", SECRET)]
    assert request.headers == {}


@pytest.mark.parametrize(
    "outbound_auth",
    [
        {"strategy": "bearer", "bearer": {"token": "${UPSTREAM_SECRET}"}},
        {"strategy": "api_key", "api_key": {"header": "X-API-Key", "value": "${UPSTREAM_SECRET}"}},
        {"strategy": "api_key", "api_key": {"query": "key", "value": "${UPSTREAM_SECRET}"}},
    ],
)
def test_repr_of_the_strategy_and_its_config_never_shows_the_secret(outbound_auth: dict[str, Any]) -> None:
    config = config_with(outbound_auth)
    auth = create_outbound_auth(config.upstreams[0].outbound_auth, config)
    assert SECRET not in repr(auth)
    assert "**********" in repr(auth)
    assert SECRET not in repr(config)
    assert SECRET not in str(config.model_dump())


@pytest.mark.parametrize(
    ("outbound_auth", "secret", "problem"),
    [
        (
            {"strategy": "bearer", "bearer": {"token": "${UPSTREAM_SECRET}"}},
            "s3cret-from-a-file\n",
            "upstreams[0].outbound_auth.bearer.token: must be printable ASCII, no line breaks or surrounding spaces",
        ),
        (
            {"strategy": "api_key", "api_key": {"header": "X-API-Key", "value": "${UPSTREAM_SECRET}"}},
            "",
            "upstreams[0].outbound_auth.api_key.value: must be printable ASCII",
        ),
        (
            {"strategy": "api_key", "api_key": {"header": "X API Key", "value": "${UPSTREAM_SECRET}"}},
            SECRET,
            "upstreams[0].outbound_auth.api_key.header: not a valid HTTP header name: 'X API Key'",
        ),
        (
            {"strategy": "api_key", "api_key": {"header": "Host", "value": "${UPSTREAM_SECRET}"}},
            SECRET,
            "upstreams[0].outbound_auth.api_key.header: 'Host' is set by the gateway",
        ),
        (
            {"strategy": "api_key", "api_key": {"header": "X-Key", "query": "key", "value": "${UPSTREAM_SECRET}"}},
            SECRET,
            "upstreams[0].outbound_auth.api_key: set exactly one of `header` or `query`",
        ),
        (
            {"strategy": "api_key", "api_key": {"header": "X-Key", "value": "${UPSTREAM_SECRET}", "prefix": "x"}},
            SECRET,
            "upstreams[0].outbound_auth.api_key.prefix: unknown key",
        ),
        (
            {"strategy": "bearer", "api_key": {"header": "X-Key", "value": "${UPSTREAM_SECRET}"}},
            SECRET,
            "upstreams[0].outbound_auth: strategy 'bearer' needs a `bearer:` block",
        ),
        (
            {
                "strategy": "oauth2_client_credentials",
                "oauth2_client_credentials": {
                    "token_url": "https://auth.example.com/token",
                    "client_id": "gw",
                    "client_secret": "${UPSTREAM_SECRET}",
                    "scopes": ["read:data write:data"],
                },
            },
            SECRET,
            "oauth2_client_credentials.scopes: item 0, 'read:data write:data', is not one scope",
        ),
        (
            {
                "strategy": "oauth2_client_credentials",
                "oauth2_client_credentials": {
                    "token_url": "auth.example.com/token",
                    "client_id": "gw",
                    "client_secret": "${UPSTREAM_SECRET}",
                },
            },
            SECRET,
            "oauth2_client_credentials.token_url: expected an http(s) URL, got 'auth.example.com/token'",
        ),
        (
            {
                "strategy": "oauth2_client_credentials",
                "oauth2_client_credentials": {
                    "token_url": "https://auth.example.com/token",
                    "client_id": "gw",
                    "client_secret": "${UPSTREAM_SECRET}",
                    "auth_method": "private_key_jwt",
                },
            },
            SECRET,
            "oauth2_client_credentials.auth_method: Input should be 'client_secret_basic' or 'client_secret_post'",
        ),
    ],
)
def test_config_mistakes_name_the_key_and_never_echo_the_secret(
    outbound_auth: dict[str, Any], secret: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as error:
        config_with(outbound_auth, secret)
    assert any(line.startswith(problem) or problem in line for line in error.value.problems), error.value.problems
    if secret:
        assert secret.strip() not in str(error.value)


@pytest.mark.parametrize(
    ("outbound_auth", "headers"),
    [
        ({"strategy": "bearer", "bearer": {"token": "${UPSTREAM_SECRET}"}}, {"authorization": "Basic x"}),
        ({"strategy": "api_key", "api_key": {"header": "X-Key", "value": "${UPSTREAM_SECRET}"}}, {"x-key": "k"}),
    ],
)
def test_a_static_header_may_not_also_carry_the_outbound_credential(
    outbound_auth: dict[str, Any], headers: dict[str, str]
) -> None:
    with pytest.raises(ConfigError) as error:
        config_with(outbound_auth, headers=headers)
    [problem] = error.value.problems
    assert problem.startswith("upstreams[0]: `headers` sets ")
    assert "which outbound_auth" in problem and "keep the credential in outbound_auth only" in problem
