"""Responses shaped for the caller, end to end: response filters bound to real tokens (oauth2-mock-server),
result budgets, through a real gateway in front of a real orders API, with the official MCP client
(which validates structuredContent against the advertised outputSchema on every call)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from tests.support.cli import run_cli
from tests.support.gateway import GatewayFactory
from tests.support.idp import IdP
from tests.support.mcp import mcp_client
from tests.support.openapi import SPECS
from tests.support.orders import ORDERS, OrdersUpstream, orders_filter
from tests.support.servers import ServerThread

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

AUDIENCE = "mcp-gateway"
KEPT = ("orderId", "userId", "amount", "status")
# The documented scenario; its field operation also names the fields of a single order (`shop_get_order`).
_ROWS, _FIELDS = orders_filter()["operations"]
ORDERS_FILTER = orders_filter(operations=[_ROWS, {**_FIELDS, "path": "^(orders\\.)?(orderId|userId|amount|status)$"}])


@pytest.fixture(scope="module")
def orders_server() -> Iterator[tuple[OrdersUpstream, str]]:
    app = OrdersUpstream()
    with ServerThread(app) as server:
        yield app, server.url


@pytest.fixture
def orders(orders_server: tuple[OrdersUpstream, str]) -> OrdersUpstream:
    orders_server[0].requests.clear()
    return orders_server[0]


@pytest.fixture
def orders_url(orders_server: tuple[OrdersUpstream, str]) -> str:
    return orders_server[1]


@pytest.fixture
def audit_lines(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="mcp_anything.audit")

    def lines(action: str) -> list[dict[str, Any]]:
        return [r.fields for r in caplog.records if r.name == "mcp_anything.audit" and r.fields["action"] == action]

    return lines


def shop_config(orders_url: str, idp: IdP | None, filters: list[dict[str, Any]], **upstream: Any) -> dict[str, Any]:
    group: dict[str, Any] = {
        "name": "orders",
        "endpoint": "/mcp",
        "upstreams": ["shop"],
        "inbound_auth": {"strategy": "none"},
        "response_filters": filters,
    }
    if idp is not None:
        group["inbound_auth"] = {"strategy": "jwt", "jwt": {"issuer": idp.issuer, "audience": AUDIENCE}}
    shop = {"name": "shop", "base_url": orders_url, "openapi": {"source": "orders.yaml"}, **upstream}
    return {"groups": [group], "upstreams": [shop]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def original_order_schema() -> dict[str, Any]:
    """The Order schema the spec declares, before any filter relaxes it."""
    return yaml.safe_load((SPECS / "orders.yaml").read_text())["components"]["schemas"]["Order"]


# --- filters -------------------------------------------------------------------------------------


@pytest.mark.node
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_two_users_each_see_only_their_own_orders_with_only_the_retained_fields(
    gateway: GatewayFactory, orders: OrdersUpstream, orders_url: str, idp: IdP, mode: str
) -> None:
    alice, bob = (idp.token(aud=AUDIENCE, sub=sub) for sub in ("alice", "bob"))
    seen: dict[str, list[dict[str, Any]]] = {}
    with gateway(shop_config(orders_url, idp, [ORDERS_FILTER])) as url:
        for name, token in (("alice", alice), ("bob", bob)):
            async with mcp_client(url + "/mcp", mode=mode, headers=bearer(token)) as client:
                # The client checks structuredContent against the advertised outputSchema: a raise here fails.
                result = await client.call_tool("shop_list_orders", {})
                one = await client.call_tool("shop_get_order", {"orderId": "o1"})
            assert result.is_error is False and result.structured_content is not None
            seen[name] = result.structured_content["orders"]
            # The text is rendered from the filtered data, never from the original.
            assert orjson.loads(result.content[0].text) == result.structured_content
            # Row operations act on arrays: a single order keeps its retained fields whoever asks
            # (gate `shop_get_order` by its arguments with a rule to refuse it).
            assert one.structured_content == {k: ORDERS[0][k] for k in KEPT}
    assert seen["alice"] == [{k: o[k] for k in KEPT} for o in ORDERS if o["userId"] == "alice"]
    assert seen["bob"] == [{k: o[k] for k in KEPT} for o in ORDERS if o["userId"] == "bob"]
    assert len(orders.requests) == 4, "every call reached the upstream once"


@pytest.mark.node
async def test_the_filtered_result_would_break_the_original_schema_so_the_advertised_one_is_relaxed(
    gateway: GatewayFactory, orders_url: str, idp: IdP
) -> None:
    token = idp.token(aud=AUDIENCE, sub="alice")
    with gateway(shop_config(orders_url, idp, [ORDERS_FILTER])) as url:
        async with mcp_client(url + "/mcp", headers=bearer(token)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            one = await client.call_tool("shop_get_order", {"orderId": "o3"})
    assert one.structured_content is not None
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(one.structured_content, original_order_schema())
    advertised = tools["shop_get_order"].output_schema
    assert advertised is not None and "cost" not in advertised.get("required", [])
    jsonschema.validate(one.structured_content, advertised)
    # Tools no filter names keep their schema as the spec declares it.
    receipts = tools["shop_list_receipts"].output_schema
    assert receipts is not None and receipts["properties"]["result"]["items"]["required"] == ["receiptId"]


@pytest.mark.node
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_discoverys_call_tool_returns_the_same_filtered_result_as_a_direct_call(
    gateway: GatewayFactory, orders_url: str, idp: IdP, audit_lines, mode: str
) -> None:
    raw = shop_config(orders_url, idp, [ORDERS_FILTER])
    raw["groups"][0]["discovery"] = {"mode": "search"}
    token = idp.token(aud=AUDIENCE, sub="bob")
    with gateway(raw) as url:
        async with mcp_client(url + "/mcp", mode=mode, headers=bearer(token)) as client:
            assert {t.name for t in (await client.list_tools()).tools} == {"search_tools", "call_tool"}
            through = await client.call_tool("call_tool", {"name": "shop_list_orders", "arguments": {}})
            direct = await client.call_tool("shop_list_orders", {})
    assert through.is_error is False
    assert through.structured_content == direct.structured_content
    assert through.content[0].text == direct.content[0].text  # type: ignore[union-attr]
    assert direct.structured_content == {"orders": [{k: ORDERS[1][k] for k in KEPT}]}
    assert [line["tool"] for line in audit_lines("filter")] == ["shop_list_orders", "shop_list_orders"]


@pytest.mark.node
async def test_a_claim_value_is_matched_literally(gateway: GatewayFactory, orders_url: str, idp: IdP) -> None:
    token = idp.token(aud=AUDIENCE, sub="user.abc+1")
    with gateway(shop_config(orders_url, idp, [ORDERS_FILTER])) as url:
        async with mcp_client(url + "/mcp", headers=bearer(token)) as client:
            result = await client.call_tool("shop_list_orders", {})
    assert result.structured_content is not None
    assert [o["orderId"] for o in result.structured_content["orders"]] == ["o4"]  # not userXabc+1's o5


@pytest.mark.node
async def test_a_missing_claim_withholds_the_whole_response(
    gateway: GatewayFactory, orders: OrdersUpstream, orders_url: str, idp: IdP, audit_lines
) -> None:
    by_org = {**ORDERS_FILTER, "variables": {"callerSub": {"claim": "org.id"}}}
    token = idp.token(aud=AUDIENCE, sub="alice")  # no `org` claim
    with gateway(shop_config(orders_url, idp, [by_org])) as url:
        async with mcp_client(url + "/mcp", headers=bearer(token)) as client:
            listed = await client.call_tool("shop_list_orders", {})
            missing = await client.call_tool("shop_get_order", {"orderId": "nope"})  # an error answer too
    for result in (listed, missing):
        assert result.is_error is True and result.structured_content is None
        text = result.content[0].text
        assert "withheld" in text
        assert not any(str(o[k]) in text for o in ORDERS for k in ("orderId", "internalNote", "userId"))
        assert "lookup-secret" not in text and "nope" not in text
    assert len(orders.requests) == 2
    withheld = audit_lines("filter")
    assert [line["decision"] for line in withheld] == ["withheld", "withheld"]
    assert "org.id" in withheld[0]["reason"]


@pytest.mark.node
async def test_retain_default_removes_only_what_destroy_operations_name(
    gateway: GatewayFactory, orders_url: str, idp: IdP
) -> None:
    denylist = {
        "notes": "Hide internal fields",
        "operations": [{"effect": "destroy", "path": "^(orders\\.)?(cost|internalNote)$"}],
    }
    token = idp.token(aud=AUDIENCE, sub="bob")
    with gateway(shop_config(orders_url, idp, [denylist])) as url:
        async with mcp_client(url + "/mcp", headers=bearer(token)) as client:
            result = await client.call_tool("shop_list_orders", {})
            missing = await client.call_tool("shop_get_order", {"orderId": "o9"})
    assert result.structured_content is not None
    assert result.structured_content["orders"] == [{k: o[k] for k in KEPT} for o in ORDERS]  # every row stays
    # An error answer is quoted only as the filters leave it.
    assert missing.is_error is True and "no such order" in missing.content[0].text
    assert "lookup-secret" not in missing.content[0].text


@pytest.mark.node
async def test_audit_lines_carry_counts_and_notes_never_values(
    gateway: GatewayFactory, orders_url: str, idp: IdP, audit_lines
) -> None:
    token = idp.token(aud=AUDIENCE, sub="alice")
    with gateway(shop_config(orders_url, idp, [ORDERS_FILTER])) as url:
        async with mcp_client(url + "/mcp", headers=bearer(token)) as client:
            await client.call_tool("shop_list_orders", {})
    [line] = audit_lines("filter")
    assert line["decision"] == "filtered" and line["tool"] == "shop_list_orders" and line["subject"] == "alice"
    # Field operations run first (`next`, and two internal fields of each of the five orders), then the rows go.
    assert (line["rows_removed"], line["fields_removed"]) == (3, 11)
    assert line["filters"] == [
        {"filter": 0, "notes": ORDERS_FILTER["notes"], "rows_removed": 3, "fields_removed": 11},
    ]
    rendered = orjson.dumps(line).decode()
    for secret in ("alice-secret", "bob-secret", "x-secret", "userXabc"):
        assert secret not in rendered


def test_validate_names_the_filter_and_the_operation(tmp_path: Path) -> None:
    (tmp_path / "orders.yaml").write_text((SPECS / "orders.yaml").read_text())
    misspelt = {**ORDERS_FILTER, "tools": ["shop_list_orders", "shop_get_ordr"]}
    bad_regex = {**ORDERS_FILTER, "operations": [_ROWS, {**_FIELDS, "path": "^orders\\.(orderId$"}]}
    unknown_variable = {**ORDERS_FILTER, "operations": [{**_ROWS, "match_value": "^{{callerId}}$"}]}
    outputs = []
    for filters in ([misspelt], [bad_regex], [unknown_variable], [ORDERS_FILTER]):
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(shop_config("http://127.0.0.1:9", None, filters)))
        run = run_cli("validate", "--config", str(config))
        outputs.append((run.returncode, run.stdout + run.stderr))
    name = "('Strip orders not belonging to the caller; remove internal fields')"
    assert (
        outputs[0][0] == 2
        and (f"groups[0].response_filters[0] {name}: tools: 'shop_get_ordr' matches no tool of group 'orders'")
        in outputs[0][1]
    )
    assert outputs[1][0] == 2 and "groups[0].response_filters[0]" in outputs[1][1]
    assert (
        f"response filter {name} operation 1 ('Retain only these fields on each surviving order'): path"
        in (outputs[1][1])
    )
    assert outputs[2][0] == 2 and "match_value uses {{callerId}}, which is not a declared variable" in outputs[2][1]
    assert (
        outputs[3][0] == 0
        and "group orders: 4 tools at http://127.0.0.1:8080/mcp, 2 with response filters" in (outputs[3][1])
    )


@pytest.mark.node
async def test_a_filtered_tool_withholds_an_answer_its_filters_cannot_check(
    gateway: GatewayFactory, orders_url: str, idp: IdP
) -> None:
    notes = {"tools": ["shop_get_notes"], "operations": [{"effect": "destroy", "path": "^secret$"}]}
    token = idp.token(aud=AUDIENCE, sub="alice")
    with gateway(shop_config(orders_url, idp, [notes])) as url:
        async with mcp_client(url + "/mcp", headers=bearer(token)) as client:
            result = await client.call_tool("shop_get_notes", {"size": 100})
    assert result.is_error is True
    assert "text/plain, which this tool's response filters cannot check" in result.content[0].text
    assert "wörld" not in result.content[0].text


@pytest.mark.node
async def test_rules_read_the_new_tool_and_request_variables_through_the_gateway(
    gateway: GatewayFactory, orders_url: str, idp: IdP, audit_lines
) -> None:
    raw = shop_config(orders_url, idp, [])
    when = 'mcp.tool.method == "GET" && mcp.tool.path.matches("^/orders") && request.headers["x-tenant"] == "acme"'
    raw["groups"][0]["authorization"] = {
        "default": "deny",
        "rules": [{"effect": "allow", "when": when, "tools": ["*"], "priority": 3, "notes": "acme reads orders"}],
    }
    token = idp.token(aud=AUDIENCE, sub="alice")
    with gateway(raw) as url:
        async with mcp_client(url + "/mcp", headers={**bearer(token), "X-Tenant": "acme"}) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            await client.call_tool("shop_get_order", {"orderId": "o1"})
        async with mcp_client(url + "/mcp", headers={**bearer(token), "X-Tenant": "other"}) as client:
            assert (await client.list_tools()).tools == []
    assert listed == {"shop_list_orders", "shop_get_order"}
    [call] = audit_lines("call")
    assert (call["decision"], call["rule"], call["notes"]) == ("allow", "rules[0]", "acme reads orders")


# --- budgets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_5_mb_array_is_cut_to_the_budget_with_a_note_naming_the_paging_arguments(
    gateway: GatewayFactory, orders_url: str, mode: str
) -> None:
    count = 30_000  # about 5 MB of orders
    with gateway(shop_config(orders_url, None, [])) as url:
        async with mcp_client(url + "/mcp", mode=mode) as client:
            result = await client.call_tool("shop_list_orders", {"count": count})
    assert result.is_error is False and result.structured_content is not None
    kept = result.structured_content["orders"]
    assert 0 < len(kept) < count
    data, note = result.content[0].text.split("\n\n")
    assert len(data.encode()) <= 65536 and orjson.loads(data) == result.structured_content
    assert note == (
        f"[Result cut to fit 65536 bytes: {count - len(kept)} of {count} items of `orders` left out. "
        "To see the rest, page or narrow the request with: limit, cursor, count.]"
    )


@pytest.mark.node
async def test_budgets_apply_after_filters_and_an_operation_can_lower_its_own(
    gateway: GatewayFactory, orders_url: str, idp: IdP
) -> None:
    token = idp.token(aud=AUDIENCE, sub="bob")
    # Of 30,000 orders bob's quarter stays, about 450 kB: the filtered rows are what gets cut.
    with gateway(shop_config(orders_url, idp, [ORDERS_FILTER])) as url:
        async with mcp_client(url + "/mcp", headers=bearer(token)) as client:
            result = await client.call_tool("shop_list_orders", {"count": 30_000})
            receipts = await client.call_tool("shop_list_receipts", {})
    assert result.structured_content is not None
    orders = result.structured_content["orders"]
    assert {o["userId"] for o in orders} == {"bob"} and set(orders[0]) == set(KEPT)
    assert "items of `orders` left out" in result.content[0].text
    assert receipts.structured_content is not None
    text, note = receipts.content[0].text.split("\n\n")
    assert len(text.encode()) <= 2048  # x-mcp-max-result-bytes: 2048 on this operation
    assert note.startswith("[Result cut to fit 2048 bytes: ") and "of the top-level array" in note
    assert note.endswith("page or narrow the request with: page.]")


async def test_a_text_result_is_cut_at_a_character_boundary(gateway: GatewayFactory, orders_url: str) -> None:
    with gateway(shop_config(orders_url, None, [], max_result_bytes=4096)) as url:
        async with mcp_client(url + "/mcp") as client:
            result = await client.call_tool("shop_get_notes", {"size": 10_001})
    text, note = result.content[0].text.split("\n\n[")
    assert 4096 - 3 < len(text.encode()) <= 4096  # a 3-byte character at most is left out at the cut
    assert note.startswith("Result cut to fit 4096 bytes: the last ") and note.endswith("with: search, size.]")
