"""Concurrent calls refused with one token renew it once: a real gateway, oauth2-mock-server as the
token endpoint (directly, or through a Lua or JavaScript script's `fetch`), and an upstream that
refuses the first token it sees, answering each refusal a little later than the one before, so
some refusals arrive after a new token is already held."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.types import Receive, Scope, Send

from tests.support.gateway import GatewayFactory, echo_config
from tests.support.idp import IdP
from tests.support.mcp import mcp_client
from tests.support.servers import ServerThread

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.node]

EXAMPLES = Path(__file__).parent.parent / "examples"
SECRET = "upstream-s3cret_value"
CALLS = 8
STAGGER = 0.05  # seconds between one refusal and the next


class RefusingUpstream:
    """401 for the first Authorization it sees (the n-th refusal after n * STAGGER seconds), 200 for any other."""

    def __init__(self) -> None:
        self.refused: str | None = None
        self.refusals = 0
        self.accepted: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        authorization = dict(scope["headers"]).get(b"authorization", b"").decode()
        if self.refused is None:
            self.refused = authorization
        if authorization == self.refused:
            self.refusals += 1
            await asyncio.sleep(self.refusals * STAGGER)
            status, body = 401, b'{"error": "invalid_token"}'
        else:
            self.accepted.append(authorization)
            status, body = 200, orjson.dumps({"ok": True})
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def refusing() -> Iterator[tuple[RefusingUpstream, str]]:
    upstream = RefusingUpstream()
    with ServerThread(upstream, lifespan="off") as server:
        yield upstream, server.url


def client_credentials(idp: IdP) -> dict[str, Any]:
    block = {"token_url": idp.token_url, "client_id": "gateway", "client_secret": "${UPSTREAM_SECRET}"}
    return {"strategy": "oauth2_client_credentials", "oauth2_client_credentials": block}


def lua(idp: IdP) -> dict[str, Any]:
    params = {"token_url": idp.token_url, "client_id": "gateway", "client_secret": "${UPSTREAM_SECRET}"}
    block = {"source": str(EXAMPLES / "get_token.lua"), "allowed_hosts": ["127.0.0.1"], "timeout": "5s"}
    return {"strategy": "lua", "lua": {**block, "params": params}}


JS_GET_TOKEN = """
const secret = encodeURIComponent(ctx.env.UPSTREAM_SECRET);
const form = `grant_type=client_credentials&client_id=gateway&client_secret=${secret}`;
const response = ctx.fetch(ctx.env.TOKEN_URL, {
  method: "POST",
  headers: { "Content-Type": "application/x-www-form-urlencoded" },
  body: form,
});
if (response.status !== 200) throw new Error(`token endpoint answered HTTP ${response.status}`);
return ["Bearer " + response.json().access_token, 300];
"""


@pytest.mark.parametrize("strategy", ["oauth2_client_credentials", "lua", "js"])
async def test_concurrent_401s_for_one_token_make_one_token_request(
    gateway: GatewayFactory,
    idp: IdP,
    refusing: tuple[RefusingUpstream, str],
    tmp_path: Path,
    strategy: str,
) -> None:
    idp.configure(clients={"gateway": SECRET})
    upstream, upstream_url = refusing
    env = {"UPSTREAM_SECRET": SECRET, "TOKEN_URL": idp.token_url}
    if strategy == "oauth2_client_credentials":
        outbound = client_credentials(idp)
    elif strategy == "lua":
        outbound = lua(idp)
    else:
        (tmp_path / "get_token.js").write_text(JS_GET_TOKEN)
        env_names = ["UPSTREAM_SECRET", "TOKEN_URL"]
        block = {"source": str(tmp_path / "get_token.js"), "allowed_hosts": ["127.0.0.1"], "env": env_names}
        outbound = {"strategy": "js", "js": {**block, "timeout": "5s"}}
    raw = echo_config(upstream_url, outbound_auth=outbound, timeout="10s")
    with gateway(raw, env=env) as url:
        async with mcp_client(url + "/mcp") as client:
            results = await asyncio.gather(
                *(client.call_tool("echo_get_item", {"itemId": str(i)}) for i in range(CALLS))
            )
    assert [r.is_error for r in results] == [False] * CALLS
    assert upstream.refusals == CALLS  # every call was refused once, with the same token...
    assert len(set(upstream.accepted)) == 1  # ...and retried with one new token
    assert len(idp.requests("/token")) == 2  # the first token and its one replacement
