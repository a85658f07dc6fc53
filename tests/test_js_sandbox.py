"""The JavaScript sandbox: the issue's scripts verbatim, what a script can reach, time and memory limits."""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcp_anything.config import ConfigError
from mcp_anything.js import POOL_SIZE, Sandbox
from mcp_anything.outbound.script import Fetcher
from mcp_anything.scripting import JS, CaseInsensitive, ScriptError
from tests.support.servers import ServerThread

pytestmark = pytest.mark.anyio

VALIDATE_TOKEN = """\
// scripts/validate_token.js
const token = headers["Authorization"] ?? "";
if (!token.startsWith("Bearer ")) return false;
// custom HMAC or structural check
return token.length > 20;
"""

GET_TOKEN = """\
// scripts/get_token.js
const resp = ctx.fetch("https://auth.example.com/token", {
  method: "POST",
  body: JSON.stringify({ client_id: ctx.env.CLIENT_ID, client_secret: ctx.env.CLIENT_SECRET }),
  headers: { "Content-Type": "application/json" },
});
return "Bearer " + resp.json().access_token;
"""


class TokenServer:
    """A token endpoint that records what it was sent, plus a redirect to another host and a large body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.app = Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/redirect", self._redirect),
                Route("/big", self._big),
                Route("/slow", self._slow),
            ]
        )

    async def _token(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return JSONResponse({"access_token": "tok-123", "token_type": "Bearer"}, headers={"X-Served-By": "idp"})

    async def _redirect(self, request: Request) -> Response:
        return RedirectResponse("http://elsewhere.example/token", 302)

    async def _slow(self, request: Request) -> Response:
        await anyio.sleep(3)
        return Response(b"late")

    async def _big(self, request: Request) -> Response:
        return Response(b"x" * (3 << 20))


class ToLocal(httpx2.BaseTransport):
    """Sends every request to the local server whatever its host: a stand-in for DNS in a unit test."""

    def __init__(self, base: str) -> None:
        self._base = httpx2.URL(base)
        self._inner = httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.url = request.url.copy_with(scheme="http", host=self._base.host, port=self._base.port)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@pytest.fixture(scope="module")
def token_server() -> Iterator[tuple[TokenServer, str]]:
    server = TokenServer()
    with ServerThread(server.app, lifespan="off") as running:
        yield server, running.url


@pytest.fixture
def fetcher(token_server: tuple[TokenServer, str]) -> Iterator[Fetcher]:
    fetch = Fetcher(["auth.example.com"], max_body=1 << 20, language=JS)
    # The shared client keeps its policy; only its transport is pointed at the local token server.
    fetch._client._client.close()
    fetch._client._client = httpx2.Client(follow_redirects=False, transport=ToLocal(token_server[1]))
    yield fetch
    fetch.close()


made: list[Sandbox] = []


@pytest.fixture(autouse=True)
def _close_sandboxes() -> Iterator[None]:
    yield
    while made:
        made.pop().close()


def sandbox(
    tmp_path: Path,
    source: str,
    *,
    timeout: float = 2.0,
    memory_limit_mb: int = 8,
    parameters: tuple[str, ...] = ("headers", "ctx"),
    **kwargs,
) -> Sandbox:
    path = tmp_path / "script.js"
    path.write_text(source)
    box = Sandbox(
        path,
        location="x.js.source",
        timeout=timeout,
        memory_limit_mb=memory_limit_mb,
        parameters=parameters,
        **kwargs,
    )
    made.append(box)
    return box


async def failure(box: Sandbox, inputs: dict | None = None) -> ScriptError:
    with pytest.raises(ScriptError) as caught:
        await box.run(inputs or {})
    return caught.value


def headers(**values: str) -> CaseInsensitive:
    return CaseInsensitive({k.lower().replace("_", "-"): v for k, v in values.items()})


class TestIssueScripts:
    @pytest.mark.parametrize(
        ("authorization", "allowed"),
        [
            ("Bearer 0123456789abcdefghij", True),
            ("Bearer short", False),
            ("Basic 0123456789abcdefghijklmnop", False),
            (None, False),
        ],
    )
    async def test_validate_token_verbatim(self, tmp_path: Path, authorization: str | None, allowed: bool) -> None:
        box = sandbox(tmp_path, VALIDATE_TOKEN, timeout=0.1, parameters=("headers",))
        given = headers(authorization=authorization) if authorization else headers()
        assert await box.run({"headers": given}) == (allowed,)

    async def test_get_token_verbatim(
        self, tmp_path: Path, fetcher: Fetcher, token_server: tuple[TokenServer, str]
    ) -> None:
        server, _ = token_server
        server.received.clear()
        env = {"CLIENT_ID": "gateway", "CLIENT_SECRET": "s3cr3t"}
        box = sandbox(tmp_path, GET_TOKEN, timeout=5, parameters=("ctx",), fetch=fetcher, env=env)
        assert await box.run({}) == ("Bearer tok-123",)
        sent_headers, body = server.received[-1]
        assert json.loads(body) == {"client_id": "gateway", "client_secret": "s3cr3t"}
        assert sent_headers["content-type"] == "application/json"

    async def test_fetch_response_shape(self, tmp_path: Path, fetcher: Fetcher) -> None:
        source = (
            'const r = ctx.fetch("https://auth.example.com/token", {method: "POST"});\n'
            'return [r.status, r.headers["X-Served-By"], r.headers["content-type"], JSON.parse(r.text()).token_type,'
            " r.json().access_token];"
        )
        box = sandbox(tmp_path, source, parameters=("ctx",), fetch=fetcher)
        assert await box.run({}) == ([200, "idp", "application/json", "Bearer", "tok-123"],)


class TestFetchLimits:
    async def test_a_host_that_is_not_allowed(self, tmp_path: Path, fetcher: Fetcher) -> None:
        box = sandbox(tmp_path, 'return ctx.fetch("https://evil.example/x").status', fetch=fetcher)
        error = await failure(box)
        assert (error.kind, error.message) == (
            "runtime",
            "script.js:1: Error: fetch: host 'evil.example' is not in js.allowed_hosts",
        )
        assert await sandbox(tmp_path, "return 1", fetch=fetcher).run({}) == (1,)

    async def test_a_redirect_is_not_followed(self, tmp_path: Path, fetcher: Fetcher) -> None:
        source = 'const r = ctx.fetch("https://auth.example.com/redirect"); return [r.status, r.headers.location];'
        box = sandbox(tmp_path, source, fetch=fetcher)
        assert await box.run({}) == ([302, "http://elsewhere.example/token"],)

    async def test_a_large_body_is_refused(self, tmp_path: Path, fetcher: Fetcher) -> None:
        box = sandbox(tmp_path, 'return ctx.fetch("https://auth.example.com/big").text().length', fetch=fetcher)
        error = await failure(box)
        assert "larger than memory_limit_mb" in error.message

    async def test_the_script_can_catch_a_refusal(self, tmp_path: Path, fetcher: Fetcher) -> None:
        source = 'try { ctx.fetch("ftp://auth.example.com/x") } catch (e) { return e.message }'
        assert await sandbox(tmp_path, source, fetch=fetcher).run({}) == (
            "fetch: only http and https URLs are allowed, got 'ftp'",
        )

    async def test_no_fetch_without_a_fetcher(self, tmp_path: Path) -> None:
        assert await sandbox(tmp_path, "return typeof ctx.fetch").run({}) == ("undefined",)


class TestEnv:
    async def test_only_listed_names(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        box = sandbox(tmp_path, "return [ctx.env.A, ctx.env.HOME, Object.keys(ctx.env)]", env={"A": "a"})
        with caplog.at_level(logging.WARNING, logger="mcp_anything.lua"):
            assert await box.run({}) == (["a", None, ["A"]],)
            assert await box.run({}) == (["a", None, ["A"]],)
        warnings = [r.getMessage() for r in caplog.records]
        assert warnings == [
            "script script.js read ctx.env.HOME, which is not listed in js.env (so it reads as nothing)"
        ]

    async def test_a_failure_after_reading_an_unlisted_name_names_the_setting(self, tmp_path: Path) -> None:
        box = sandbox(tmp_path, "return ctx.env.SECRET.length")
        with pytest.raises(ScriptError) as caught:
            await box.run({})
        assert caught.value.message.endswith("(it read ctx.env.SECRET, not listed in js.env)")

    async def test_env_cannot_be_changed(self, tmp_path: Path) -> None:
        source = "ctx.env.A = 'changed'; ctx.env.B = 'new'; return [ctx.env.A, ctx.env.B]"
        box = sandbox(tmp_path, source, env={"A": "a"})
        assert await box.run({}) == (["a", None],)


class TestEscapes:
    @pytest.mark.parametrize(
        "name",
        ["require", "process", "module", "exports", "setTimeout", "setInterval", "fetch", "XMLHttpRequest", "Deno",
         "Bun", "std", "os", "import", "__mcp_fetch", "__mcp_inputs", "__mcp_env", "__mcp_install"],
    )  # fmt: skip
    async def test_host_names_are_absent(self, tmp_path: Path, name: str) -> None:
        box = sandbox(tmp_path, f"return typeof globalThis[{name!r}]")
        assert await box.run({}) == ("undefined",)

    @pytest.mark.parametrize(
        ("source", "message"),
        [
            ('return require("fs")', "ReferenceError: require is not defined"),
            ("return process.env", "ReferenceError: process is not defined"),
            ('return eval("1 + 1")', "EvalError: eval is disabled in the sandbox"),
            ('return Function("return globalThis")()', "EvalError: Function is disabled in the sandbox"),
            ('return (() => {}).constructor("return 1")()', "EvalError: Function is disabled in the sandbox"),
            ('return (function* () {}).constructor("yield 1")', "EvalError: Function is disabled in the sandbox"),
            ('return (async () => {}).constructor("return 1")', "EvalError: Function is disabled in the sandbox"),
            ('return import("fs")', "Error: module not found: fs"),
            ("x = 1; return x", "ReferenceError: x is not defined"),
        ],
    )
    async def test_escape_attempts_are_errors(self, tmp_path: Path, source: str, message: str) -> None:
        box = sandbox(tmp_path, source)
        error = await failure(box)
        assert error.kind == "runtime"
        assert message in error.message
        assert error.message.startswith("script.js:")
        for _ in range(POOL_SIZE):  # every runtime answers again, the same way
            assert (await failure(box)).message == error.message

    async def test_no_state_survives_a_run(self, tmp_path: Path) -> None:
        source = """
        const before = [
          globalThis.leak, ({}).polluted, [].polluted, Array.prototype.map.name, JSON.tag, typeof Math.max
        ];
        globalThis.leak = 1;
        Object.prototype.polluted = 1;
        Array.prototype.polluted = 1;
        try { Object.defineProperty(Object.prototype, "polluted", {value: 1}) } catch (e) {}
        try { Array.prototype.map = null } catch (e) {}
        JSON.tag = 1;
        Math.max = null;
        try { Object.setPrototypeOf(Object.prototype, {polluted: 1}) } catch (e) {}
        try { (function* () {}).constructor.prototype.polluted = 1 } catch (e) {}
        headers.x = "changed";
        return [before, headers.x];
        """
        box = sandbox(tmp_path, source)
        for _ in range(3 * POOL_SIZE):  # every runtime in the pool runs it more than once
            assert await box.run({"headers": {"x": "a"}}) == ([[None, None, None, "map", None, "function"], "changed"],)

    async def test_no_regexp_statics_carry_a_match_over(self, tmp_path: Path) -> None:
        source = (
            "const before = [RegExp.$1, RegExp.lastMatch, RegExp.input];\n"
            "/(s3cret\\w+)/.exec(headers.x);\n"
            "return before"
        )
        box = sandbox(tmp_path, source)
        for n in range(2 * POOL_SIZE):
            assert await box.run({"headers": {"x": f"s3cret{n}"}}) == ([None, None, None],)

    async def test_globals_are_frozen(self, tmp_path: Path) -> None:
        source = "return [Object.isFrozen(globalThis), Object.isFrozen(Object.prototype), Object.isFrozen(JSON)]"
        assert await sandbox(tmp_path, source).run({}) == ([True, True, True],)

    async def test_this_and_globalthis_lead_nowhere(self, tmp_path: Path) -> None:
        source = (
            "const g = (function () { return this })();\n"
            "return [g === globalThis, Object.getOwnPropertyNames(g).filter(n => n.startsWith('__')).sort()]"
        )
        assert await sandbox(tmp_path, source).run({}) == ([True, ["__mcp_run"]],)

    async def test_the_runner_gives_the_same_inputs(self, tmp_path: Path) -> None:
        # The only global the sandbox adds runs the script again, with the same inputs, until the stack ends.
        box = sandbox(tmp_path, "return __mcp_run()")
        error = await failure(box)
        assert "Maximum call stack size exceeded" in error.message or error.kind == "memory"


class TestLimits:
    @pytest.mark.parametrize(
        "source",
        [
            "while (true) {}",
            "for (;;) { try { while (true) {} } catch (e) {} }",
            "while (true) { try { throw new Error('x') } catch (e) {} }",
            "const f = () => { try { return f() } catch (e) { return f() } }; while (true) f()",
            "while (true) [3, 1, 2].sort((a, b) => a - b)",
            "while (true) JSON.parse(JSON.stringify({a: [1, 2, 3]}))",
        ],
    )
    async def test_infinite_loops_end_at_the_timeout(self, tmp_path: Path, source: str) -> None:
        box = sandbox(tmp_path, "if (headers.spin) { " + source + " } return 'done'", timeout=0.2)
        started = time.monotonic()
        error = await failure(box, {"headers": {"spin": True}})
        assert error.kind == "timeout"
        assert 0.19 <= time.monotonic() - started < 1.0
        assert await box.run({"headers": {}}) == ("done",)

    async def test_the_worker_itself_is_free_after_a_timeout(self, tmp_path: Path) -> None:
        box = sandbox(tmp_path, "if (headers.spin) while (true) {} return 'done'", timeout=0.2)
        for _ in range(POOL_SIZE + 1):  # every runtime in the pool hits the timeout at least once
            assert (await failure(box, {"headers": {"spin": True}})).kind == "timeout"
        started = time.monotonic()
        assert await box.run({"headers": {}}) == ("done",)
        assert time.monotonic() - started < 0.1

    async def test_fetch_time_counts_against_the_timeout(self, tmp_path: Path, fetcher: Fetcher) -> None:
        source = 'ctx.fetch("https://auth.example.com/token", {method: "POST"}); while (true) {}'
        box = sandbox(tmp_path, source, timeout=0.3, fetch=fetcher)
        started = time.monotonic()
        assert (await failure(box)).kind == "timeout"
        assert time.monotonic() - started < 1.0

    async def test_a_slow_fetch_ends_at_the_timeout(self, tmp_path: Path, fetcher: Fetcher) -> None:
        box = sandbox(tmp_path, 'return ctx.fetch("https://auth.example.com/slow").status', timeout=0.3, fetch=fetcher)
        started = time.monotonic()
        error = await failure(box)
        assert time.monotonic() - started < 1.0
        assert (error.kind, error.message) == (
            "runtime",
            "script.js:1: Error: fetch: auth.example.com did not answer within the script's timeout",
        )

    @pytest.mark.parametrize(
        "source",
        [
            'let s = "x"; while (true) s += s;',
            'return "x".repeat(64 * 1024 * 1024)',
            "const a = []; while (true) a.push({x: 1});",
            'const a = []; while (true) a.push("y".repeat(1024) + a.length);',
            "return new Array(1e9).fill(0)",
            "return new ArrayBuffer(1 << 30)",
            'const m = new Map(); for (let i = 0; ; i++) m.set(i, "v" + i);',
        ],
    )
    async def test_memory_bombs_are_stopped(self, tmp_path: Path, source: str) -> None:
        box = sandbox(tmp_path, "if (headers.bomb) { " + source + " } return 'ok'", memory_limit_mb=8, timeout=2)
        started = time.monotonic()
        error = await failure(box, {"headers": {"bomb": True}})
        assert error.kind in ("memory", "runtime")
        assert any(word in error.message for word in ("memory", "too long", "too large", "invalid array length"))
        assert time.monotonic() - started < 1.5
        for _ in range(POOL_SIZE):
            assert await box.run({"headers": {}}) == ("ok",)

    async def test_huge_strings_from_inputs(self, tmp_path: Path) -> None:
        box = sandbox(tmp_path, "return headers.big.length", memory_limit_mb=8)
        error = await failure(box, {"headers": {"big": "x" * (20 << 20)}})
        assert error.kind in ("memory", "result")
        assert await box.run({"headers": {"big": "x" * 1000}}) == (1000,)

    async def test_deep_recursion_is_an_error(self, tmp_path: Path) -> None:
        error = await failure(sandbox(tmp_path, "const f = () => 1 + f(); return f()"))
        assert error.kind in ("runtime", "memory")


class TestContract:
    async def test_modern_syntax(self, tmp_path: Path) -> None:
        source = """
        const {a = 1, ...rest} = {b: 2, c: 3};
        const add = (x, y) => x + y;
        class Box { #v; constructor(v) { this.#v = v } get v() { return this.#v } }
        const items = [...[1, 2], 3].map((n) => n * 2);
        const text = `${a}-${JSON.stringify(rest)}-${add(1, 2)}-${new Box(4).v}`;
        return `${text}-${items.at(-1)}-${null ?? "d"}-${undefined?.x}`;
        """
        assert await sandbox(tmp_path, source).run({}) == ('1-{"b":2,"c":3}-3-4-6-d-undefined',)

    async def test_headers_read_in_any_case(self, tmp_path: Path) -> None:
        box = sandbox(tmp_path, 'return [headers["Authorization"], headers.authorization, "AUTHORIZATION" in headers]')
        assert await box.run({"headers": headers(authorization="Bearer t")}) == (["Bearer t", "Bearer t", True],)

    async def test_parameters_by_name(self, tmp_path: Path) -> None:
        box = sandbox(tmp_path, "return [method, path, headers === null]", parameters=("headers", "method", "path"))
        assert await box.run({"method": "POST", "path": "/mcp"}) == (["POST", "/mcp", True],)  # missing: null

    async def test_results_become_plain_python(self, tmp_path: Path) -> None:
        box = sandbox(tmp_path, 'return {n: 1, f: 2.5, s: "s", t: true, z: null, u: undefined, l: [1, {a: "b"}]}')
        ((result,),) = [await box.run({})]
        assert {k: v for k, v in result.items() if k != "u"} == {
            "n": 1, "f": 2.5, "s": "s", "t": True, "z": None, "l": [1, {"a": "b"}]
        }  # fmt: skip

    async def test_a_promise_is_settled(self, tmp_path: Path) -> None:
        assert await sandbox(tmp_path, "return (async () => { await null; return 7 })()").run({}) == (7,)

    async def test_a_promise_that_never_settles_is_an_error(self, tmp_path: Path) -> None:
        started = time.monotonic()
        error = await failure(sandbox(tmp_path, "return new Promise(() => {})", timeout=1))
        assert error.kind == "runtime"
        assert time.monotonic() - started < 0.5

    @pytest.mark.parametrize("source", ["return () => 1", "const o = {}; o.o = o; return o", "return Symbol('x')"])
    async def test_unconvertible_results(self, tmp_path: Path, source: str) -> None:
        assert (await failure(sandbox(tmp_path, source))).kind == "result"

    async def test_runtime_error_names_the_line(self, tmp_path: Path) -> None:
        error = await failure(sandbox(tmp_path, "const x = 1;\nreturn x.y.z;"))
        assert (error.kind, error.message) == (
            "runtime",
            "script.js:2: TypeError: cannot read property 'z' of undefined",
        )

    async def test_an_error_in_a_nested_function_names_its_line(self, tmp_path: Path) -> None:
        error = await failure(sandbox(tmp_path, "const f = () => {\n  throw new RangeError('bad');\n};\nreturn f();"))
        assert error.message == "script.js:2: RangeError: bad"

    def test_syntax_error_is_a_config_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as caught:
            sandbox(tmp_path, "const a = ;")
        (problem,) = caught.value.problems
        assert problem.startswith("x.js.source: JavaScript syntax error: 1: SyntaxError: ")

    def test_the_source_cannot_break_out_of_its_function(self, tmp_path: Path) -> None:
        for source in ["});\nglobalThis.x = 1;\n(function () {", "}, globalThis.x = 1, function () {"]:
            with pytest.raises(ConfigError, match="closes its function early"):
                sandbox(tmp_path, source)

    def test_missing_file_is_a_config_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as caught:
            Sandbox(tmp_path / "nope.js", location="x.js.source", timeout=1, memory_limit_mb=4, parameters=())
        assert caught.value.problems == [f"x.js.source: file not found: {tmp_path / 'nope.js'}"]


def js_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("js-script.js-")]


async def test_close_stops_the_workers(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "return 1")
    assert len(js_threads()) == POOL_SIZE
    box.close()
    for thread in js_threads():
        thread.join(timeout=5)
    assert js_threads() == []


async def test_a_dropped_sandbox_stops_its_workers(tmp_path: Path) -> None:
    path = tmp_path / "script.js"
    path.write_text("return 1")
    box = Sandbox(path, location="x", timeout=1, memory_limit_mb=4, parameters=())
    assert await box.run({}) == (1,)
    del box
    gc.collect()
    for thread in js_threads():
        thread.join(timeout=5)
    assert js_threads() == []


async def test_concurrent_runs_each_see_their_own_inputs(tmp_path: Path) -> None:
    source = """
    const seen = globalThis.last;
    let x = 0; for (let i = 0; i < 20000; i++) x += i;
    try { globalThis.last = headers["X-N"] } catch (e) {}
    return [headers["X-N"], seen === undefined, headers.authorization.startsWith("Bearer ")];
    """
    box = sandbox(tmp_path, source, timeout=10)
    results: dict[int, tuple] = {}

    async def one(n: int) -> None:
        results[n] = await box.run({"headers": headers(x_n=str(n), authorization=f"Bearer {n}")})

    async with anyio.create_task_group() as tg:
        for n in range(100):
            tg.start_soon(one, n)
    assert results == {n: ([str(n), True, True],) for n in range(100)}
