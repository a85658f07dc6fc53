"""The inbound api_key strategy: configured keys, subjects, constant-time comparison, no key in messages."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.datastructures import Headers

from mcp_anything.config import ConfigError
from mcp_anything.inbound import Authenticator, AuthError, InboundRequest
from tests.support.inbound import authenticator

pytestmark = pytest.mark.anyio


def make(apikey: dict[str, Any], env: dict[str, str] | None = None) -> Authenticator:
    return authenticator({"strategy": "api_key", "api_key": apikey}, env=env)


def request(headers: dict[str, str]) -> InboundRequest:
    return InboundRequest("POST", "/mcp", Headers(headers))


async def test_single_key_from_env() -> None:
    auth = make({"value": "${API_KEY}"}, env={"API_KEY": "k-123456"})
    identity = await auth.authenticate(request({"x-api-key": "k-123456"}))
    assert (identity.strategy, identity.subject, identity.claims) == ("apikey", "apikey-1", {"sub": "apikey-1"})
    assert identity.principal == "apikey:apikey-1"
    assert auth.authorization_servers == []


async def test_list_of_keys_gives_numbered_subjects() -> None:
    auth = make({"values": ["first-key", "second-key"]})
    assert (await auth.authenticate(request({"X-API-Key": "second-key"}))).subject == "apikey-2"
    assert (await auth.authenticate(request({"X-API-Key": "first-key"}))).subject == "apikey-1"


async def test_map_names_become_subjects_and_header_is_configurable() -> None:
    auth = make({"header": "X-Team-Token", "values": {"billing": "bk-1", "search": "sk-2"}})
    assert (await auth.authenticate(request({"x-team-token": "sk-2"}))).subject == "search"
    with pytest.raises(AuthError, match="X-Team-Token"):
        await auth.authenticate(request({"x-api-key": "sk-2"}))


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key: send it in the X-API-Key header"),
        ({"x-api-key": ""}, "missing API key"),
        ({"x-api-key": "first-key "}, "not valid"),
        ({"x-api-key": "first-ke"}, "not valid"),
        ({"x-api-key": "FIRST-KEY"}, "not valid"),
        ({"authorization": "Bearer first-key"}, "missing API key"),
    ],
)
async def test_wrong_or_missing_key_is_401_without_echoing_it(
    headers: dict[str, str], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    auth = make({"values": ["first-key", "second-key"]})
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as caught:
        await auth.authenticate(request(headers))
    assert (caught.value.status, caught.value.error) == (401, "invalid_token")
    assert message in caught.value.description
    for secret in ("first-key", "second-key", "first-ke"):
        assert secret not in caught.value.description
        assert secret not in caplog.text


async def test_every_key_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    import mcp_anything.inbound.api_key as apikey

    auth = make({"values": ["k1-aaaa", "k2-bbbb", "k3-cccc"]})
    calls: list[bool] = []
    real = apikey.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(real(a, b))
        return calls[-1]

    monkeypatch.setattr(apikey.hmac, "compare_digest", counting)
    await auth.authenticate(request({"x-api-key": "k1-aaaa"}))
    assert calls == [True, False, False]  # a match on the first key does not stop the loop


@pytest.mark.parametrize(
    ("apikey", "problem"),
    [
        ({}, "set exactly one of `value` or `values`"),
        ({"value": "a", "values": ["b"]}, "set exactly one of `value` or `values`"),
        ({"values": []}, "at least one key"),
        ({"values": {"a": "same", "b": "same"}}, "two API keys are the same"),
        ({"value": "${EMPTY}"}, "cannot be empty"),
        ({"value": "k", "headr": "X"}, "unknown key"),
    ],
)
def test_config_problems(apikey: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make(apikey, env={"EMPTY": ""})
    assert problem in str(caught.value)
    assert "same" not in str(caught.value).replace("are the same", "")  # the key itself is never echoed
