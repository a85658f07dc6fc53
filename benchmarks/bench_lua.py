"""Per-call cost of the Lua strategies: `python -m benchmarks.bench_lua`.

Prints p50 and mean per call for a trivial inbound script through the
authenticator (worker-thread handoff included), the Lua work alone, the bare
thread handoff, the shipped validate_token.lua, and the instruction hook's
cost on a CPU-bound loop.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.to_thread
from starlette.datastructures import Headers

from benchmarks.common import percentile
from mcp_anything import lua
from mcp_anything.inbound import InboundRequest
from mcp_anything.inbound.script import ScriptAuthenticator
from mcp_anything.lua import Sandbox
from mcp_anything.scripting import CaseInsensitive

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HEADERS = Headers(
    {
        "authorization": "Bearer alice.0123456789abcdef0123456789",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-session-id": "0123456789abcdef",
        "user-agent": "bench",
    }
)
REQUEST = InboundRequest(method="POST", path="/mcp", headers=HEADERS)


async def timed(label: str, call: Callable[[], Awaitable[object]], n: int = 5000) -> None:
    for _ in range(200):
        await call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    print(f"{label:<48} p50 {percentile(samples, 0.5) * 1e6:7.1f} us   mean {statistics.fmean(samples) * 1e6:7.1f} us")


def sandbox(directory: Path, source: str, **kwargs: object) -> Sandbox:
    path = directory / "bench.lua"
    path.write_text(source)
    return Sandbox(path, location="bench", timeout=kwargs.pop("timeout", 1.0), memory_limit_mb=16, **kwargs)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        trivial = ScriptAuthenticator(sandbox(directory, "return true"))
        await timed("inbound `return true` (authenticate)", lambda: trivial.authenticate(REQUEST))

        box = sandbox(directory, "return true")
        inputs = {"headers": CaseInsensitive(HEADERS.items()), "method": "POST", "path": "/mcp"}

        async def lua_only() -> object:
            return box._call(inputs, time.monotonic() + 1)

        await timed("  of which Lua work (same thread, no handoff)", lua_only)
        await timed("  of which thread handoff (anyio.to_thread)", lambda: anyio.to_thread.run_sync(int))

        example = ScriptAuthenticator(
            Sandbox(
                EXAMPLES / "validate_token.lua",
                location="bench",
                timeout=1.0,
                memory_limit_mb=16,
                constants={"params": {"admins": "alice"}},
            )
        )
        await timed("inbound validate_token.lua (authenticate)", lambda: example.authenticate(REQUEST))

        loop = "local x = 0 for i = 1, 10000000 do x = x + i end return x"
        for interval in (lua.HOOK_INTERVAL, 10**9):
            lua.HOOK_INTERVAL, saved = interval, lua.HOOK_INTERVAL
            busy = sandbox(directory, loop, timeout=60)
            lua.HOOK_INTERVAL = saved
            label = f"1e7-iteration loop, deadline check every {interval:.0e} instr"
            await timed(label, lambda b=busy: b.run({}), n=5)


if __name__ == "__main__":
    anyio.run(main)
