"""`inbound_auth: {strategy: lua}`: the script's answer becomes an Identity or a 401."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import anyio
import pytest
from starlette.datastructures import Headers

from mcp_anything.config import ConfigError, parse_config
from mcp_anything.inbound import AuthError, InboundRequest, create_authenticator
from mcp_anything.inbound.script import ScriptAuthenticator

EXAMPLES = Path(__file__).parent.parent / "examples"

pytestmark = pytest.mark.anyio


def authenticator(tmp_path: Path, source: str | None = None, **lua: object) -> ScriptAuthenticator:
    if source is not None:
        (tmp_path / "auth.lua").write_text(source)
    config = parse_config(
        {
            "groups": [
                {"name": "open", "endpoint": "/open/mcp", "upstreams": ["api"], "inbound_auth": {"strategy": "none"}},
                {
                    "name": "g",
                    "upstreams": ["api"],
                    "inbound_auth": {"strategy": "lua", "lua": {"source": "auth.lua", "timeout": "1s", **lua}},
                },
            ],
            "upstreams": [{"name": "api", "openapi": {"source": "spec.yaml"}}],
        },
        base_dir=tmp_path,
        env={"ADMINS": "alice"},
    )
    auth = create_authenticator(config.groups[1].inbound_auth, config)
    assert isinstance(auth, ScriptAuthenticator)
    return auth


def request(headers: dict[str, str] | None = None, method: str = "POST", path: str = "/mcp") -> InboundRequest:
    return InboundRequest(method=method, path=path, headers=Headers(headers or {}))


async def denied(auth: ScriptAuthenticator, req: InboundRequest | None = None) -> AuthError:
    with pytest.raises(AuthError) as caught:
        await auth.authenticate(req or request())
    assert caught.value.status == 401
    return caught.value


async def test_true_with_claims_becomes_the_identity(tmp_path: Path) -> None:
    auth = authenticator(
        tmp_path,
        'return true, {sub = "alice", scope = "read write", groups = {"ops", "dev"}, meta = {level = 3}}',
    )
    identity = await auth.authenticate(request())
    assert identity.strategy == "lua"
    assert identity.subject == "alice"
    assert identity.scopes == {"read", "write"}
    assert identity.claims == {"sub": "alice", "scope": "read write", "groups": ["ops", "dev"], "meta": {"level": 3}}
    assert type(identity.claims) is dict


async def test_scope_may_be_a_list(tmp_path: Path) -> None:
    identity = await authenticator(tmp_path, 'return true, {sub = "svc", scope = {"a", "b"}}').authenticate(request())
    assert identity.scopes == {"a", "b"}


async def test_true_alone_is_an_anonymous_lua_identity(tmp_path: Path) -> None:
    identity = await authenticator(tmp_path, "return true").authenticate(request())
    assert (identity.strategy, identity.subject, identity.scopes, dict(identity.claims)) == ("lua", None, set(), {})


async def test_an_empty_sub_is_no_subject_so_callers_stay_apart(tmp_path: Path) -> None:
    # `sub = ""` names nobody: like a JWT's empty `sub`, the caller is told apart by its credential,
    # or every caller the script lets in would share one principal (and so each other's sessions).
    auth = authenticator(tmp_path, 'return true, {sub = ""}')
    first = await auth.authenticate(request({"Authorization": "Bearer token-one"}))
    second = await auth.authenticate(request({"Authorization": "Bearer token-two"}))
    assert first.subject is None and second.subject is None
    assert first.principal.startswith("lua#credential:") and first.principal != second.principal


async def test_the_script_sees_method_path_and_case_insensitive_headers(tmp_path: Path) -> None:
    auth = authenticator(
        tmp_path,
        'return headers["Authorization"] == "Bearer t" and headers.authorization == "Bearer t"\n'
        '  and headers["X-Multi"] == "a, b" and method == "GET" and path == "/team/mcp"',
    )
    req = InboundRequest(
        method="GET",
        path="/team/mcp",
        headers=Headers(raw=[(b"authorization", b"Bearer t"), (b"x-multi", b"a"), (b"x-multi", b"b")]),
    )
    assert (await auth.authenticate(req)).strategy == "lua"


async def test_false_is_a_401(tmp_path: Path) -> None:
    error = await denied(authenticator(tmp_path, "return false"))
    assert error.description == "the authentication script denied the request"


@pytest.mark.parametrize(
    "source",
    [
        "return nil",
        "return",
        'return "yes"',
        "return 1",
        "return {}",
        'return true, "alice"',
        "return true, {sub = {}}",
        "return true, {scope = 3}",
        "return true, {1, 2}",
    ],
)
async def test_anything_but_a_boolean_and_claims_is_denied(tmp_path: Path, source: str, caplog) -> None:
    caplog.set_level(logging.WARNING)
    await denied(authenticator(tmp_path, source))
    assert "auth.lua" in caplog.text
    assert "result error" in caplog.text


async def test_script_error_is_denied_and_logged_without_header_values(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    secret = "Bearer sekrit-token-value-123456"
    auth = authenticator(tmp_path, 'error("token rejected: " .. headers.authorization .. "/" .. headers.cookie)')
    error = await denied(auth, request({"Authorization": secret, "Cookie": "session=abcdef123456"}))
    assert error.description == "the authentication script could not verify the request"
    assert "auth.lua" in caplog.text and "runtime error" in caplog.text
    assert "sekrit-token-value" not in caplog.text
    assert "abcdef123456" not in caplog.text
    assert "sekrit" not in error.description


async def test_runtime_error_is_denied(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    await denied(authenticator(tmp_path, "return headers.authorization:sub(1, 7)"))
    assert "auth.lua:1: attempt to index a nil value" in caplog.text


async def test_infinite_loop_is_denied_at_the_timeout(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    auth = authenticator(tmp_path, "while true do end", timeout="100ms")
    started = time.monotonic()
    await denied(auth)
    # Stopped near its 100 ms deadline rather than run forever; the room is for a loaded machine.
    assert time.monotonic() - started < 1.0
    assert "timeout error" in caplog.text


async def test_memory_bomb_is_denied(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    auth = authenticator(tmp_path, 'local s = "x" while true do s = s .. s end', memory_limit_mb=2, timeout="2s")
    await denied(auth)
    assert "memory error" in caplog.text


@pytest.mark.parametrize("name", ["os", "io", "package", "require", "load", "loadstring", "dofile", "debug"])
async def test_forbidden_globals_deny(tmp_path: Path, name: str) -> None:
    # Using a missing library is an error, so the request is denied rather than let through.
    await denied(authenticator(tmp_path, f"return {name}.x ~= nil or {name}() ~= nil"))


async def test_coroutine_loops_are_impossible(tmp_path: Path) -> None:
    await denied(authenticator(tmp_path, "coroutine.wrap(function() while true do coroutine.yield() end end)()"))


async def test_params_reach_the_script_from_the_config(tmp_path: Path) -> None:
    auth = authenticator(
        tmp_path, 'return params.admins == "alice", {sub = params.admins}', params={"admins": "${ADMINS}"}
    )
    assert (await auth.authenticate(request())).subject == "alice"


def test_syntax_error_names_the_config_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        authenticator(tmp_path, "if then")
    (problem,) = caught.value.problems
    assert problem.startswith("inbound_auth.lua.source: Lua syntax error: auth.lua:1:")


def test_missing_script_names_the_config_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^inbound_auth\.lua\.source: file not found"):
        authenticator(tmp_path)


async def test_concurrent_requests_get_their_own_identity(tmp_path: Path) -> None:
    auth = authenticator(
        tmp_path,
        "local x = 0 for i = 1, 5000 do x = x + i end\n"
        'return true, {sub = headers.authorization:match("^Bearer (.+)$")}',
        timeout="5s",
    )
    subjects: dict[int, str | None] = {}

    async def one(n: int) -> None:
        subjects[n] = (await auth.authenticate(request({"Authorization": f"Bearer user-{n}"}))).subject

    async with anyio.create_task_group() as tg:
        for n in range(100):
            tg.start_soon(one, n)
    assert subjects == {n: f"user-{n}" for n in range(100)}


class TestShippedExample:
    @pytest.fixture
    def auth(self, tmp_path: Path) -> ScriptAuthenticator:
        shutil.copy(EXAMPLES / "validate_token.lua", tmp_path / "auth.lua")
        return authenticator(tmp_path, params={"admins": "${ADMINS} bob"})

    async def test_accepts_a_well_formed_token(self, auth: ScriptAuthenticator) -> None:
        identity = await auth.authenticate(request({"Authorization": "Bearer carol.0123456789abcdef"}))
        assert (identity.subject, identity.scopes) == ("carol", {"tools:read"})
        assert identity.claims["auth_method"] == "lua-example"

    async def test_admins_get_the_write_scope(self, auth: ScriptAuthenticator) -> None:
        identity = await auth.authenticate(request({"authorization": "Bearer alice.0123456789abcdef"}))
        assert identity.scopes == {"tools:read", "tools:write"}

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": "Basic YWxpY2U6cHc="},
            {"Authorization": "Bearer short"},
            {"Authorization": "Bearer no-dot-in-this-token"},
        ],
    )
    async def test_denies_other_requests(self, auth: ScriptAuthenticator, headers: dict[str, str]) -> None:
        await denied(auth, request(headers))
