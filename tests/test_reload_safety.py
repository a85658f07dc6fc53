"""What counts as weakening a group's security on reload (the reloader refuses it unless told)."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_anything.config import Config, parse_config, weakenings

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
    ],
)
def test_each_weakening_is_named_with_its_group(group: dict[str, Any], expected: str) -> None:
    found = changed(**group)
    assert any(w.startswith(f"group 'admin': {expected}") for w in found), found


def test_a_whole_authorization_block_removed_names_every_loss() -> None:
    found = changed(authorization={}, rate_limits=[], inbound_auth={"strategy": "none"})
    assert len(found) == 5, found


@pytest.mark.parametrize(
    "group",
    [
        {},
        {"inbound_auth": {"strategy": "jwt", "jwt": {"issuer": "https://idp.example"}}},  # another strategy
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
