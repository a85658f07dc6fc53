"""`oauth2_client_credentials.cache: redis://...`: replicas share one token, with a real Redis and a real token
endpoint (oauth2-mock-server), and real gateways calling the recording upstream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import coredis
import pytest

from mcp_anything.config import ConfigError, parse_config
from mcp_anything.outbound import OutboundAuth, create_outbound_auth
from mcp_anything.tools import HttpRequest
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.idp import IdP
from tests.support.mcp import mcp_client
from tests.support.redis import redis_server
from tests.support.servers import free_port
from tests.support.upstream import RecordingUpstream

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.node, pytest.mark.redis]

CLIENT_ID = "gateway"
SECRET = "a-client-secret"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(autouse=True)
def _idp_knows_the_client(idp: IdP) -> None:
    idp.configure(clients={CLIENT_ID: SECRET})


def credentials(idp: IdP, cache: str, secret: str = "${CLIENT_SECRET}") -> dict[str, Any]:
    block = {"token_url": idp.token_url, "client_id": CLIENT_ID, "client_secret": secret, "cache": cache}
    return {"strategy": "oauth2_client_credentials", "oauth2_client_credentials": block}


def replica(idp: IdP, cache: str, secret: str = SECRET) -> OutboundAuth:
    """The outbound auth one replica builds from the config."""
    upstream = {"name": "api", "openapi": {"source": "api.yaml"}, "outbound_auth": credentials(idp, cache)}
    config = parse_config(
        {
            "groups": [{"name": "g", "upstreams": ["api"], "inbound_auth": {"strategy": "none"}}],
            "upstreams": [upstream],
        },
        env={"CLIENT_SECRET": secret},
    )
    return create_outbound_auth(config.upstreams[0].outbound_auth, config)


async def authorization(auth: OutboundAuth) -> str:
    request = HttpRequest("GET", "/pets")
    await auth.apply(request)
    return request.headers["Authorization"]


async def flush(redis_url: str) -> None:
    client = coredis.Redis.from_url(redis_url)
    await client.flushdb()
    client.connection_pool.disconnect()


async def test_two_gateways_share_one_token_request(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, idp: IdP, redis_url: str
) -> None:
    await flush(redis_url)
    upstream.clear()
    idp.configure(clients={CLIENT_ID: SECRET}, faults={"/token": {"delay_ms": 300}})  # both ask while it is slow
    raw = echo_config(upstream_url, outbound_auth=credentials(idp, redis_url))
    with gateway(raw, env={"CLIENT_SECRET": SECRET}) as first, gateway(raw, env={"CLIENT_SECRET": SECRET}) as second:
        async with mcp_client(first + "/mcp") as one, mcp_client(second + "/mcp") as other:
            results = await asyncio.gather(
                *(client.call_tool("echo_get_item", {"itemId": str(i)}) for i in range(5) for client in (one, other))
            )
    assert [r.is_error for r in results] == [False] * 10
    assert len(idp.requests("/token")) == 1
    assert len({r.header("authorization") for r in upstream.requests}) == 1


async def test_the_cached_token_is_sealed_and_a_refused_one_is_forgotten_by_every_replica(
    idp: IdP, redis_url: str
) -> None:
    await flush(redis_url)
    first, second = replica(idp, redis_url), replica(idp, redis_url)
    try:
        token = await authorization(first)
        assert await authorization(second) == token
        client = coredis.Redis.from_url(redis_url)
        stored = [await client.get(key) for key in await client.keys("*")]
        client.connection_pool.disconnect()
        assert stored and all(token.removeprefix("Bearer ").encode() not in value for value in stored if value)
        refused = HttpRequest("GET", "/pets", headers={"Authorization": token})
        await second.refresh(refused)  # the upstream refused it at the second replica
        renewed = await authorization(second)
        assert renewed != token
        assert len(idp.requests("/token")) == 2
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_replica_with_another_client_secret_cannot_read_the_token(idp: IdP, redis_url: str) -> None:
    await flush(redis_url)
    idp.reset()  # any client secret is accepted: the cache alone must keep the replicas apart
    first, rotated = replica(idp, redis_url), replica(idp, redis_url, secret="the-next-client-secret")
    try:
        assert await authorization(first) != await authorization(rotated)
        assert len(idp.requests("/token")) == 2
    finally:
        await first.aclose()
        await rotated.aclose()


async def test_without_redis_each_replica_still_fetches_its_own(idp: IdP) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    first, second = replica(idp, down), replica(idp, down)
    try:
        assert (await authorization(first)).startswith("Bearer ")
        assert (await authorization(second)).startswith("Bearer ")
        assert len(idp.requests("/token")) == 2
    finally:
        await first.aclose()
        await second.aclose()


def test_the_cache_must_be_memory_or_redis(idp: IdP) -> None:
    upstream = {"name": "api", "openapi": {"source": "api.yaml"}, "outbound_auth": credentials(idp, "mongodb://x")}
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {
                "groups": [{"name": "g", "upstreams": ["api"], "inbound_auth": {"strategy": "none"}}],
                "upstreams": [upstream],
            },
            env={"CLIENT_SECRET": SECRET},
        )
    assert "upstreams[0].outbound_auth.oauth2_client_credentials.cache: expected `memory` or a redis://" in str(
        raised.value.problems
    )
