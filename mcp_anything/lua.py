"""The Lua sandbox shared by the inbound and outbound Lua strategies.

A script is compiled once at startup into a small pool of Lua 5.4 runtimes
(a `LuaRuntime` is not thread-safe, and lupa releases the GIL while Lua runs,
so a pool lets calls run in parallel in worker threads). Each call gets a fresh
global environment holding only copies of the safe standard library, so a
script can neither reach the host (no `os`, `io`, `load`, `debug`, Python
objects) nor leave state behind for the next caller.

Limits: a hook that runs on every function call and every `HOOK_INTERVAL` VM
instructions compares the wall clock with the call's deadline and raises an
error the script's `pcall` cannot swallow; lupa's `max_memory` bounds
allocations. One long C library call (a pathological pattern match on a long
string) cannot be interrupted: the awaiting request still gives up at the
deadline, and the worker thread finishes in the background.
"""

from __future__ import annotations

import logging
import math
import queue
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import anyio
import anyio.to_thread
import lupa.lua54 as lupa

from mcp_anything.config import ConfigError
from mcp_anything.scripting import LUA, CaseInsensitive, EnvAllowlist, ScriptError, read_script, set_deadline, time_left

log = logging.getLogger(__name__)

POOL_SIZE = 4
HOOK_INTERVAL = 1000  # VM instructions between two runs of the deadline hook
CHECK_EVERY = 0.001  # seconds of process CPU time between two wall-clock checks in the hook
# How long the awaiting side waits past the deadline for the hook to end the script itself.
GRACE = 0.05
MAX_DEPTH = 32  # nesting limit when converting Lua tables to Python

# Runs once per runtime, with the full standard library, before any script
# code exists. Everything the script may touch is built from locals captured
# here; the script itself only ever sees `new_env(...)`.
_HOST = """
local source, chunkname, expired, interval, check_every, bridges, constants, env_values, env_miss = ...
local debug_sethook, debug_setupvalue = debug.sethook, debug.setupvalue
local lib_string, lib_table, lib_math, lib_utf8 = string, table, math, utf8
local assert, error, ipairs, next, pairs, pcall, rawget, select, setmetatable, tonumber, tostring, type =
      assert, error, ipairs, next, pairs, pcall, rawget, select, setmetatable, tonumber, tostring, type
local pack, unpack = table.pack, table.unpack

-- Every string's metatable indexes this very table, copies or not.
lib_string.dump = nil

local chunk, syntax_error = load(source, "=" .. chunkname, "t", {})
if not chunk then return nil, syntax_error end

local TIMEOUT = {}
local MEMORY = "not enough memory"
-- The deadline hook runs on every function call (a C function such as string.rep can take
-- long) and every `interval` instructions (loops without calls), only while the script runs.
-- Asking Python for the time takes the GIL, so it asks only after `check_every` seconds of
-- CPU time (os.clock) since the last answer.
local cpu_clock, next_check = os.clock, 0
local function deadline_hook()
  local now = cpu_clock()
  if now >= next_check then
    next_check = now + check_every
    if expired() then error(TIMEOUT, 0) end
  end
end

-- The script's pcall: a timeout or memory error always ends the script.
local function safe_pcall(f, ...)
  local result = pack(pcall(f, ...))
  if not result[1] and (result[2] == TIMEOUT or result[2] == MEMORY) then error(result[2], 0) end
  return unpack(result, 1, result.n)
end

local function copy(t)
  local c = {}
  for k, v in next, t do c[k] = v end
  return c
end

local case_insensitive_meta = {
  __index = function(t, k)
    if type(k) == "string" then return rawget(t, k:lower()) end
  end,
}
local function case_insensitive(t) return setmetatable(t, case_insensitive_meta) end

-- ctx.env: the allowlisted variables; reading another name gives nil, and the host notes it.
local env_meta = {
  __index = function(_, k)
    if type(k) == "string" then env_miss(k) end
  end,
}

local functions = {}
for name, bridge in next, bridges do
  functions[name] = function(...)
    local ok, value = bridge(...)
    if not ok then error(value, 2) end
    return value
  end
end

local function new_env(inputs)
  local env = {
    string = copy(lib_string), table = copy(lib_table), math = copy(lib_math), utf8 = copy(lib_utf8),
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = safe_pcall,
    select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
  }
  for k, v in next, functions do env[k] = v end
  env.ctx = { env = setmetatable(copy(env_values), env_meta), fetch = functions.fetch }
  for k, v in next, constants do env[k] = type(v) == "table" and copy(v) or v end
  for k, v in next, inputs do env[k] = v end
  return env
end

local function invoke(inputs)
  debug_setupvalue(chunk, 1, new_env(inputs))  -- a main chunk's only upvalue is _ENV
  next_check = 0
  debug_sethook(deadline_hook, "c", interval)
  return chunk()
end

local function run(inputs)
  local result = pack(pcall(invoke, inputs))
  debug_sethook()
  debug_setupvalue(chunk, 1, nil)  -- the script's globals (and inputs) are garbage now
  if result[1] then return "ok", unpack(result, 2, result.n) end
  local err = result[2]
  if err == TIMEOUT then return "timeout" end
  if err == MEMORY then return "memory" end
  if type(err) ~= "string" then err = "error object is a " .. type(err) .. " value" end
  return "runtime", err
end

return run, case_insensitive
"""


