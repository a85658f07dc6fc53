"""Per-user tools: capability wristbands, CEL rules and the audit log, against real Tool objects."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from mcp_anything.authz import AllowAll, Forbidden, Grant, create_authorizer
from mcp_anything.config import ConfigError, parse_config
from mcp_anything.identity import ANONYMOUS, Identity
from mcp_anything.tools import HttpRequest, Tool
from tests.support.wristband import ISSUER, OTHER_KEY, PUBLIC_PEM, SIGNING_KEY, forged, mint


def make_tool(upstream: str, base_name: str, prefix: str | None = None) -> Tool:
    name = f"{upstream if prefix is None else prefix}_{base_name}"

    def build_request(arguments: Mapping[str, Any]) -> HttpRequest:
        return HttpRequest(method="GET", path=f"/{base_name}")

    return Tool(
        name=name,
        upstream=upstream,
        base_name=base_name,
        method="GET",
        path=f"/{base_name}",
        description=base_name,
        input_schema={"type": "object"},
        output_schema=None,
        annotations={},
        validate=lambda arguments: None,
        build_request=build_request,
        definition={"name": name, "inputSchema": {"type": "object"}},
    )


SHOP = [make_tool("shop", n) for n in ("get_book", "list_books", "delete_book", "create_book")]
CATS = [make_tool("cats", n, prefix="pets") for n in ("get_cat", "list_cats")]
TOOLS = SHOP + CATS
TOOL = {t.name: t for t in TOOLS}


def headers(*wristbands: str, name: str = "x-mcp-authorized") -> Headers:
    return Headers(raw=[(name.encode(), w.encode()) for w in wristbands])


def config(authorization: dict[str, Any], tmp_path: Path, env: dict[str, str] | None = None, **shop: Any):
    raw = {
        "groups": [
            {
                "name": "default",
                "upstreams": ["shop", "cats"],
                "inbound_auth": {"strategy": "none"},
                "authorization": authorization,
            }
        ],
        "upstreams": [
            {"name": "shop", "openapi": {"source": "shop.yaml"}, **shop},
            {"name": "cats", "tool_prefix": "pets", "openapi": {"source": "cats.yaml"}},
        ],
    }
    return parse_config(raw, base_dir=tmp_path, env=env or {})


def authorizer(authorization: dict[str, Any], tmp_path: Path, env: dict[str, str] | None = None, **shop: Any):
    root = config(authorization, tmp_path, env, **shop)
    return create_authorizer(root.groups[0].authorization, root)


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "wristband.pem").write_text(PUBLIC_PEM)
    return "keys/wristband.pem"


@pytest.fixture
def wristbands(tmp_path: Path, key_file: str):
    return authorizer({"capabilities": {"public_key": key_file, "issuer": ISSUER}}, tmp_path)


@pytest.fixture
def audit_lines(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="mcp_anything.audit")

    def lines() -> list[dict[str, Any]]:
        return [r.fields for r in caplog.records if r.name == "mcp_anything.audit"]

    return lines


USER = Identity(strategy="jwt", subject="alice", claims={"sub": "alice"})


def visible(grant: Grant) -> list[str]:
    return [t.name for t in grant.filter_tools(TOOLS)]


def callable_tools(grant: Grant, arguments: Mapping[str, Any] | None = None) -> list[str]:
    return [t.name for t in TOOLS if grant.can_call(t, arguments or {})]


# --- capability wristbands ------------------------------------------------------------------


def test_each_user_lists_and_calls_only_the_tools_their_wristband_allows(wristbands):
    reader = wristbands.grant("default", USER, headers(mint({"tools": {"shop": ["get_book", "list_books"]}})))
    assert visible(reader) == ["shop_get_book", "shop_list_books"]
    assert callable_tools(reader) == ["shop_get_book", "shop_list_books"]

    bob = Identity(strategy="jwt", subject="bob", claims={"sub": "bob"})
    wristband = mint({"tools": {"cats": ["list_cats"], "shop": ["delete_book"]}})
    keeper = wristbands.grant("default", bob, headers(wristband))
    assert visible(keeper) == ["shop_delete_book", "pets_list_cats"]
    assert callable_tools(keeper) == ["shop_delete_book", "pets_list_cats"]


def test_filtering_returns_the_prebuilt_tools_unchanged(wristbands):
    grant = wristbands.grant("default", USER, headers(mint({"tools": {"shop": ["get_book"]}})))
    [tool] = grant.filter_tools(TOOLS)
    assert tool is TOOL["shop_get_book"]


def test_claim_names_match_the_capability_name_not_the_prefixed_tool_name(tmp_path, key_file):
    route = "mcp-test/server1-route"
    authz = authorizer({"capabilities": {"public_key": key_file}}, tmp_path, capability_name=route)
    grant = authz.grant("default", USER, headers(mint({"tools": {route: ["get_book"], "shop": ["list_books"]}})))
    assert visible(grant) == ["shop_get_book"]  # `shop` is no server name once capability_name is set
    prefixed = authz.grant("default", USER, headers(mint({"tools": {route: ["shop_get_book"]}})))
    assert visible(prefixed) == []


def test_unknown_server_names_grant_nothing_and_are_reported(wristbands, audit_lines):
    grant = wristbands.grant("default", USER, headers(mint({"tools": {"nope": ["get_book"], "shop": ["get_book"]}})))
    assert visible(grant) == ["shop_get_book"]
    assert "unknown servers ['nope']" in audit_lines()[-1]["reason"]


def test_public_key_can_be_the_pem_itself_from_the_environment(tmp_path):
    authz = authorizer({"capabilities": {"public_key": "${WRISTBAND_KEY}"}}, tmp_path, {"WRISTBAND_KEY": PUBLIC_PEM})
    assert visible(authz.grant("default", USER, headers(mint({"tools": {"shop": ["get_book"]}})))) == ["shop_get_book"]


BAD_WRISTBANDS = {
    "missing": ((), "no x-mcp-authorized header"),
    "expired": ((mint(lifetime=-120),), "has expired"),
    "no exp": ((mint(omit=("exp",)),), "lacks the required claim(s) exp"),
    "not yet valid": ((mint(nbf=int(time.time()) + 600),), "not yet valid"),
    "issued in the future": ((mint(iat=int(time.time()) + 600),), "issued in the future"),
    "other key": ((mint(key=OTHER_KEY),), "is invalid: bad_signature"),
    "other issuer": ((mint(iss="https://evil.example"),), "invalid_claim"),
    "no issuer": ((mint(omit=("iss",)),), "lacks the required claim(s) iss"),
    "HS256 keyed with the public key": (
        (forged("HS256", {"exp": int(time.time()) + 60, "iss": ISSUER}, PUBLIC_PEM.encode()),),
        "Algorithm of 'HS256' is not allowed",
    ),
    "alg none": (
        (forged("none", {"exp": int(time.time()) + 60, "iss": ISSUER}),),
        "Algorithm of 'none' is not allowed",
    ),
    "two values": ((mint(), mint()), "2 x-mcp-authorized headers; expected exactly one"),
    "garbage": (("not-a-jwt",), "is invalid: decode_error"),
    "claim not JSON": ((mint(**{"allowed-capabilities": '{"tools": {"shop": '}),), "is not valid JSON"),
    "claim of wrong shape": ((mint({"tools": {"shop": "get_book"}}),), 'expected {"tools"'),
    "claim missing": ((mint(omit=("allowed-capabilities",)),), "has no 'allowed-capabilities' claim"),
}


@pytest.mark.parametrize("case", BAD_WRISTBANDS)
def test_a_missing_or_invalid_wristband_means_no_tools_and_the_reason_is_logged(case, wristbands, audit_lines):
    values, reason = BAD_WRISTBANDS[case]
    grant = wristbands.grant("default", USER, headers(*values))
    assert visible(grant) == []
    assert not grant.can_call(TOOL["shop_get_book"], {})
    listed, called = audit_lines()
    assert listed["action"] == "list" and listed["decision"] == "deny" and listed["hidden"] == len(TOOLS)
    assert reason in listed["reason"] and reason in called["reason"]
    for value in values:  # the token never reaches the log
        assert all(value not in json.dumps(line) for line in audit_lines())


BOUND = {"public_key": "keys/wristband.pem", "audience": ["gw-public", "gw-all"], "bind_subject": True}
READS = {"tools": {"shop": ["get_book"]}}
BOB = Identity(strategy="jwt", subject="bob", claims={"sub": "bob"})

BOUND_WRISTBANDS = {
    "for this group, this caller": (USER, mint(READS, sub="alice", aud="gw-public"), None),
    "audience list, one matches": (USER, mint(READS, sub="alice", aud=["other", "gw-all"]), None),
    "for another group": (USER, mint(READS, sub="alice", aud="gw-admin"), "was issued for another audience"),
    "without an audience": (USER, mint(READS, sub="alice"), "lacks the required claim(s) aud"),
    "presented by another caller": (BOB, mint(READS, sub="alice", aud="gw-public"), "issued to another subject"),
    "to a caller without a subject": (ANONYMOUS, mint(READS, sub="alice", aud="gw-public"), "another subject"),
    "without a subject": (USER, mint(READS, aud="gw-public", omit=("sub",)), "lacks the required claim(s) sub"),
    "living too long": (USER, mint(READS, sub="alice", aud="gw-public", lifetime=3600), "longer than max_lifetime"),
    "without iat": (USER, mint(READS, sub="alice", aud="gw-public", omit=("iat",)), "required claim(s) iat"),
}


@pytest.mark.parametrize("case", BOUND_WRISTBANDS)
def test_a_bound_wristband_serves_only_its_audience_and_subject(case, tmp_path, key_file, audit_lines):
    identity, wristband, refused = BOUND_WRISTBANDS[case]
    grant = authorizer({"capabilities": BOUND}, tmp_path).grant("default", identity, headers(wristband))
    assert visible(grant) == ([] if refused else ["shop_get_book"])
    if refused:
        assert refused in audit_lines()[-1]["reason"]


def test_max_lifetime_defaults_to_five_minutes_and_can_be_raised_or_turned_off(tmp_path, key_file):
    hour = headers(mint(READS, lifetime=3600, omit=("iat",)))
    default = authorizer({"capabilities": {"public_key": key_file}}, tmp_path)
    assert visible(default.grant("default", USER, headers(mint(READS, lifetime=300)))) == ["shop_get_book"]
    assert visible(default.grant("default", USER, headers(mint(READS, lifetime=301)))) == []
    raised = authorizer({"capabilities": {"public_key": key_file, "max_lifetime": "1h"}}, tmp_path)
    assert visible(raised.grant("default", USER, headers(mint(READS, lifetime=3600)))) == ["shop_get_book"]
    off = authorizer({"capabilities": {"public_key": key_file, "max_lifetime": None}}, tmp_path)
    assert visible(off.grant("default", USER, hour)) == ["shop_get_book"]


def test_without_capabilities_configured_the_header_is_ignored_never_trusted(tmp_path):
    authz = authorizer({}, tmp_path)
    assert isinstance(authz, AllowAll)
    grant = authz.grant("default", USER, headers(mint({"tools": {"shop": ["get_book"]}}, key=OTHER_KEY)))
    assert visible(grant) == [t.name for t in TOOLS]


def test_capabilities_from_the_verified_inbound_claims(tmp_path):
    authz = authorizer({"capabilities": {"source": "claim"}}, tmp_path)
    as_string = {"allowed-capabilities": json.dumps({"tools": {"shop": ["get_book"]}})}
    as_object = {"allowed-capabilities": {"tools": {"cats": ["get_cat"]}}}
    forged_header = headers(mint({"tools": {"shop": ["delete_book"]}}))
    for claims, expected in [(as_string, ["shop_get_book"]), (as_object, ["pets_get_cat"]), ({}, [])]:
        grant = authz.grant("default", Identity("jwt", "alice", claims=claims), forged_header)
        assert visible(grant) == expected
        assert callable_tools(grant) == expected


@pytest.mark.parametrize(
    ("capabilities", "problem"),
    [
        ({}, "`public_key` is required with source: header"),
        ({"public_key": "keys/missing.pem"}, "public_key: cannot read PEM file 'keys/missing.pem'"),
        ({"public_key": SIGNING_KEY.as_pem(private=True).decode()}, "expected a public key, got a private key"),
        ({"public_key": PUBLIC_PEM, "algorithms": ["ES384"]}, "the key does not fit ES384"),
        ({"public_key": PUBLIC_PEM, "algorithms": ["RS256"]}, "not a PEM RSA public key"),
        ({"public_key": PUBLIC_PEM, "algorithms": ["ES256", "RS256"]}, "one key cannot"),
        ({"public_key": PUBLIC_PEM, "algorithms": ["HS256"]}, "unsupported algorithm(s) ['HS256']"),
        ({"public_key": PUBLIC_PEM, "algorithms": ["none"]}, "unsupported algorithm(s) ['none']"),
        ({"source": "claim", "public_key": PUBLIC_PEM}, "['public_key'] only apply to source: header"),
        ({"source": "claim", "audience": "gw", "bind_subject": True}, "['audience', 'bind_subject'] only apply"),
        ({"public_key": PUBLIC_PEM, "audience": []}, "audience cannot be empty"),
        ({"public_key": PUBLIC_PEM, "max_lifetime": "soon"}, "max_lifetime: expected a duration"),
    ],
)
def test_capability_config_problems_name_the_key(capabilities, problem, tmp_path):
    with pytest.raises(ConfigError) as error:
        authorizer({"capabilities": capabilities}, tmp_path)
    assert str(error.value).startswith("groups[0].authorization.capabilities")
    assert problem in str(error.value)


def test_two_upstreams_with_one_server_name_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="share the server name 'cats'"):
        authorizer({"capabilities": {"public_key": PUBLIC_PEM}}, tmp_path, capability_name="cats")


# --- CEL rules ---------------------------------------------------------------------------------

ISSUE_RULES = {
    "default": "deny",
    "rules": [
        {"effect": "deny", "when": 'jwt.sub.startsWith("svc-")', "tools": ["shop_delete_*"]},
        {"effect": "allow", "when": 'jwt.sub == "alice" || "admins" in jwt.groups', "tools": ["*"]},
        {"effect": "allow", "when": 'jwt.team == "ops"', "tools": ["shop_get_*", "shop_list_*"]},
    ],
}


def caller(**claims: Any) -> Identity:
    return Identity(strategy="jwt", subject=claims.get("sub"), claims=claims)


def test_rules_from_the_issue(tmp_path):
    authz = authorizer(ISSUE_RULES, tmp_path)
    alice = authz.grant("default", caller(sub="alice", groups=[]), Headers())
    assert visible(alice) == callable_tools(alice) == [t.name for t in TOOLS]
    ops = authz.grant("default", caller(sub="olga", team="ops", groups=[]), Headers())
    assert visible(ops) == callable_tools(ops) == ["shop_get_book", "shop_list_books"]
    nobody = authz.grant("default", caller(sub="carol", team="sales", groups=[]), Headers())
    assert visible(nobody) == callable_tools(nobody) == []  # default deny


def test_any_matching_deny_wins(tmp_path, audit_lines):
    authz = authorizer(ISSUE_RULES, tmp_path)
    robot = authz.grant("default", caller(sub="svc-backup", groups=["admins"]), Headers())
    assert "shop_delete_book" not in visible(robot)
    assert not robot.can_call(TOOL["shop_delete_book"], {"id": 1})
    assert robot.can_call(TOOL["shop_get_book"], {"id": 1})
    denied, allowed = audit_lines()[-2:]
    assert denied == denied | {"action": "call", "tool": "shop_delete_book", "decision": "deny", "rule": "rules[0]"}
    assert allowed["rule"] == "rules[1]" and allowed["decision"] == "allow"


def test_a_failing_expression_matches_deny_rules_and_not_allow_rules(tmp_path, audit_lines):
    authz = authorizer(ISSUE_RULES, tmp_path)
    # No `sub`: the deny rule fails, so it matches; no `groups`: the admin allow rule fails, so it does not.
    anonymous = authz.grant("default", caller(team="ops"), Headers())
    assert visible(anonymous) == ["shop_get_book", "shop_list_books"]
    assert not anonymous.can_call(TOOL["shop_delete_book"], {})
    line = audit_lines()[-1]
    assert line["rule"] == "rules[0]" and line["reason"].startswith("evaluation failed, fail closed")


def test_an_expression_that_is_not_boolean_fails(tmp_path):
    authz = authorizer({"default": "deny", "rules": [{"effect": "allow", "when": "jwt.sub", "tools": ["*"]}]}, tmp_path)
    assert visible(authz.grant("default", caller(sub="alice"), Headers())) == []


def test_claims_cel_cannot_represent_fail_closed(tmp_path):
    authz = authorizer({"rules": [{"effect": "deny", "when": 'jwt.sub == "mallory"', "tools": ["shop_*"]}]}, tmp_path)
    grant = authz.grant("default", caller(sub="alice", odd=object()), Headers())
    assert visible(grant) == ["pets_get_cat", "pets_list_cats"]


def test_a_rule_without_tools_gates_the_endpoint(tmp_path, audit_lines):
    authz = authorizer({"rules": [{"effect": "allow", "when": 'jwt.sub == "alice"'}]}, tmp_path)
    assert visible(authz.grant("default", caller(sub="alice"), Headers())) == [t.name for t in TOOLS]
    with pytest.raises(Forbidden):
        authz.grant("default", caller(sub="bob"), Headers())
    refused = audit_lines()[-1]
    assert refused["action"] == "connect" and refused["decision"] == "deny" and "rules[0]" in refused["reason"]


def test_a_deny_rule_without_tools_closes_the_endpoint(tmp_path, audit_lines):
    authz = authorizer({"rules": [{"effect": "deny", "when": '"contractors" in jwt.groups'}]}, tmp_path)
    with pytest.raises(Forbidden):
        authz.grant("default", caller(sub="eve", groups=["contractors"]), Headers())
    assert audit_lines()[-1]["rule"] == "rules[0]"
    with pytest.raises(Forbidden):  # no `groups` claim: the deny rule fails, so it matches
        authz.grant("default", caller(sub="eve"), Headers())
    assert visible(authz.grant("default", caller(sub="bob", groups=[]), Headers())) == [t.name for t in TOOLS]


def test_rules_on_arguments_are_decided_per_call(tmp_path):
    rule = {"effect": "deny", "when": "mcp.tool.arguments.id == 13", "tools": ["shop_delete_*"]}
    grant = authorizer({"rules": [rule]}, tmp_path).grant("default", caller(sub="alice"), Headers())
    assert "shop_delete_book" in visible(grant)  # the call decides, with the arguments
    assert grant.can_call(TOOL["shop_delete_book"], {"id": 12})
    assert not grant.can_call(TOOL["shop_delete_book"], {"id": 13})
    assert not grant.can_call(TOOL["shop_delete_book"], {})  # fails, so the deny matches


def test_rules_on_the_tool_name_hide_tools_from_the_list(tmp_path):
    rules = [{"effect": "allow", "when": 'mcp.tool.name.endsWith("_book")', "tools": ["*"]}]
    grant = authorizer({"default": "deny", "rules": rules}, tmp_path).grant("default", caller(sub="a"), Headers())
    assert visible(grant) == callable_tools(grant) == ["shop_get_book", "shop_delete_book", "shop_create_book"]


def test_rules_see_the_tools_method_path_template_upstream_and_tags(tmp_path):
    # RequestRocket's method and path conditions, written as a rule.
    rule = 'mcp.tool.method == "GET" && mcp.tool.path.matches("^/v1/(products|orders)") && mcp.tool.upstream == "shop"'
    rules = [
        {"effect": "allow", "when": rule, "tools": ["*"]},
        {"effect": "allow", "when": '"public" in mcp.tool.tags', "tools": ["*"]},
    ]
    orders = replace(TOOL["shop_get_book"], name="shop_get_order", path="/v1/orders/{orderId}")
    post = replace(orders, name="shop_create_order", method="POST")
    elsewhere = replace(orders, name="pets_get_order", upstream="cats")
    tagged = replace(TOOL["pets_get_cat"], tags=("public", "cats"))
    grant = authorizer({"default": "deny", "rules": rules}, tmp_path).grant("default", caller(sub="a"), Headers())
    assert [t.name for t in grant.filter_tools([orders, post, elsewhere, tagged, TOOL["pets_list_cats"]])] == [
        "shop_get_order",
        "pets_get_cat",
    ]


def test_rules_see_request_headers_without_credentials(tmp_path):
    rules = [{"effect": "allow", "when": 'request.headers["x-tenant"] == "acme"', "tools": ["*"]}]
    for hidden in ("authorization", "cookie", "x-mcp-authorized", "mcp-session-id"):
        rules.append({"effect": "deny", "when": f'"{hidden}" in request.headers', "tools": ["*"]})
    authz = authorizer({"default": "deny", "rules": rules}, tmp_path)
    sent = [("X-Tenant", "acme"), ("Authorization", "Bearer t"), ("Cookie", "a=b"), ("x-mcp-authorized", "w")]
    sent += [("Mcp-Session-Id", "s")]
    grant = authz.grant("default", caller(sub="a"), Headers(raw=[(k.encode(), v.encode()) for k, v in sent]))
    assert visible(grant) == [t.name for t in TOOLS]
    other = authz.grant("default", caller(sub="a"), Headers({"x-tenant": "umbrella"}))
    assert visible(other) == []


def test_the_lowest_priority_matching_rule_is_reported_with_its_notes_and_a_deny_still_wins(tmp_path, audit_lines):
    rules = [
        {"effect": "allow", "when": "true", "tools": ["*"], "priority": 20, "notes": "everyone reads"},
        {"effect": "allow", "when": 'jwt.sub == "alice"', "tools": ["shop_*"], "priority": 5, "notes": "alice"},
        {"effect": "allow", "when": 'mcp.tool.name.endsWith("_book")', "tools": ["*"], "priority": 1, "notes": "b"},
        {"effect": "deny", "when": 'jwt.sub == "mallory"', "tools": ["shop_delete_*"], "priority": 99, "notes": "no"},
    ]
    authz = authorizer({"rules": rules}, tmp_path)
    alice = authz.grant("default", caller(sub="alice"), Headers())
    assert alice.can_call(TOOL["shop_get_book"], {})
    assert (audit_lines()[-1]["rule"], audit_lines()[-1]["notes"]) == ("rules[2]", "b")
    assert alice.can_call(TOOL["shop_list_books"], {})
    assert (audit_lines()[-1]["rule"], audit_lines()[-1]["notes"]) == ("rules[1]", "alice")
    assert alice.can_call(TOOL["pets_list_cats"], {})
    assert (audit_lines()[-1]["rule"], audit_lines()[-1]["notes"]) == ("rules[0]", "everyone reads")
    with pytest.raises(Forbidden):  # a rule without `tools` closing the endpoint is audited with its notes too
        authorizer({"rules": [{"effect": "deny", "when": 'jwt.sub == "eve"', "notes": "eve is out"}]}, tmp_path).grant(
            "default", caller(sub="eve"), Headers()
        )
    assert (audit_lines()[-1]["action"], audit_lines()[-1]["notes"]) == ("connect", "eve is out")
    mallory = authz.grant("default", caller(sub="mallory"), Headers())
    assert not mallory.can_call(TOOL["shop_delete_book"], {})  # allows of lower priority match too
    assert (audit_lines()[-1]["decision"], audit_lines()[-1]["rule"]) == ("deny", "rules[3]")


def test_capabilities_and_rules_combine(tmp_path, key_file):
    authz = authorizer({"capabilities": {"public_key": key_file}, **ISSUE_RULES}, tmp_path)
    wristband = headers(mint({"tools": {"shop": ["get_book", "delete_book"], "cats": ["get_cat"]}}))
    robot = authz.grant("default", caller(sub="svc-1", team="ops", groups=[]), wristband)
    assert visible(robot) == callable_tools(robot) == ["shop_get_book"]


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"effect": "allow", "when": "jwt.sub =="}, "rules[0].when: not a valid CEL expression: 1:11: Syntax error"),
        ({"effect": "allow", "when": 'jtw.sub == "a"'}, "rules[0].when: unknown variable(s) ['jtw']"),
        ({"effect": "deny", "when": 'mcp.tool.name == "x"'}, "rules[0]: a rule without `tools` decides who"),
        ({"effect": "deny", "tools": []}, "rules[0].tools: an empty list matches no tool"),
        ({"effect": "block", "tools": ["*"]}, "rules[0].effect"),
    ],
)
def test_rule_config_problems_name_the_rule(rule, problem, tmp_path):
    with pytest.raises(ConfigError) as error:
        config({"rules": [rule]}, tmp_path)
    assert f"groups[0].authorization.{problem}" in str(error.value)


def test_default_deny_without_rules_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"groups\[0\].authorization: default: deny without rules refuses every"):
        config({"default": "deny", "capabilities": {"public_key": PUBLIC_PEM}}, tmp_path)


def test_comprehension_variables_are_not_unknown(tmp_path):
    rules = [{"effect": "allow", "when": 'jwt.groups.exists(g, g.startsWith("team-"))', "tools": ["*"]}]
    authz = authorizer({"default": "deny", "rules": rules}, tmp_path)
    assert visible(authz.grant("default", caller(sub="a", groups=["team-x"]), Headers())) == [t.name for t in TOOLS]


@settings(max_examples=150, deadline=None)
@given(
    sub=st.sampled_from(["alice", "svc-x", "bob", None]),
    groups=st.one_of(st.none(), st.lists(st.sampled_from(["admins", "ops"]), max_size=2)),
    arguments=st.dictionaries(st.sampled_from(["id", "force"]), st.one_of(st.integers(0, 20), st.booleans())),
)
def test_a_hidden_tool_is_never_callable(sub, groups, arguments, tmp_path_factory):
    rules = [
        *ISSUE_RULES["rules"],
        {"effect": "deny", "when": "mcp.tool.arguments.force", "tools": ["*"]},
        {"effect": "allow", "when": 'mcp.tool.arguments.id < 10 && jwt.sub != "bob"', "tools": ["shop_*"]},
    ]
    authz = authorizer({"default": "deny", "rules": rules}, tmp_path_factory.mktemp("c"))
    claims = {k: v for k, v in {"sub": sub, "groups": groups}.items() if v is not None}
    grant = authz.grant("default", caller(**claims), Headers())
    shown = set(visible(grant))
    for tool in TOOLS:
        if grant.can_call(tool, arguments):
            assert tool.name in shown


# --- audit ----------------------------------------------------------------------------------


def test_audit_lines_answer_who_called_what(wristbands, audit_lines):
    wristband = mint({"tools": {"shop": ["get_book"]}})
    grant = wristbands.grant("default", caller(sub="svc-report"), headers(wristband))
    grant.filter_tools(TOOLS)
    grant.can_call(TOOL["shop_get_book"], {"id": 1})
    grant.can_call(TOOL["shop_delete_book"], {"id": 1})
    listed, allowed, denied = audit_lines()
    assert listed.keys() == {"group", "subject", "strategy", "action", "decision", "shown", "hidden"}
    assert (listed["shown"], listed["hidden"]) == (1, len(TOOLS) - 1)
    assert allowed == allowed | {"group": "default", "subject": "svc-report", "tool": "shop_get_book"}
    assert allowed["decision"] == "allow" and allowed["reason"] == "capabilities: tool granted"
    assert denied["decision"] == "deny" and denied["reason"] == "capabilities: tool not granted"


def test_without_authorization_calls_are_still_audited(tmp_path, audit_lines):
    grant = authorizer({}, tmp_path).grant("default", caller(sub="svc-1"), Headers())
    assert grant.filter_tools(TOOLS) is TOOLS
    assert grant.can_call(TOOL["shop_delete_book"], {})
    assert audit_lines()[-1] == audit_lines()[-1] | {"tool": "shop_delete_book", "decision": "allow"}


def test_the_commented_authorization_example_is_valid(tmp_path):
    """config.example.yaml documents the authorization keys in comments: uncommented, they must load."""
    text = (Path(__file__).parents[1] / "config.example.yaml").read_text()
    block = text[text.index("    authorization:") : text.index("\nupstreams:")]
    lines = [re.sub(r"^(\s*)# (?!#)", r"\1", line) for line in block.splitlines()]
    authorization = yaml.safe_load("\n".join(lines))["authorization"]
    assert {"capabilities", "rules"} <= authorization.keys()
    root = config(authorization, tmp_path)
    assert root.groups[0].authorization.capabilities.leeway == 30.0
