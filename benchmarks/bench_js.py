"""Cost of the JavaScript sandbox, and the engine comparison behind its choice.

`python -m benchmarks.bench_js` measures mcp_anything.js beside mcp_anything.lua:
per-call p50 and mean of an inbound check through `Sandbox.run` (worker-thread
handoff included) and of the script alone, load time, memory per runtime, and
how long the event loop waits while a runaway script runs.

`python -m benchmarks.bench_js --engines` checks each candidate engine that is
installed (`jsbox`, `quickjs` or `quickjs-ng` (both install the module `quickjs`),
`mini-racer`) against the sandbox's requirements and measures it on its own. It
needs only the engines, so it runs in a bare virtualenv per engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import inspect
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEADERS = {
    "authorization": "Bearer alice.0123456789abcdef0123456789",
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-session-id": "0123456789abcdef",
    "user-agent": "bench",
}
VALIDATE_TOKEN = """\
const token = headers["Authorization"] ?? "";
if (!token.startsWith("Bearer ")) return false;
return token.length > 20;
"""
CHECK = "function check(headers) {" + VALIDATE_TOKEN.replace('"Authorization"', '"authorization"') + "}"
RUNAWAY = "let x = 0; for (;;) { x++ }"


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


async def p50_mean(call: Callable[[], object], n: int = 5000) -> tuple[float, float]:
    """p50 and mean in µs of `call()` (awaited when it returns an awaitable), after 200 warm-up calls."""
    samples = []
    for i in range(200 + n):
        started = time.perf_counter()
        result = call()
        if inspect.isawaitable(result):
            await result
        if i >= 200:
            samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6, statistics.fmean(samples) * 1e6


def show(label: str, figures: tuple[float, float]) -> None:
    print(f"{label:<58} p50 {figures[0]:8.1f} us   mean {figures[1]:8.1f} us")


class Ticker:
    """`with Ticker() as ticker:` counts 1 ms sleeps another thread completes: about 1 per ms while the
    GIL is free, hardly any while the block holds it (as a JS engine that keeps the GIL does)."""

    def __enter__(self) -> Ticker:
        self.ticks = 0
        self.started = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._tick)
        self._thread.start()
        return self

    def _tick(self) -> None:
        while not self._done.is_set():
            time.sleep(0.001)
            self.ticks += 1

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.started
        self._done.set()
        self._thread.join()


async def sandboxes() -> None:
    from mcp_anything import js, lua
    from mcp_anything.scripting import CaseInsensitive

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "validate_token.js").write_text(VALIDATE_TOKEN)
        (directory / "true.js").write_text("return true")
        (directory / "true.lua").write_text("return true")
        (directory / "validate_token.lua").write_text(
            'local token = headers["Authorization"] or ""\n'
            'if token:sub(1, 7) ~= "Bearer " then return false end\n'
            "return #token > 20\n"
        )
        (directory / "runaway.js").write_text(RUNAWAY)
        (directory / "runaway.lua").write_text("local x = 0 while true do x = x + 1 end")

        def js_box(name: str, timeout: float = 1.0) -> js.Sandbox:
            return js.Sandbox(
                directory / name, location="bench", timeout=timeout, memory_limit_mb=16, parameters=["headers"]
            )

        def lua_box(name: str, timeout: float = 1.0) -> lua.Sandbox:
            return lua.Sandbox(directory / name, location="bench", timeout=timeout, memory_limit_mb=16)

        inputs = {"headers": CaseInsensitive(HEADERS)}
        boxes: list[tuple[str, js.Sandbox | lua.Sandbox]] = [
            ("JS  `return true` (Sandbox.run)", js_box("true.js")),
            ("Lua `return true` (Sandbox.run)", lua_box("true.lua")),
            ("JS  validate_token.js (Sandbox.run)", js_box("validate_token.js")),
            ("Lua validate_token.lua (Sandbox.run)", lua_box("validate_token.lua")),
        ]
        for label, box in boxes:
            show(label, await p50_mean(lambda: box.run(inputs)))  # noqa: B023 (awaited within the loop)
            if isinstance(box, js.Sandbox):
                box.close()

        script = js._Script("b.js", f"function __mcp_script(headers) {{{VALIDATE_TOKEN}\n}}", ("headers",), 1.0,
                            16 << 20, None, {})  # fmt: skip
        runtime = js._Runtime(script)
        alone = await p50_mean(lambda: script.call(runtime, inputs, 1e12))
        show("  of which the JS work (same thread, no handoff)", alone)

        started = time.perf_counter()
        box = js_box("validate_token.js")
        print(f"JS load (compile into {js.POOL_SIZE} runtimes, freeze): {(time.perf_counter() - started) * 1e3:.1f} ms")
        box.close()
        started = time.perf_counter()
        lua_box("validate_token.lua")
        print(f"Lua load ({lua.POOL_SIZE} runtimes): {(time.perf_counter() - started) * 1e3:.1f} ms")

        gc.collect()
        before = rss_mb()
        kept = [js_box("validate_token.js") for _ in range(10)]
        for box in kept:
            await box.run(inputs)
        per_runtime = (rss_mb() - before) / (10 * js.POOL_SIZE)
        print(f"JS memory per runtime (RSS over {10 * js.POOL_SIZE} runtimes): {per_runtime:.2f} MB")
        for box in kept:
            box.close()

        runaways: list[tuple[str, js.Sandbox | lua.Sandbox]] = [
            ("JS ", js_box("runaway.js", 0.3)),
            ("Lua", lua_box("runaway.lua", 0.3)),
        ]
        for label, runaway in runaways:
            with Ticker() as ticker, contextlib.suppress(Exception):
                await runaway.run({})
            print(f"{label} 1-ms sleeps another thread completed while a runaway script ran 0.3 s: {ticker.ticks}")


class Engine:
    name = ""

    def runtime(self, memory_mb: int) -> Any:
        raise NotImplementedError

    def eval(self, runtime: Any, code: str, timeout: float) -> Any:
        raise NotImplementedError

    def host_call_with_limit(self) -> bool:
        raise NotImplementedError

    def check(self, runtime: Any) -> Any:
        raise NotImplementedError


def check_engine(engine: Engine) -> None:
    print(f"== {engine.name}")
    modern = "(() => { const h = {}; const t = h.a ?? 'x'; return `${t}-${JSON.stringify([1].map((n) => n + 1))}`; })()"
    for label, probe in [
        ("modern syntax", lambda: engine.eval(engine.runtime(16), modern, 1.0) == "x-[2]"),
        ("sync host call under a time limit", lambda: engine.host_call_with_limit()),
        ("runaway stopped at a wall-clock limit", lambda: stopped(engine)),
        ("memory limit", lambda: memory_limited(engine)),
        ("no require/process/setTimeout", lambda: absent(engine, ["require", "process", "setTimeout"])),
        ("releases the GIL while JS runs", lambda: releases_gil(engine)),
    ]:  # fmt: skip
        try:
            verdict = "yes" if probe() else "NO"
        except Exception as exc:
            verdict = f"NO ({type(exc).__name__}: {str(exc).splitlines()[0][:90]})"
        print(f"  {label:<40} {verdict}")
    started = time.perf_counter()
    for _ in range(20):
        engine.runtime(16)
    print(f"  new runtime with the check compiled in: {(time.perf_counter() - started) / 20 * 1e3:.2f} ms")
    runtime = engine.runtime(16)
    show("  one check (compiled function, headers object)", asyncio.run(p50_mean(lambda: engine.check(runtime))))
    gc.collect()
    before = rss_mb()
    kept = [engine.runtime(16) for _ in range(40)]
    for runtime in kept:
        engine.check(runtime)
    print(f"  memory per runtime (RSS over 40): {(rss_mb() - before) / 40:.2f} MB")


def stopped(engine: Engine) -> bool:
    runtime = engine.runtime(16)
    started = time.monotonic()
    with contextlib.suppress(Exception):
        engine.eval(runtime, "for (;;) {}", 0.2)
    elapsed = time.monotonic() - started
    return elapsed < 1.0 and engine.eval(runtime, "1 + 1", 1.0) == 2


def absent(engine: Engine, names: list[str]) -> bool:
    runtime = engine.runtime(16)
    present = [name for name in names if engine.eval(runtime, f"typeof {name}", 1.0) != "undefined"]
    if present:
        raise LookupError(f"present: {', '.join(present)}")
    return True


def memory_limited(engine: Engine) -> bool:
    runtime = engine.runtime(8)
    try:
        engine.eval(runtime, "(() => { const a = []; for (;;) a.push('y'.repeat(1024) + a.length) })()", 5.0)
    except Exception:
        return engine.eval(runtime, "1 + 1", 1.0) == 2
    return False


def releases_gil(engine: Engine) -> bool:
    with Ticker() as ticker:
        engine.eval(engine.runtime(16), "let x = 0; for (let i = 0; i < 3e7; i++) x += i; x", 30.0)
    return ticker.ticks > ticker.elapsed * 1000 / 4


class Jsbox(Engine):
    name = "jsbox (QuickJS-ng via rquickjs)"

    def __init__(self) -> None:
        import jsbox  # type: ignore[import-untyped]

        self.jsbox = jsbox

    def runtime(self, memory_mb: int) -> Any:
        runtime = self.jsbox.Runtime(memory_limit=memory_mb << 20)
        runtime.eval(CHECK + "; 0")
        runtime.bind_object("h", HEADERS)
        return runtime

    def eval(self, runtime: Any, code: str, timeout: float) -> Any:
        return runtime.eval(code, timeout=timeout)

    def host_call_with_limit(self) -> bool:
        runtime = self.runtime(16)
        runtime.bind_function("host", lambda x: x + 1)
        return bool(runtime.eval("host(1)", timeout=1.0) == 2)

    def check(self, runtime: Any) -> Any:
        return runtime.eval("check(h)", timeout=1.0)


class Quickjs(Engine):
    def __init__(self) -> None:
        import quickjs  # type: ignore[import-not-found]

        self.quickjs = quickjs
        self.name = "quickjs-ng" if _has("quickjs-ng") else "quickjs"

    def runtime(self, memory_mb: int) -> Any:
        context = self.quickjs.Context()
        context.set_memory_limit(memory_mb << 20)
        context.eval(CHECK)
        context.set("h_json", __import__("json").dumps(HEADERS))
        context.eval("globalThis.h = JSON.parse(h_json)")
        return context

    def eval(self, runtime: Any, code: str, timeout: float) -> Any:
        runtime.set_time_limit(timeout)  # CPU time of the whole process (clock()), not wall-clock
        try:
            return runtime.eval(code)
        finally:
            runtime.set_time_limit(-1)

    def host_call_with_limit(self) -> bool:
        runtime = self.runtime(16)
        runtime.add_callable("host", lambda x: x + 1)
        return bool(self.eval(runtime, "host(1)", 1.0) == 2)

    def check(self, runtime: Any) -> Any:
        return runtime.eval("check(h)")


class MiniRacer(Engine):
    name = "mini-racer (V8)"

    def __init__(self) -> None:
        import py_mini_racer

        self.module = py_mini_racer

    def runtime(self, memory_mb: int) -> Any:
        racer = self.module.MiniRacer()
        racer.set_hard_memory_limit(memory_mb << 20)
        racer.eval(CHECK)
        racer.eval("globalThis.h = " + __import__("json").dumps(HEADERS))
        return racer

    def eval(self, runtime: Any, code: str, timeout: float) -> Any:
        return runtime.eval(code, timeout_sec=timeout)

    def host_call_with_limit(self) -> bool:
        # Python functions reach V8 only through wrap_py_function: an async function, a Promise in JS.
        async def host(x: Any) -> Any:
            return x + 1

        async def probe() -> bool:
            racer = self.runtime(16)
            async with racer.wrap_py_function(host) as js_host:
                result_type = racer.eval("(f) => typeof f(1)")(js_host)
                if result_type != "number":
                    raise TypeError(f"a host call returns a {result_type} (a Promise), not its value")
                return True

        return asyncio.run(probe())

    def check(self, runtime: Any) -> Any:
        return runtime.eval("check(h)")


def _has(distribution: str) -> bool:
    import importlib.metadata

    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def engines() -> None:
    found = False
    for module, engine in [("jsbox", Jsbox), ("quickjs", Quickjs), ("py_mini_racer", MiniRacer)]:
        if importlib.util.find_spec(module) is None:
            print(f"== {module}: not installed")
            continue
        found = True
        check_engine(engine())
    if not found:
        sys.exit("no engine installed")


if __name__ == "__main__":
    if "--engines" in sys.argv:
        engines()
    else:
        asyncio.run(sandboxes())