def _expired() -> bool:
    return time_left() < 0


def _deny_attribute(obj: object, name: object, is_setting: bool) -> NoReturn:
    raise AttributeError("Python attributes are not accessible from Lua")


class _Runtime:
    """One LuaRuntime with the script compiled in; used by one thread at a time."""

    def __init__(
        self,
        source: str,
        chunkname: str,
        memory_limit: int,
        functions: Mapping[str, Callable[..., Any]],
        constants: Mapping[str, Any],
        env: EnvAllowlist,
    ) -> None:
        self.lua = lupa.LuaRuntime(
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=_deny_attribute,
            overflow_handler=float,
            max_memory=0,  # enables the limit set below
        )
        bridges = self.lua.table_from({name: self._bridge(fn) for name, fn in functions.items()})
        host = self.lua.execute(
            _HOST,
            source,
            chunkname,
            _expired,
            HOOK_INTERVAL,
            CHECK_EVERY,
            bridges,
            self.to_lua(constants),
            self.to_lua(env.values),
            self._bridge(env.miss),
        )
        run, detail = host
        if run is None:
            raise SyntaxError(detail)
        self.run: Callable[..., Any] = run
        self._case_insensitive: Callable[[Any], Any] = detail
        # Set last: the host and the compiled chunk are not the script's to pay for.
        self.lua.set_max_memory(memory_limit)

    def _bridge(self, fn: Callable[..., Any]) -> Callable[..., tuple[bool, Any]]:
        # Never lets a Python exception (an object the script could inspect) reach Lua.
        def bridge(*args: Any) -> tuple[bool, Any]:
            try:
                return True, self.to_lua(fn(*(to_python(a) for a in args)))
            except ScriptError as exc:  # a host function refusing: a Lua error in the script
                return False, exc.message
            except Exception as exc:
                log.exception("Lua host function %s failed", getattr(fn, "__name__", fn))
                return False, f"internal error in host function ({type(exc).__name__})"

        return bridge

    def to_lua(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            table = self.lua.table_from({self.to_lua(k): self.to_lua(v) for k, v in value.items()})
            if isinstance(value, CaseInsensitive):
                self._case_insensitive(table)
            return table
        if isinstance(value, list | tuple):
            return self.lua.table_from([self.to_lua(v) for v in value])
        return value


def to_python(value: Any, depth: int = 0) -> Any:
    """A Lua value as plain Python: a table is a list (keys 1..n) or a dict (string keys; `{}` is a dict)."""
    if isinstance(value, bytes):  # lupa hands over strings that are not valid UTF-8 as bytes
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise ScriptError("result", "a string is not valid UTF-8") from None
    kind = lupa.lua_type(value)
    if kind is None:
        return value
    if kind != "table":
        raise ScriptError("result", f"cannot use a Lua {kind} here")
    if depth >= MAX_DEPTH:
        raise ScriptError("result", f"tables nested deeper than {MAX_DEPTH} levels")
    try:
        items = list(value.items())
    except UnicodeDecodeError:
        raise ScriptError("result", "a string is not valid UTF-8") from None
    if items and all(isinstance(k, int) and not isinstance(k, bool) for k, _ in items):
        keys = sorted(k for k, _ in items)
        if keys == list(range(1, len(keys) + 1)):
            return [to_python(v, depth + 1) for _, v in sorted(items, key=lambda item: item[0])]
    if not all(isinstance(k, str) for k, _ in items):
        raise ScriptError(
            "result", "a table needs all-string keys or list keys 1..n (mixed keys, or a nil leaving a hole in a list)"
        )
    return {k: to_python(v, depth + 1) for k, v in items}


class Sandbox:
    """A compiled script and its runtimes. `await sandbox.run(inputs)` returns the script's values as Python."""

    language = LUA

    def __init__(
        self,
        path: Path,
        *,
        location: str,
        timeout: float,
        memory_limit_mb: int,
        functions: Mapping[str, Callable[..., Any]] | None = None,
        constants: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Read and compile `path`; a problem is a ConfigError naming `location` (the config key).

        Scripts see `ctx.env` (the `env` values) and `ctx.fetch` (the `fetch` function, if given).
        """
        self.name = path.name
        self.timeout = timeout
        source = read_script(path, location)
        self._env = EnvAllowlist(env, setting="lua.env", script=self.name)
        self._pool: queue.SimpleQueue[_Runtime] = queue.SimpleQueue()
        try:
            for _ in range(POOL_SIZE):
                self._pool.put(
                    _Runtime(source, self.name, memory_limit_mb << 20, functions or {}, constants or {}, self._env)
                )
        except SyntaxError as exc:
            raise ConfigError([f"{location}: Lua syntax error: {exc}"]) from None
        except lupa.LuaMemoryError:
            raise ConfigError([f"{location}: the script does not fit in memory_limit_mb"]) from None
        self._limiter = anyio.CapacityLimiter(POOL_SIZE)

    async def run(self, inputs: Mapping[str, Any]) -> tuple[Any, ...]:
        """Run the script once with `inputs` as extra globals; raise ScriptError on any failure."""
        deadline = time.monotonic() + self.timeout
        with anyio.move_on_after(self.timeout + GRACE):
            return await anyio.to_thread.run_sync(
                self._call, inputs, deadline, abandon_on_cancel=True, limiter=self._limiter
            )
        # The worker may still be inside a C call; it returns its runtime to the pool when done.
        raise ScriptError("timeout", f"no result within {self.timeout:g}s")

    def close(self) -> None:
        """Nothing to stop: the runtimes go with the sandbox (the JavaScript sandbox's counterpart stops threads)."""

    def _call(self, inputs: Mapping[str, Any], deadline: float) -> tuple[Any, ...]:
        # Runs in a worker thread.
        with self._env.watching():
            return self._run(inputs, deadline)

    def _run(self, inputs: Mapping[str, Any], deadline: float) -> tuple[Any, ...]:
        try:
            runtime = self._pool.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            raise ScriptError("timeout", "every Lua runtime stayed busy until the deadline") from None
        set_deadline(deadline)
        try:
            status, *values = _as_tuple(runtime.run(runtime.to_lua(inputs)))
            if status == "ok":
                return tuple(to_python(v) for v in values)
        except UnicodeDecodeError:
            raise ScriptError("result", "the script returned a string that is not valid UTF-8") from None
        except lupa.LuaMemoryError:
            status = "memory"
        except lupa.LuaError as exc:  # raised in host code, outside the script's pcall
            if not _expired():
                raise ScriptError("runtime", f"sandbox error: {exc}") from None
            status = "timeout"
        finally:
            set_deadline(math.inf)
            self._pool.put(runtime)
        if status == "runtime":
            raise ScriptError("runtime", values[0])
        if status == "timeout":
            raise ScriptError("timeout", f"exceeded {self.timeout:g}s")
        raise ScriptError("memory", "exceeded memory_limit_mb")


def _as_tuple(values: Any) -> Iterable[Any]:
    # lupa returns one value bare and several as a tuple.
    return values if isinstance(values, tuple) else (values,)
