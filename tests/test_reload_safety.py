"""What counts as weakening a group's security on reload (the reloader refuses it unless told)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from mcp_anything.app.reload import Reloader
from mcp_anything.config import Config, ConfigSource, parse_config, weakenings
from tests.support.gateway import echo_config
from tests.support.mcp import mcp_client
from tests.support.metrics import scrape
from tests.support.upstream import RecordingUpstream
from tests.test_reload import ConfigFile, _logged, eventually, serving

API_KEY = {"strategy": "api_key", "api_key": {"value": "k-1"}}
CAPABILITIES = {"public_key": "${KEY}", "audience": "gw", "bind_subject": True}
PROTECTED: dict[str, Any] = {
    "name": "admin",
    "endpoint": "/admin/mcp",
    "upstreams": ["u"],
    "inbound_auth": API_KEY,
    "authorization": {
        "default": "deny",
        "capabilities": CAPABILITIES,
        "rules": [
            {"effect": "deny", "when": 'jwt.sub == "mallory"', "tools": ["*"]},
            {"effect": "allow", "when": "true", "tools": ["u_get_*"]},
        ],
    },
    "rate_limits": [{"per": "subject", "limit": "10/minute"}],
}


def config(*groups: dict[str, Any]) -> Config:
    raw = {"groups": list(groups), "upstreams": [{"name": "u", "openapi": {"source": "spec.yaml"}}]}
    return parse_config(raw, env={"KEY": "-----BEGIN PUBLIC KEY-----"})


def changed(**group: Any) -> list[str]:
    return [str(w) for w in weakenings(config(PROTECTED), config({**PROTECTED, **group}))]


def authorization(**changes: Any) -> dict[str, Any]:
    return {**PROTECTED["authorization"], **changes}


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ({"inbound_auth": {"strategy": "none"}}, "inbound_auth.strategy becomes none (was api_key)"),
        ({"authorization": authorization(default="allow")}, "authorization.default loosened from deny to allow"),
        ({"authorization": authorization(capabilities=None)}, "authorization.capabilities removed"),
        (
            {"authorization": authorization(capabilities={**CAPABILITIES, "audience": None})},
            "authorization.capabilities.audience removed",
        ),
        (
            {"authorization": authorization(capabilities={**CAPABILITIES, "bind_subject": False})},
            "authorization.capabilities.bind_subject turned off",
        ),
        ({"authorization": {"default": "allow"}}, "authorization.rules removed"),
        (
            {"authorization": authorization(rules=PROTECTED["authorization"]["rules"][1:])},
            "authorization deny rule 'jwt.sub == \"mallory\"' removed or changed",
        ),
        ({"rate_limits": []}, "rate limit 10/minute per subject removed or changed"),
        ({"rate_limits": [{"per": "subject", "limit": "1000/minute"}]}, "rate limit 10/minute per subject removed"),
        (
            {"inbound_auth": {"strategy": "jwt", "jwt": {"issuer": "https://idp.example"}}},
            "inbound_auth.strategy changed from api_key to jwt",
        ),
        (
            {"authorization": authorization(capabilities={**CAPABILITIES, "audience": ["gw", "other"]})},
            "authorization.capabilities.audience widened: adds ['other']",
        ),
        (
            {"authorization": authorization(capabilities={**CAPABILITIES, "max_lifetime": "1h"})},
            "authorization.capabilities.max_lifetime raised or removed (was 300s)",
        ),
        (
            {"authorization": authorization(capabilities={**CAPABILITIES, "max_lifetime": None})},
            "authorization.capabilities.max_lifetime raised or removed (was 300s)",
        ),
    ],
)
def test_each_weakening_is_named_with_its_group(group: dict[str, Any], expected: str) -> None:
    found = changed(**group)
    assert any(w.startswith(f"group 'admin': {expected}") for w in found), found


JWT = {
    "issuer": "https://idp.example",
    "audience": "gw",
    "algorithms": ["RS256"],
    "required_claims": ["exp", "tenant"],
    "required_scopes": ["mcp:admin"],
    "leeway": "30s",
}
INTROSPECTION = {
    "endpoint": "https://idp.example/introspect",
    "client_id": "gw",
    "client_secret": "s-1",
    "required_scopes": ["mcp:admin"],
}


def inbound_changed(strategy: str, block: dict[str, Any], **changes: Any) -> list[str]:
    before = {**PROTECTED, "inbound_auth": {"strategy": strategy, strategy: block}}
    after = {**PROTECTED, "inbound_auth": {"strategy": strategy, strategy: {**block, **changes}}}
    return [str(w) for w in weakenings(config(before), config(after))]


@pytest.mark.parametrize(
    ("strategy", "change", "expected"),
    [
        ("jwt", {"audience": None}, "inbound_auth.jwt.audience removed"),
        ("jwt", {"audience": ["gw", "other"]}, "inbound_auth.jwt.audience widened: adds ['other']"),
        ("jwt", {"issuer": "https://other.example"}, "inbound_auth.jwt.issuer changed or removed"),
        ("jwt", {"jwks_url": "https://idp.example/keys"}, "inbound_auth.jwt.jwks_url changed"),
        ("jwt", {"required_scopes": []}, "inbound_auth.jwt.required_scopes reduced: drops ['mcp:admin']"),
        ("jwt", {"required_claims": ["exp"]}, "inbound_auth.jwt.required_claims reduced: drops ['tenant']"),
        ("jwt", {"algorithms": ["RS256", "ES256"]}, "inbound_auth.jwt.algorithms widened: adds ['ES256']"),
        ("jwt", {"leeway": "5m"}, "inbound_auth.jwt.leeway raised from 30s to 300s"),
        ("introspection", {"required_scopes": []}, "inbound_auth.introspection.required_scopes reduced"),
        ("introspection", {"endpoint": "https://other.example/i"}, "inbound_auth.introspection.endpoint changed"),
    ],
)
def test_each_loosened_token_check_is_named(strategy: str, change: dict[str, Any], expected: str) -> None:
    block = JWT if strategy == "jwt" else INTROSPECTION
    found = inbound_changed(strategy, block, **change)
    assert len(found) == 1 and found[0].startswith(f"group 'admin': {expected}"), found


@pytest.mark.parametrize(
    ("strategy", "change"),
    [
        ("jwt", {"audience": ["gw"]}),  # the same audience, as a list
        ("jwt", {"required_scopes": ["mcp:admin", "mcp:write"]}),
        ("jwt", {"algorithms": ["RS256"], "leeway": "10s"}),
        ("introspection", {"required_scopes": ["mcp:admin", "mcp:write"], "cache_ttl": "5s"}),
    ],
)
def test_tightened_token_checks_are_not_weakening(strategy: str, change: dict[str, Any]) -> None:
    assert inbound_changed(strategy, JWT if strategy == "jwt" else INTROSPECTION, **change) == []


def server_changed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    def with_server(server: dict[str, Any]) -> Config:
        raw = {"server": server, "groups": [PROTECTED], "upstreams": [{"name": "u", "openapi": {"source": "s.yaml"}}]}
        return parse_config(raw, env={"KEY": "-----BEGIN PUBLIC KEY-----"})

    return [str(w) for w in weakenings(with_server(old), with_server(new))]


REDIS = {"revocations": "redis://:pw@127.0.0.1:6379/0"}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"allowed_hosts": ["mcp.example"]}, {"allowed_hosts": ["mcp.example", "x.example"]}, "allowed_hosts widened"),
        ({"allowed_hosts": ["mcp.example"]}, {}, "allowed_hosts widened: adds ['localhost'"),  # the loopback defaults
        ({"host": "0.0.0.0", "allowed_hosts": ["mcp.example"]}, {"host": "0.0.0.0"}, "allowed_hosts widened: adds ['*"),
        ({"allowed_origins": []}, {"allowed_origins": ["https://app.example"]}, "allowed_origins widened"),
        ({"allowed_origins": ["https://app.example"]}, {}, "allowed_origins widened: adds ['http://127.0.0.1:8080'"),
        ({"metrics": {"token": "t-1"}}, {}, "metrics.token removed"),
        ({"metrics": {"port": 9464}}, {}, "/metrics now served on the MCP port without a token"),
        ({"sessions": REDIS}, {}, "sessions.revocations moved from redis to memory"),
        ({}, {"sessions": {"initialize_rate": "10/second"}}, "sessions.initialize_rate raised or removed"),
        ({}, {"sessions": {"initialize_rate": None}}, "sessions.initialize_rate raised or removed (was 60/minute)"),
    ],
)
def test_each_loosened_server_setting_is_named(old: dict[str, Any], new: dict[str, Any], expected: str) -> None:
    found = server_changed(old, new)
    assert len(found) == 1 and found[0].startswith(f"server: {expected}"), found


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({}, {"allowed_hosts": ["localhost"], "allowed_origins": []}),  # narrower than the defaults
        ({"allowed_hosts": ["MCP.example"]}, {"allowed_hosts": ["mcp.example"]}),  # host names ignore case
        ({}, {"metrics": {"token": "t-1"}, "sessions": {**REDIS, "initialize_rate": "1/minute"}}),
        ({"metrics": {"token": "t-1"}}, {"metrics": False}),  # no token, but no /metrics either
        ({}, {"limits": {"max_connections": 100000}, "max_body_bytes": "64MiB"}),  # capacity, not security
    ],
)
def test_tightened_or_capacity_server_settings_are_not_weakening(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert server_changed(old, new) == []


def test_a_whole_authorization_block_removed_names_every_loss() -> None:
    found = changed(authorization={}, rate_limits=[], inbound_auth={"strategy": "none"})
    assert len(found) == 5, found


@pytest.mark.parametrize(
    "group",
    [
        {},
        {"authorization": authorization(rules=[*PROTECTED["authorization"]["rules"], {"effect": "deny"}])},
        {"rate_limits": [*PROTECTED["rate_limits"], {"per": "tool", "limit": "5/second"}]},
        {"endpoint": "/v2/admin/mcp"},  # moved: matched by name
        {"name": "renamed"},  # renamed: matched by endpoint, and nothing loosened
    ],
)
def test_tightening_or_keeping_is_not_weakening(group: dict[str, Any]) -> None:
    assert changed(**group) == []


def test_a_renamed_group_is_compared_by_its_endpoint_and_new_groups_by_nothing() -> None:
    open_group = {"name": "open", "endpoint": "/open/mcp", "upstreams": ["u"], "inbound_auth": {"strategy": "none"}}
    renamed_open = {**PROTECTED, "name": "admin2", "inbound_auth": {"strategy": "none"}}
    found = [str(w) for w in weakenings(config(PROTECTED), config(renamed_open, open_group))]
    assert found == ["group 'admin2': inbound_auth.strategy becomes none (was api_key)"]


# --- a real gateway reloading a file that is written in steps, or that weakens a group ------------------------

KEYED = {"strategy": "api_key", "api_key": {"values": {"ops": "ops-key-1"}}}


def admin_config(upstream_url: str, **server: Any) -> dict[str, Any]:
    raw = echo_config(upstream_url)
    raw["server"] = {"reload_interval": "100ms", **server}
    raw["groups"] = [{"name": "admin", "endpoint": "/admin/mcp", "upstreams": ["echo"], "inbound_auth": KEYED}]
    return raw


async def anonymous_call_succeeds(endpoint: str) -> bool:
    try:
        async with mcp_client(endpoint) as client:
            return not (await client.call_tool("echo_delete_item", {"itemId": "1"})).is_error
    except Exception:  # 401 before any session: refused
        return False


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_config_rewritten_in_place_in_two_writes_never_serves_the_first_half(
    tmp_path: Path, upstream: RecordingUpstream, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_anything.reload")
    raw = admin_config(upstream_url)
    config = ConfigFile(tmp_path, raw)
    text = yaml.safe_dump({k: v for k, v in raw.items() if k != "groups"})
    group = {k: v for k, v in raw["groups"][0].items() if k != "inbound_auth"}
    first = text + yaml.safe_dump({"groups": [group]})  # the group, its inbound_auth block not yet written
    second = yaml.safe_dump(KEYED, default_flow_style=True).strip()
    with serving(config) as (url, _):
        endpoint = url + "/admin/mcp"
        with config.path.open("w") as editor:  # in place: no temp file, no rename
            editor.write(first)
            editor.flush()
            succeeded = 0
            with anyio.fail_after(30):
                for _ in range(20):  # 1.5 s of anonymous calls while the file is half-written
                    succeeded += await anonymous_call_succeeds(endpoint)
                    await anyio.sleep(0.075)
            editor.write("  inbound_auth: " + second + "\n")
        await eventually(lambda: _logged(caplog, "config reloaded"))  # the whole file, as it was before
        async with mcp_client(endpoint, headers={"X-API-Key": "ops-key-1"}) as ops:
            assert not (await ops.call_tool("echo_get_item", {"itemId": "2"})).is_error
    assert succeeded == 0
    assert [r.method for r in upstream.requests] == ["GET"], "no anonymous call reached the upstream"
    problems = [r.getMessage() for r in caplog.records if r.name == "mcp_anything.reload"]
    assert any("groups[0].inbound_auth: required; write `strategy: none`" in p for p in problems), problems


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_reload_that_weakens_a_group_is_refused_unless_the_new_config_allows_it(
    tmp_path: Path, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = ConfigFile(tmp_path, admin_config(upstream_url))
    opened = admin_config(upstream_url)
    opened["groups"][0]["inbound_auth"] = {"strategy": "none"}
    with serving(config) as (url, _):
        endpoint = url + "/admin/mcp"
        before = await scrape(url)
        config.write(opened)
        await eventually(lambda: _logged(caplog, "config reload refused: it weakens 1 security setting(s)"))
        assert not await anonymous_call_succeeds(endpoint)
        after = await scrape(url)
        refused = "mcp_anything_config_reloads_total"
        assert after.value(refused, outcome="refused") == before.value(refused, outcome="refused") + 1

        allowed = admin_config(upstream_url, allow_weakening_reload=True)
        allowed["groups"][0]["inbound_auth"] = {"strategy": "none"}
        config.write(allowed)
        await eventually(lambda: anonymous_call_succeeds(endpoint))
    warnings = [r.getMessage() for r in caplog.records if r.name == "mcp_anything.reload" and r.levelname == "WARNING"]
    weakening = "group 'admin': inbound_auth.strategy becomes none (was api_key)"
    assert warnings[0] == f"config reload refused: it weakens {weakening}"
    assert warnings[-1] == f"config reloaded with weaker security (allowed): {weakening}"


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_file_still_changing_is_read_only_once_it_has_settled(tmp_path: Path, upstream_url: str) -> None:
    raw = echo_config(upstream_url)
    raw["server"] = {"reload_interval": "200ms"}
    config = ConfigFile(tmp_path, raw)
    source = ConfigSource(config.path)
    served: list[Config] = []

    async def serve(new: Config) -> int:
        served.append(new)
        return 0

    reloader = Reloader(source, current=lambda: served[-1] if served else source.load(), serve=serve)
    reloader.start()
    try:
        text = yaml.safe_dump(raw)
        for i in range(25):  # a slow writer: a line every 40 ms, for a second, never still for a whole poll
            text += f"# line {i}\n"
            config.path.write_text(text)
            await anyio.sleep(0.04)
        assert served == [], "read while still being written"
        await eventually(lambda: _true(bool(served)), within=5)
        await anyio.sleep(0.5)
    finally:
        await reloader.stop()
    assert len(served) == 1


async def _true(value: bool) -> bool:
    return value


@pytest.mark.anyio
async def test_a_new_metrics_port_waits_for_a_restart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = echo_config("http://127.0.0.1:9")  # nothing is called
    raw["server"] = {"reload_interval": "off", "metrics": {"port": 9464, "token": "t-1"}}
    config = ConfigFile(tmp_path, raw)
    source = ConfigSource(config.path)
    served: list[Config] = [source.load()]

    async def serve(new: Config) -> int:
        served.append(new)
        return 0

    reloader = Reloader(source, current=lambda: served[-1], serve=serve)
    reloader.start()
    try:
        config.write({**raw, "server": {**raw["server"], "metrics": {"port": 9465, "token": "t-2"}}})
        assert await reloader.reload("SIGHUP")
    finally:
        await reloader.stop()
    assert served[-1].server.metrics.port == 9464, "the listener bound at startup keeps serving"
    assert served[-1].server.metrics.token is not None and served[-1].server.metrics.token.get_secret_value() == "t-2"
    warnings = [r.getMessage() for r in caplog.records if r.name == "mcp_anything.reload" and r.levelname == "WARNING"]
    assert warnings == ["server.metrics.port changed; the new value takes effect on restart"]
