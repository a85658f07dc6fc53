"""OAuth2 client credentials against a real token endpoint (oauth2-mock-server, tests/support/idp.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import pytest

from mcp_anything.config import ClientCredentialsConfig, parse_config
from mcp_anything.outbound import OutboundAuth, OutboundAuthError, create_outbound_auth
from mcp_anything.outbound.client_credentials import BACKOFF_FIRST, ClientCredentialsAuth
from mcp_anything.tools import HttpRequest
from tests.support.clock import FakeClock
from tests.support.idp import IdP

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.node]

CLIENT_ID = "gateway"
# Every character RFC 6749 §2.3.1 makes the client form-urlencode, and one outside ASCII.
SECRET = "s3cr%41t+/:= é~"
BASIC = base64.b64encode(f"{CLIENT_ID}:{quote(SECRET, safe='')}".encode()).decode()

Factory = Callable[..., OutboundAuth]


@pytest.fixture(autouse=True)
def _idp_knows_the_client(idp: IdP) -> None:
    idp.configure(clients={CLIENT_ID: SECRET})


@pytest.fixture
async def make_auth(idp: IdP) -> AsyncIterator[Factory]:
    """Builds the strategy the way the gateway does: YAML shape, ${ENV} secret, registry."""
    created: list[OutboundAuth] = []

    def factory(clock: FakeClock | None = None, **settings: Any) -> OutboundAuth:
        block = {"token_url": idp.token_url, "client_id": CLIENT_ID, "client_secret": "${CLIENT_SECRET}", **settings}
        upstream = {
            "name": "api",
            "openapi": {"source": "api.yaml"},
            "outbound_auth": {"strategy": "oauth2_client_credentials", "oauth2_client_credentials": block},
        }
        config = parse_config(
            {
                "groups": [{"name": "g", "upstreams": ["api"], "inbound_auth": {"strategy": "none"}}],
                "upstreams": [upstream],
            },
            env={"CLIENT_SECRET": SECRET},
        )
        auth: OutboundAuth
        if clock is None:
            auth = create_outbound_auth(config.upstreams[0].outbound_auth, config)
        else:
            block_config = config.upstreams[0].outbound_auth.oauth2_client_credentials
            assert block_config is not None
            auth = ClientCredentialsAuth(block_config, clock=clock.monotonic)
        created.append(auth)
        return auth

    yield factory
    for auth in created:
        await auth.aclose()


async def authorization(auth: OutboundAuth) -> str:
    request = HttpRequest("GET", "/pets")
    await auth.apply(request)
    return request.headers["Authorization"]


def claims(authorization_header: str) -> dict[str, Any]:
    payload = authorization_header.removeprefix("Bearer ").split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def assert_no_secret(text: str) -> None:
    for secret in (SECRET, quote(SECRET, safe=""), BASIC):
        assert secret not in text


async def test_first_use_fetches_a_token_with_basic_auth_scopes_and_audience(idp: IdP, make_auth: Factory) -> None:
    auth = make_auth(scopes=["read:data", "write:data"], audience="https://api.example.com")
    assert idp.requests("/token") == []  # nothing is fetched at startup

    header = await authorization(auth)

    assert header.startswith("Bearer ")
    assert claims(header)["iss"] == idp.issuer
    assert claims(header)["client_id"] == CLIENT_ID
    [token_request] = idp.requests("/token")
    assert token_request["auth_method"] == "client_secret_basic"
    assert token_request["client_id"] == CLIENT_ID
    assert token_request["form"] == {
        "grant_type": "client_credentials",
        "scope": "read:data write:data",
        "audience": "https://api.example.com",
        "resource": "https://api.example.com",
    }


async def test_client_secret_post_sends_the_credentials_in_the_form(idp: IdP, make_auth: Factory) -> None:
    auth = make_auth(auth_method="client_secret_post")
    await authorization(auth)
    [token_request] = idp.requests("/token")
    assert token_request["auth_method"] == "client_secret_post"
    assert token_request["form"] == {"grant_type": "client_credentials", "client_id": CLIENT_ID}


async def test_the_token_is_cached_and_replaces_any_authorization_the_arguments_set(
    idp: IdP, make_auth: Factory
) -> None:
    auth = make_auth()
    first = await authorization(auth)
    for _ in range(50):
        request = HttpRequest("GET", "/pets", headers={"authorization": "Bearer from-an-argument"})
        await auth.apply(request)
        assert request.headers == {"Authorization": first}
    assert len(idp.requests("/token")) == 1


async def test_a_token_is_refreshed_before_it_expires(idp: IdP, make_auth: Factory) -> None:
    idp.configure(expires_in=2)
    # A 30 s skew on a 2 s token: the token is still used for half its life, then replaced.
    clock = FakeClock()
    auth = make_auth(clock, refresh_skew="30s")
    first = await authorization(auth)
    assert await authorization(auth) == first
    assert len(idp.requests("/token")) == 1

    clock.advance(1.1)
    second = await authorization(auth)

    assert second != first
    assert len(idp.requests("/token")) == 2
    assert await authorization(auth) == second


async def test_a_token_due_for_renewal_is_used_while_the_endpoint_fails_until_it_expires(
    idp: IdP, make_auth: Factory
) -> None:
    idp.configure(expires_in=2)
    clock = FakeClock()
    auth = make_auth(clock, refresh_skew="1s")
    first = await authorization(auth)
    idp.fail("/token", 503, {"error": "temporarily_unavailable"})

    clock.advance(1.1)  # due for renewal, not yet expired
    assert await authorization(auth) == first
    assert len(idp.requests("/token")) == 2  # the renewal was tried

    clock.advance(1.0)  # expired
    with pytest.raises(OutboundAuthError, match="temporarily_unavailable"):
        await authorization(auth)


async def test_refresh_drops_a_token_the_upstream_refused_even_while_the_endpoint_fails(
    idp: IdP, make_auth: Factory
) -> None:
    auth = make_auth()
    await authorization(auth)
    idp.fail("/token", 503, {"error": "temporarily_unavailable"})

    assert await auth.refresh() is True
    with pytest.raises(OutboundAuthError, match="temporarily_unavailable"):
        await authorization(auth)


async def test_100_concurrent_calls_without_a_token_make_one_token_request(idp: IdP, make_auth: Factory) -> None:
    idp.configure(faults={"/token": {"delay_ms": 300}})  # the real answer, late: every caller arrives first
    auth = make_auth()

    headers = await asyncio.gather(*(authorization(auth) for _ in range(100)))

    assert len(set(headers)) == 1
    assert len(idp.requests("/token")) == 1


async def test_a_cancelled_caller_does_not_cancel_the_fetch_others_wait_on(idp: IdP, make_auth: Factory) -> None:
    idp.configure(faults={"/token": {"delay_ms": 300}})
    auth = make_auth()
    impatient = asyncio.create_task(authorization(auth))
    patient = asyncio.create_task(authorization(auth))
    await asyncio.sleep(0)  # both are now waiting on the one fetch
    impatient.cancel()

    assert (await patient).startswith("Bearer ")
    assert impatient.cancelled()
    assert len(idp.requests("/token")) == 1


async def test_refresh_after_an_upstream_401_fetches_a_new_token_for_the_retry(idp: IdP, make_auth: Factory) -> None:
    auth = make_auth()
    refused = await authorization(auth)

    assert await auth.refresh() is True
    retried = await authorization(auth)

    assert retried != refused
    assert len(idp.requests("/token")) == 2
    assert await authorization(auth) == retried  # the new token is cached in turn


async def test_refresh_while_a_token_is_being_fetched_does_not_fetch_another(idp: IdP, make_auth: Factory) -> None:
    idp.configure(faults={"/token": {"delay_ms": 300}})
    auth = make_auth()
    waiting = asyncio.create_task(authorization(auth))
    await asyncio.sleep(0)  # the fetch has started

    assert await auth.refresh() is True
    header = await waiting

    assert await authorization(auth) == header
    assert len(idp.requests("/token")) == 1


async def test_token_endpoint_errors_carry_the_oauth_error_and_never_the_secret(
    idp: IdP, make_auth: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    idp.configure(clients={CLIENT_ID: "the-secret-the-idp-expects"})
    auth = make_auth()

    with pytest.raises(OutboundAuthError) as failure:
        await authorization(auth)

    message = str(failure.value)
    assert f"OAuth2 token request to {idp.token_url} for client '{CLIENT_ID}' failed" in message
    assert "invalid_client: client authentication failed (HTTP 401)" in message
    assert_no_secret(message)
    assert "invalid_client" in caplog.text
    assert_no_secret(caplog.text)


async def test_an_endpoint_that_echoes_the_secret_does_not_get_it_into_the_message(
    idp: IdP, make_auth: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    idp.fail("/token", 400, {"error": "invalid_request", "error_description": f"bad secret {SECRET} ({BASIC})"})
    auth = make_auth()
    with pytest.raises(OutboundAuthError, match=r"invalid_request: bad secret \*+ \(\*+\)") as failure:
        await authorization(auth)
    assert_no_secret(str(failure.value))
    assert_no_secret(caplog.text)


async def test_success_logs_name_the_client_never_the_token(
    make_auth: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    header = await authorization(make_auth())
    assert f"OAuth2 token for client '{CLIENT_ID}'" in caplog.text
    assert header.removeprefix("Bearer ") not in caplog.text
    assert_no_secret(caplog.text)


async def test_a_failing_endpoint_is_backed_off_then_used_again(idp: IdP, make_auth: Factory) -> None:
    idp.fail("/token", 503, {"error": "temporarily_unavailable", "error_description": "down for maintenance"})
    clock = FakeClock()
    auth = make_auth(clock)

    with pytest.raises(OutboundAuthError, match=r"temporarily_unavailable: down for maintenance \(HTTP 503\)"):
        await authorization(auth)
    # During the backoff the last error comes back, without another token request.
    with pytest.raises(OutboundAuthError, match=r"down for maintenance .*next attempt in 0\.5s"):
        await authorization(auth)
    assert len(idp.requests("/token")) == 1

    clock.advance(BACKOFF_FIRST)
    with pytest.raises(OutboundAuthError, match="down for maintenance"):
        await authorization(auth)
    # The second failure doubles the wait.
    with pytest.raises(OutboundAuthError, match=r"next attempt in 1\.0s"):
        await authorization(auth)
    assert len(idp.requests("/token")) == 2

    idp.reset()
    idp.configure(clients={CLIENT_ID: SECRET})
    clock.advance(2 * BACKOFF_FIRST)
    assert (await authorization(auth)).startswith("Bearer ")
    # Success resets the backoff: a later failure waits the first delay again.
    idp.fail("/token", 503, {"error": "temporarily_unavailable"})
    await auth.refresh()
    with pytest.raises(OutboundAuthError, match=r"temporarily_unavailable \(HTTP 503\)"):
        await authorization(auth)
    with pytest.raises(OutboundAuthError, match=r"next attempt in 0\.5s"):
        await authorization(auth)


async def test_an_unreachable_endpoint_fails_then_recovers(idp: IdP, make_auth: Factory) -> None:
    clock = FakeClock()
    auth = make_auth(clock)
    with idp.outage(), pytest.raises(OutboundAuthError, match=f"request to {idp.token_url} .*failed: Client"):
        await authorization(auth)
    clock.advance(BACKOFF_FIRST)
    assert (await authorization(auth)).startswith("Bearer ")


async def test_a_slow_endpoint_times_out(idp: IdP, make_auth: Factory) -> None:
    idp.configure(faults={"/token": {"delay_ms": 2000}})
    auth = make_auth(timeout="300ms")
    with pytest.raises(OutboundAuthError, match=r"failed: no answer within 0.3s"):
        await authorization(auth)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (502, {}, "HTTP 502 without an OAuth error code"),
        (307, {}, "HTTP 307 without an OAuth error code"),  # a redirect is not followed with the secret
        (503, "<html>busy</html>", "HTTP 503, and the body is not a JSON object"),
        (200, {"token_type": "Bearer"}, "no usable access_token"),
        (200, {"access_token": "a\nb", "token_type": "Bearer"}, "no usable access_token"),
        (200, {"access_token": "abc", "token_type": "DPoP"}, "token_type 'DPoP' is not supported"),
        (200, {"access_token": "abc", "token_type": "Bearer", "expires_in": "soon"}, "expires_in 'soon' is not"),
        (200, {"access_token": "abc", "token_type": "Bearer", "expires_in": -5}, "expires_in '-5' is not"),
    ],
)
async def test_responses_that_are_not_a_usable_token_are_errors(
    idp: IdP, make_auth: Factory, status: int, body: Any, expected: str
) -> None:
    idp.fail("/token", status, body)
    with pytest.raises(OutboundAuthError, match=expected):
        await authorization(make_auth())


async def test_expires_in_as_a_string_and_lower_case_bearer_are_accepted(idp: IdP, make_auth: Factory) -> None:
    idp.fail("/token", 200, {"access_token": "opaque-token", "token_type": "bearer", "expires_in": "60"})
    assert await authorization(make_auth()) == "Bearer opaque-token"


async def test_without_expires_in_the_token_is_kept_until_the_upstream_refuses_it(idp: IdP, make_auth: Factory) -> None:
    idp.fail("/token", 200, {"access_token": "opaque-token", "token_type": "Bearer"})
    auth = make_auth()
    assert await authorization(auth) == "Bearer opaque-token"
    assert await authorization(auth) == "Bearer opaque-token"
    assert len(idp.requests("/token")) == 1
    await auth.refresh()
    await authorization(auth)
    assert len(idp.requests("/token")) == 2


def test_repr_names_the_endpoint_and_client_but_never_the_secret() -> None:
    config = ClientCredentialsConfig(
        token_url="https://user:pw@auth.example.com/oauth/token?key=k", client_id=CLIENT_ID, client_secret=SECRET
    )
    text = repr(ClientCredentialsAuth(config))
    assert text == "ClientCredentialsAuth(token_url='https://auth.example.com/oauth/token', client_id='gateway')"
    assert_no_secret(repr(config))
