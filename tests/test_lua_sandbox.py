"""The shared Lua sandbox: what a script can reach, and the time and memory limits."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from mcp_anything.config import ConfigError
from mcp_anything.lua import Sandbox
from mcp_anything.scripting import CaseInsensitive, ScriptError
from tests.support.loop import loop_ticks_while

pytestmark = pytest.mark.anyio


def sandbox(tmp_path: Path, source: str, *, timeout: float = 2.0, memory_limit_mb: int = 4, **kwargs) -> Sandbox:
    path = tmp_path / "script.lua"
    path.write_text(source)
    return Sandbox(path, location="x.lua.source", timeout=timeout, memory_limit_mb=memory_limit_mb, **kwargs)


async def failure(box: Sandbox, inputs: dict | None = None) -> ScriptError:
    with pytest.raises(ScriptError) as caught:
        await box.run(inputs or {})
    return caught.value


FORBIDDEN = [
    "os", "io", "package", "require", "load", "loadstring", "dofile", "loadfile", "debug", "collectgarbage",
    "rawset", "rawget", "rawequal", "rawlen", "setmetatable", "getmetatable", "coroutine", "print", "python",
    "_G", "xpcall",
]  # fmt: skip


@pytest.mark.parametrize("name", FORBIDDEN)
async def test_forbidden_global_is_absent(tmp_path: Path, name: str) -> None:
    assert await sandbox(tmp_path, f"return type({name})").run({}) == ("nil",)


async def test_only_the_safe_globals_exist(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "local names = {} for k in pairs(_ENV) do names[#names + 1] = k end return names")
    (names,) = await box.run({})
    assert sorted(names) == sorted(
        ["string", "table", "math", "utf8", "assert", "error", "ipairs", "next", "pairs", "pcall", "select",
         "tonumber", "tostring", "type", "unpack", "ctx"]
    )  # fmt: skip


@pytest.mark.parametrize(
    "source",
    [
        "return string.dump",
        'return ("").dump',  # through the shared string metatable
        "return _ENV.string.dump",
        'return ("").__index',
    ],
)
async def test_string_dump_is_gone(tmp_path: Path, source: str) -> None:
    assert await sandbox(tmp_path, source).run({}) == (None,)


@pytest.mark.parametrize(
    "source",
    [
        'return getmetatable("").__index',
        "return debug.getregistry()",
        'return load("return 1")()',
        'return require("os")',
        "return os.getenv('HOME')",
        "return io.open('/etc/passwd')",
        'return package.loadlib("libc.so.6", "system")',
        "return python.eval('1')",
    ],
)
async def test_escape_attempts_are_errors(tmp_path: Path, source: str) -> None:
    error = await failure(sandbox(tmp_path, source))
    assert error.kind == "runtime"


async def test_state_does_not_leak_between_calls(tmp_path: Path) -> None:
    box = sandbox(
        tmp_path,
        "local before = leaked == nil and string.upper ~= nil and headers.x == 'a'\n"
        "leaked = true; string.upper = nil; table.insert = nil; headers.x = 'changed'\n"
        "return before",
    )
    for _ in range(10):  # more calls than runtimes in the pool
        assert await box.run({"headers": {"x": "a"}}) == (True,)


async def test_host_functions_are_plain_lua_functions(tmp_path: Path) -> None:
    def shout(text: str) -> str:
        return text.upper()

    box = sandbox(
        tmp_path,
        "local ok, err = pcall(function() return shout.__class__ end)\nreturn type(shout), ok, shout('hi')",
        functions={"shout": shout},
    )
    assert await box.run({}) == ("function", False, "HI")


async def test_host_function_errors_reach_the_script_as_strings(tmp_path: Path) -> None:
    def broken(_: object) -> None:
        raise ValueError("internal detail")

    def refusing(_: object) -> None:
        raise ScriptError("runtime", "refused: no")

    box = sandbox(
        tmp_path,
        "local ok1, e1 = pcall(broken, 1)\nlocal ok2, e2 = pcall(refusing, 1)\nreturn ok1, type(e1), e1, ok2, e2",
        functions={"broken": broken, "refusing": refusing},
    )
    ok1, kind, message, ok2, refused = await box.run({})
    assert (ok1, kind, ok2) == (False, "string", False)
    assert "internal detail" not in message
    assert refused.endswith("refused: no")


async def test_case_insensitive_tables(tmp_path: Path) -> None:
    box = sandbox(tmp_path, 'return h["Authorization"], h.authorization, h["AUTHORIZATION"], h["x-other"]')
    assert await box.run({"h": CaseInsensitive({"authorization": "Bearer t"})}) == ("Bearer t",) * 3 + (None,)


async def test_results_become_plain_python(tmp_path: Path) -> None:
    box = sandbox(tmp_path, 'return 1, 2.5, "s", true, nil, {1, 2, {a = "b"}}, {}')
    assert await box.run({}) == (1, 2.5, "s", True, None, [1, 2, {"a": "b"}], {})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("return print", "cannot use a Lua nil"),  # absent: nil is fine, see below
        ("return function() end", "cannot use a Lua function"),
        ('return {1, a = "b"}', "needs all-string keys or list keys 1..n"),
        ("return {1, nil, 3}", "needs all-string keys or list keys 1..n"),
        ('return "\\255"', "not valid UTF-8"),
        ("local t = {} t.t = t return t", "nested deeper"),
    ],
)
async def test_unconvertible_results(tmp_path: Path, source: str, message: str) -> None:
    if source == "return print":
        assert await sandbox(tmp_path, source).run({}) == (None,)
        return
    error = await failure(sandbox(tmp_path, source))
    assert (error.kind, message in error.message) == ("result", True)


@pytest.mark.parametrize(
    "source",
    [
        "while true do end",
        "local i = 0 repeat i = i + 1 until false",
        "while true do pcall(function() while true do end end) end",  # pcall cannot swallow the timeout
        "local function f() return pcall(f) end while true do f() end",
        "while true do local ok = pcall(error, 'x') end",
        'while true do string.gsub("aaaa", "a", function(c) return c end) end',
        "local t = {} for i = 1, 100 do t[i] = i end while true do table.sort(t, function(a, b) return a > b end) end",
    ],
)
async def test_infinite_loops_end_at_the_timeout(tmp_path: Path, source: str) -> None:
    box = sandbox(tmp_path, source, timeout=0.2)
    started = time.monotonic()
    error = await failure(box)
    elapsed = time.monotonic() - started
    assert error.kind == "timeout"
    assert 0.19 <= elapsed < 1.0  # cut at the timeout, with room for a loaded machine
    # The runtime is usable again afterwards.
    ok = sandbox(tmp_path, "return 1")
    assert await ok.run({}) == (1,)


@pytest.mark.parametrize(
    "source",
    [
        'local s = string.rep("x", 1e6) while true do local t = s:upper() end',  # long C calls
        'local s = string.rep("x", 1e6) while true do local t = s .. "y" end',  # long instructions
    ],
)
def test_the_worker_itself_stops_near_the_deadline(tmp_path: Path, source: str) -> None:
    # Not just the awaiting caller: the thread running the script is free again soon after.
    box = sandbox(tmp_path, source, timeout=0.2, memory_limit_mb=8)
    started = time.monotonic()
    with pytest.raises(ScriptError, match="timeout"):
        box._call({}, started + 0.2)
    assert time.monotonic() - started < 1.0


async def test_a_sandbox_recovers_after_a_timeout(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "if spin then while true do end end return 'done'", timeout=0.3)
    for _ in range(5):  # every runtime in the pool hits the timeout once
        assert (await failure(box, {"spin": True})).kind == "timeout"
    assert await box.run({"spin": False}) == ("done",)


@pytest.mark.parametrize(
    "source",
    [
        'local s = "x" while true do s = s .. s end',
        'return string.rep("x", 64 * 1024 * 1024)',
        "local t = {} for i = 1, 1e9 do t[i] = i end",
        "local t = {} while true do t[#t + 1] = {} end",
        'local t = {} while true do pcall(function() t[#t + 1] = string.rep("y", 1024) end) end',
        'return table.concat({string.rep("z", 3 * 1024 * 1024), string.rep("z", 3 * 1024 * 1024)})',
    ],
)
async def test_memory_bombs_are_stopped(tmp_path: Path, source: str) -> None:
    box = sandbox(tmp_path, "if bomb then " + source + " end return collectgarbage", memory_limit_mb=4, timeout=2)
    started = time.monotonic()
    assert (await failure(box, {"bomb": True})).kind == "memory"
    assert time.monotonic() - started < 1
    assert await box.run({"bomb": False}) == (None,)


async def test_deep_recursion_is_an_error(tmp_path: Path) -> None:
    error = await failure(sandbox(tmp_path, "local function f() return 1 + f() end return f()", timeout=2))
    assert error.kind in ("runtime", "memory")


async def test_runtime_error_names_the_line(tmp_path: Path) -> None:
    error = await failure(sandbox(tmp_path, "local x = 1\nreturn x + nil"))
    assert error.kind == "runtime"
    assert error.message.startswith("script.lua:2: attempt to perform arithmetic on a nil value")


def test_syntax_error_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        sandbox(tmp_path, "return (")
    assert caught.value.problems == ["x.lua.source: Lua syntax error: script.lua:1: unexpected symbol near <eof>"]


def test_precompiled_bytecode_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "script.lua"
    path.write_bytes(b"\x1bLua\x54\x00")
    with pytest.raises(ConfigError, match="attempt to load a binary chunk"):
        Sandbox(path, location="x.lua.source", timeout=1, memory_limit_mb=4)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Sandbox(tmp_path / "nope.lua", location="x.lua.source", timeout=1, memory_limit_mb=4)
    assert caught.value.problems == [f"x.lua.source: file not found: {tmp_path / 'nope.lua'}"]


async def test_concurrent_calls_each_see_their_own_inputs(tmp_path: Path) -> None:
    box = sandbox(
        tmp_path,
        "local x = 0 for i = 1, 20000 do x = x + i end\nreturn n, headers['X-N']",
        timeout=5,
    )
    results: dict[int, tuple] = {}

    async def one(n: int) -> None:
        results[n] = await box.run({"n": n, "headers": CaseInsensitive({"x-n": str(n)})})

    async with anyio.create_task_group() as tg:
        for n in range(200):
            tg.start_soon(one, n)
    assert results == {n: (n, str(n)) for n in range(200)}


async def test_slow_scripts_do_not_block_the_event_loop(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "while true do end", timeout=0.3)
    ticks = await loop_ticks_while(failure(box))
    assert ticks >= 5  # about 30 when idle; a blocked loop would manage 0 or 1


async def test_ctx_env_shows_only_the_listed_variables(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = sandbox(tmp_path, "return ctx.env.CLIENT_ID, ctx.env.HOME, ctx.env.HOME", env={"CLIENT_ID": "gateway"})
    assert await box.run({}) == ("gateway", None, None)
    (warning,) = [r.getMessage() for r in caplog.records if "ctx.env" in r.getMessage()]
    assert warning == "script script.lua read ctx.env.HOME, which is not listed in lua.env (so it reads as nothing)"


async def test_ctx_env_changes_do_not_reach_the_next_call(tmp_path: Path) -> None:
    box = sandbox(
        tmp_path,
        "local before = ctx.env.A; ctx.env.A = 'changed'; ctx.env.B = 'new'; return before, ctx.env.B",
        env={"A": "listed"},
    )
    for _ in range(6):  # more calls than runtimes in the pool
        assert await box.run({}) == ("listed", "new")


async def test_a_failure_after_reading_an_unlisted_name_says_which_setting_lists_it(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "return 'Bearer ' .. ctx.env.SECRET")
    error = await failure(box)
    assert error.kind == "runtime"
    assert error.message.endswith("(it read ctx.env.SECRET, not listed in lua.env)")
    # The note belongs to that run only.
    assert "ctx.env" not in (await failure(sandbox(tmp_path, "error('plain', 0)"))).message


async def test_ctx_fetch_is_the_fetch_function(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "return ctx.fetch == fetch, ctx.fetch('u')", functions={"fetch": lambda url: url.upper()})
    assert await box.run({}) == (True, "U")
