"""Rate limits end to end: real gateways (one or two replicas), the recording upstream, the official MCP client,
and a real Redis for the shared storage."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from tests.support.gateway import GatewayFactory, echo_config
from tests.support.mcp import mcp_client
from tests.support.metrics import scrape
from tests.support.redis import redis_server
from tests.support.servers import free_port
from tests.support.upstream import RecordingUpstream

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RETRY = re.compile(r"retry in (\d+)s")


def limited_config(upstream_url: str, *rules: dict[str, Any], storage: str | None = None) -> dict[str, Any]:
    raw = echo_config(upstream_url)
    raw["groups"][0]["rate_limits"] = list(rules)
    if storage is not None:
        raw["server"] = {"rate_limit_storage": storage}
    return raw


async def test_over_the_limit_is_an_error_result_with_the_retry_time(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    rule = {"per": "subject_tool", "limit": "2/minute", "tools": ["echo_get_item"]}
    with gateway(limited_config(upstream_url, rule)) as url:
        before = await scrape(url)
        async with mcp_client(url + "/mcp") as client:
            results = [await client.call_tool("echo_get_item", {"itemId": str(i)}) for i in range(3)]
            others = [await client.call_tool("echo_get_text", {}) for _ in range(3)]
        after = await scrape(url)
    assert [r.is_error for r in results] == [False, False, True]
    text = results[2].content[0].text
    assert "Rate limit exceeded for tool 'echo_get_item': rate_limits[0] (2/minute per caller and tool)" in text
    match = RETRY.search(text)
    assert match and 1 <= int(match.group(1)) <= 60, text
    assert [r.is_error for r in others] == [False, False, False], "the rule only covers echo_get_item"
    assert [r.path for r in upstream.requests].count("/items/2") == 0, "a limited call never reaches the upstream"
    calls = "mcp_anything_tool_calls_total"
    labels = {"group": "default", "tool": "echo_get_item", "outcome": "rate_limited"}
    assert after.value(calls, **labels) - before.value(calls, **labels) == 1


async def test_per_tool_limits_count_every_caller_together(gateway: GatewayFactory, upstream_url: str) -> None:
    with gateway(limited_config(upstream_url, {"per": "tool", "limit": "3/minute"})) as url:
        async with mcp_client(url + "/mcp") as first, mcp_client(url + "/mcp") as second:
            outcomes = [
                (await first.call_tool("echo_get_item", {"itemId": "1"})).is_error,
                (await second.call_tool("echo_get_item", {"itemId": "1"})).is_error,
                (await first.call_tool("echo_get_item", {"itemId": "1"})).is_error,
                (await second.call_tool("echo_get_item", {"itemId": "1"})).is_error,
                (await second.call_tool("echo_get_text", {})).is_error,
            ]
    assert outcomes == [False, False, False, True, False]


@pytest.mark.redis
async def test_redis_shares_the_limits_between_replicas(gateway: GatewayFactory, upstream_url: str) -> None:
    with redis_server() as redis_url:
        raw = limited_config(upstream_url, {"per": "tool", "limit": "3/minute"}, storage=redis_url)
        with gateway(raw) as replica_a, gateway(raw) as replica_b:
            async with mcp_client(replica_a + "/mcp") as a, mcp_client(replica_b + "/mcp") as b:
                outcomes = [
                    (await a.call_tool("echo_get_item", {"itemId": "1"})).is_error,
                    (await b.call_tool("echo_get_item", {"itemId": "1"})).is_error,
                    (await a.call_tool("echo_get_item", {"itemId": "1"})).is_error,
                    (await b.call_tool("echo_get_item", {"itemId": "1"})).is_error,
                ]
                limited = await a.call_tool("echo_get_item", {"itemId": "1"})
    assert outcomes == [False, False, False, True]
    assert limited.is_error and RETRY.search(limited.content[0].text)


async def test_an_unreachable_storage_lets_calls_through(
    gateway: GatewayFactory, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = f"redis://127.0.0.1:{free_port()}/0"
    raw = limited_config(upstream_url, {"per": "tool", "limit": "1/minute"}, storage=storage)
    with gateway(raw) as url:
        async with mcp_client(url + "/mcp") as client:
            results = [await client.call_tool("echo_get_item", {"itemId": "1"}) for _ in range(3)]
    assert [r.is_error for r in results] == [False, False, False]
    logged = [r for r in caplog.records if "rate limit storage failed" in r.getMessage()]
    assert len(logged) == 1, "an outage is logged once per interval, not once per call"


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"per": "subject", "limit": "5/fortnight"}, "groups[0].rate_limits[0].limit: expected a rate such as"),
        ({"per": "user", "limit": "5/minute"}, "groups[0].rate_limits[0].per: Input should be"),
        ({"per": "tool", "limit": "5/minute", "burst": 2}, "groups[0].rate_limits[0].burst: unknown key"),
    ],
)
def test_rate_limit_config_errors_name_the_key(upstream_url: str, rule: dict[str, Any], problem: str) -> None:
    from mcp_anything.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as caught:
        parse_config(limited_config(upstream_url, rule))
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_storage_must_be_memory_or_redis(upstream_url: str) -> None:
    from mcp_anything.config import ConfigError, parse_config

    raw = {**echo_config(upstream_url), "server": {"rate_limit_storage": "mongodb://u:secret@db/x"}}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    expected = "server.rate_limit_storage: expected memory:// or a redis:// URL, got a 'mongodb' URL"
    assert caught.value.problems == [expected]
    assert "secret" not in str(caught.value)


async def test_per_subject_limits_count_each_caller_alone(gateway: GatewayFactory, upstream_url: str) -> None:
    raw = limited_config(upstream_url, {"per": "subject", "limit": "2/minute"})
    raw["groups"][0]["inbound_auth"] = {
        "strategy": "api_key",
        "api_key": {"header": "X-API-Key", "values": {"alice": "${ALICE_KEY}", "bob": "${BOB_KEY}"}},
    }
    env = {"ALICE_KEY": "alice-key-0123456789", "BOB_KEY": "bob-key-0123456789"}
    with gateway(raw, env=env) as url:
        async with (
            mcp_client(url + "/mcp", headers={"X-API-Key": env["ALICE_KEY"]}) as alice,
            mcp_client(url + "/mcp", headers={"X-API-Key": env["BOB_KEY"]}) as bob,
        ):
            alice_calls = [
                (await alice.call_tool("echo_get_item", {"itemId": "1"})).is_error,
                (await alice.call_tool("echo_get_text", {})).is_error,
                (await alice.call_tool("echo_get_numbers", {})).is_error,
            ]
            bob_calls = [(await bob.call_tool("echo_get_text", {})).is_error for _ in range(2)]
    assert alice_calls == [False, False, True], "one counter per caller across every tool"
    assert bob_calls == [False, False]


def test_the_commented_rate_limit_example_is_valid(upstream_url: str) -> None:
    """config.example.yaml documents a rate limit in comments: uncommented, it must load."""
    from pathlib import Path

    import yaml

    from mcp_anything.config import parse_config

    text = (Path(__file__).parents[1] / "config.example.yaml").read_text()
    block = text[text.index("    rate_limits: []") :].splitlines()[1:]
    commented = [line for line in itertools.takewhile(lambda line: line.startswith("      #"), block)]
    rules = yaml.safe_load("\n".join(line.replace("# ", "", 1) for line in commented))
    config = parse_config(limited_config(upstream_url, *rules))
    assert config.groups[0].rate_limits[0].per == "subject_tool"
