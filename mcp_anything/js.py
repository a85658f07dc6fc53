"""The JavaScript sandbox for the JS script strategies: the counterpart of `lua.Sandbox`.

The engine is QuickJS through `jsbox` (chosen by measurement, see docs/benchmarks.md):
host functions are called synchronously while a wall-clock timeout applies, the
heap has a hard limit, and a runaway script is interrupted (not abandoned) and
its runtime stays usable.

A script file is the body of a function: top-level `return` gives the result.
It is compiled once per runtime at load, into a small pool of runtimes, each
owned by one worker thread (a jsbox runtime refuses any other thread); or, for
a script with no host call that waits (inbound checks), into one runtime per
calling thread, the event loop's, so a check costs no thread hop. Before
the script is compiled, the host functions are captured in closures and removed
from the global object; after it, every object reachable from the global object
(and the intrinsics reachable only through syntax, such as generator prototypes)
is frozen, and `eval` and the `Function` constructors throw. So a run can
neither reach the host nor leave anything behind for the next caller: its only
state lives in the function call.

Inputs arrive as the function's parameters, by name; `ctx` is built here:
`ctx.fetch(url, {method, headers, body})` (when a `fetch` host function is given;
synchronous, returning `{status, headers, text(), json()}`) and `ctx.env` (the
allowlisted variables; an unlisted name reads as `undefined` and is logged once,
naming the `js.env` setting).

Limits: `timeout` is wall-clock and covers host calls (`fetch` asks `time_left()`
for its own timeout); memory is the runtime's heap limit. The interpreter checks
the deadline every few thousand operations, so one long native operation (a huge
`BigInt` power) overruns it; from a worker thread, the awaiting side gives up at the
deadline anyway (inline, the loop waits for the operation to end, as it would for the GIL).
jsbox holds the GIL while JavaScript runs: a script's CPU time, at most its
timeout, is time the event loop waits.

(Over 400 lines: the prelude is JavaScript that only makes sense beside the Python that installs
it, and splitting the worker pool from the runtime it serves would split one lifecycle in two.)
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsbox  # type: ignore[import-untyped]

from mcp_anything.config import ConfigError
from mcp_anything.scripting import JS, CaseInsensitive, EnvAllowlist, ScriptError, read_script, set_deadline

log = logging.getLogger(__name__)

POOL_SIZE = 4
GRACE = 0.05  # how long the awaiting side waits past the deadline for the interrupt to end the script
RESERVED = "ctx"  # the parameter built by the sandbox rather than taken from the inputs

# Trusted setup, run once per runtime before the script exists. Host functions are
# taken into closures and deleted from the global object; `__mcp_install` compiles
# the script's function into the runner and then freezes the realm.
_PRELUDE = r"""
(() => {
  "use strict";
  const hostInputs = globalThis.__mcp_inputs, hostFetch = globalThis.__mcp_fetch, hostMiss = globalThis.__mcp_env_miss;
  const envValues = globalThis.__mcp_env(), parameters = globalThis.__mcp_parameters();
  const scriptText = globalThis.__mcp_source(), functionText = Function.prototype.toString;
  const hostNames = ["__mcp_inputs", "__mcp_fetch", "__mcp_env_miss", "__mcp_env", "__mcp_parameters", "__mcp_source"];
  for (const name of hostNames) delete globalThis[name];
  const { freeze, getPrototypeOf, getOwnPropertyDescriptor, defineProperty } = Object;
  const ownKeys = Reflect.ownKeys;
  const lower = (key) => (typeof key === "string" ? key.toLowerCase() : key);
  const caseInsensitive = {
    get: function __mcp_get(target, key) { return target[lower(key)]; },
    has: function __mcp_has(target, key) { return lower(key) in target; },
  };
  freeze(caseInsensitive);
  const quiet = new Set(["toJSON", "then", "constructor", "toString", "valueOf", "inspect"]);
  const env = new Proxy(freeze(envValues), freeze({
    get: function __mcp_env_get(target, key) {
      if (typeof key === "string" && !Object.prototype.hasOwnProperty.call(target, key) && !quiet.has(key)) {
        hostMiss(key);
      }
      return target[key];
    },
  }));
  const fetch = hostFetch && function __mcp_fetch(url, options) {
    const answer = hostFetch(url, options === undefined ? null : options);
    if (typeof answer === "string") throw new Error(answer);
    const text = answer.text;
    return {
      status: answer.status,
      headers: new Proxy(answer.headers, caseInsensitive),
      text: () => text,
      json: function __mcp_json() { return JSON.parse(text); },
    };
  };
  const ctx = freeze(fetch ? { fetch: freeze(fetch), env } : { env });

  const deny = (what) => function __mcp_denied() {
    throw new EvalError(`${what} is disabled in the sandbox: scripts cannot compile code from strings`);
  };
  const roots = [
    globalThis,
    getPrototypeOf(function* () {}),
    getPrototypeOf(async function () {}),
    getPrototypeOf(async function* () {}),
    getPrototypeOf([][Symbol.iterator]()),
    getPrototypeOf(new Map().entries()),
    getPrototypeOf(new Set().values()),
    getPrototypeOf(""[Symbol.iterator]()),
    getPrototypeOf(/x/[Symbol.matchAll]("")),
  ];
  const tameConstructor = (prototypeOfFunctions, what) => {
    const denied = deny(what);
    denied.prototype = prototypeOfFunctions;
    defineProperty(prototypeOfFunctions, "constructor", { value: denied });
    return denied;
  };
  globalThis.Function = tameConstructor(Function.prototype, "Function");
  for (const root of roots.slice(1, 4)) tameConstructor(root, "Function");
  globalThis.eval = deny("eval");

  // Frozen prototypes make `error.message = ...` or `obj.toString = ...` on an instance fail
  // (an inherited read-only property blocks assignment). These become accessors whose setter
  // gives the instance its own property, and refuses on the shared prototype itself.
  const overridable = (object, keys) => {
    for (const key of keys) {
      const property = getOwnPropertyDescriptor(object, key);
      if (!property || !("value" in property)) continue;
      const value = property.value;
      defineProperty(object, key, {
        get: function __mcp_inherited() { return value; },
        set: function __mcp_override(replacement) {
          if (this === object) throw new TypeError(`cannot change ${String(key)} of a shared prototype`);
          defineProperty(this, key, { value: replacement, writable: true, enumerable: true, configurable: true });
        },
        enumerable: property.enumerable,
        configurable: false,
      });
    }
  };
  overridable(Object.prototype, ["constructor", "toString", "valueOf", "toLocaleString"]);
  overridable(Function.prototype, ["toString"]);
  for (const type of [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError]) {
    overridable(type.prototype, ["constructor", "message", "name", "toString"]);
  }

  const freezeAll = () => {
    const seen = new Set();
    const pending = [...roots];
    while (pending.length) {
      const value = pending.pop();
      if (value === null || (typeof value !== "object" && typeof value !== "function") || seen.has(value)) continue;
      seen.add(value);
      freeze(value);
      pending.push(getPrototypeOf(value));
      for (const key of ownKeys(value)) {
        const property = getOwnPropertyDescriptor(value, key);
        pending.push(property.value, property.get, property.set);
      }
    }
  };

  globalThis.__mcp_install = (script) => {
    delete globalThis.__mcp_install;
    // A source such as `}); more(); (function () {` would close the wrapper early and run code outside it.
    if (functionText.call(script) !== scriptText) throw new SyntaxError("the script closes its function early");
    const run = function __mcp_run() {
      const [values, folded] = hostInputs();
      const args = parameters.map((name, i) => {
        if (name === "ctx") return ctx;
        return folded[i] ? new Proxy(values[i], caseInsensitive) : values[i];
      });
      return script(...args);
    };
    defineProperty(globalThis, "__mcp_run", { value: run });
    freezeAll();
  };
})();
"""

# A stack frame in the sandbox's chunks: "at NAME (eval_script:LINE:COLUMN)";
# "at check:LINE:COLUMN" for a syntax error.
_FRAME = re.compile(r"^\s*at (?:(\S+) \()?(?:eval_script|check):(\d+):\d+", re.MULTILINE)


def _sandbox_frame(function: str | None) -> bool:
    if function is None or function == "__mcp_script":
        return False
    return function == "<eval>" or function.startswith("__mcp_")


class _Runtime:
    """One jsbox runtime with the script compiled in.

    A jsbox runtime belongs to the thread that made it, which must also drop it: nothing here
    may reach it from another thread (no reference cycle through it, no exception holding it).
    """

    def __init__(self, script: _Script) -> None:
        self._inputs: list[Any] = [[], []]  # the host functions see this list, never `self`
        inputs = self._inputs
        self.runtime = jsbox.Runtime(memory_limit=script.memory_limit, max_value_bytes=script.memory_limit)
        self.runtime.bind_function("__mcp_inputs", lambda: inputs)
        self.runtime.bind_function("__mcp_env", lambda: dict(script.env.values))
        self.runtime.bind_function("__mcp_parameters", lambda: list(script.parameters))
        self.runtime.bind_function("__mcp_source", lambda: script.function_text)
        self.runtime.bind_function("__mcp_env_miss", script.env.miss)
        if script.fetch is not None:
            self.runtime.bind_function("__mcp_fetch", _fetch_bridge(script.fetch))
        self.runtime.eval(_PRELUDE)
        self.runtime.eval(f"__mcp_install({script.function_text});")

    def call(self, values: list[Any], folded: list[bool], timeout: float) -> Any:
        self._inputs[:] = [values, folded]
        try:
            return self.runtime.eval("__mcp_run()", timeout=timeout)
        finally:
            self._inputs[:] = [[], []]


def _fetch_bridge(fetch: Callable[..., Any]) -> Callable[..., Any]:
    """`fetch` with the Lua contract (body as bytes) as the JS side wants it; a refusal becomes the error text."""

    def bridge(url: Any, options: Any) -> dict[str, Any] | str:
        try:
            answer = fetch(url, options)
        except ScriptError as exc:
            return exc.message
        except Exception as exc:
            log.exception("JavaScript host function fetch failed")
            return f"fetch: internal error in host function ({type(exc).__name__})"
        return {
            "status": answer["status"],
            "headers": dict(answer["headers"]),
            "text": answer["body"].decode("utf-8", errors="replace"),
        }

    return bridge


@dataclass(frozen=True)
class _Script:
    """What every runtime of one sandbox is built from (shared by its worker threads, read-only)."""

    name: str
    function_text: str
    parameters: tuple[str, ...]
    timeout: float
    memory_limit: int
    fetch: Callable[..., Any] | None
    env: EnvAllowlist

    def call(self, runtime: _Runtime, inputs: Mapping[str, Any], deadline: float) -> tuple[Any, ...]:
        with self.env.watching():
            return self._call(runtime, inputs, deadline)

    def _call(self, runtime: _Runtime, inputs: Mapping[str, Any], deadline: float) -> tuple[Any, ...]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ScriptError("timeout", "every JavaScript runtime stayed busy until the deadline")
        values = [None if name == RESERVED else inputs.get(name) for name in self.parameters]
        folded = [isinstance(value, CaseInsensitive) for value in values]
        set_deadline(deadline)
        try:
            return (runtime.call(values, folded, left),)
        except jsbox.JsTimeoutError:
            raise ScriptError("timeout", f"exceeded {self.timeout:g}s") from None
        except jsbox.JavaScriptError as exc:
            if exc.message == "out of memory":
                raise ScriptError("memory", "exceeded memory_limit_mb") from None
            if exc.name is None and exc.message == "null" and not exc.stack:
                # QuickJS throws a bare null when it runs out of memory while building the error.
                raise ScriptError("memory", "exceeded memory_limit_mb (or the script threw null)") from None
            raise ScriptError("runtime", f"{self.name}:{_describe(exc)}") from None
        except MemoryError:
            raise ScriptError("memory", "exceeded memory_limit_mb") from None
        except (TypeError, ValueError, OverflowError) as exc:  # jsbox converting the result
            raise ScriptError("result", f"the script returned a value with no plain form: {exc}") from None
        finally:
            set_deadline(math.inf)


def _describe(exc: jsbox.JavaScriptError) -> str:
    """`LINE: Name: message`, the line being the script's own (the first frame not in the sandbox's code)."""
    frames = _FRAME.finditer(exc.stack or "")
    line = next((m[2] for m in frames if not _sandbox_frame(m[1])), "?")
    return f"{line}: {exc.name or 'Error'}: {exc.message}"


_Job = tuple[Future[tuple[Any, ...]], Mapping[str, Any], float]


def _serve(script: _Script, jobs: queue.SimpleQueue[_Job | None], started: Future[str | None]) -> None:
    """A worker thread: builds its runtime, runs jobs until told to stop, then drops the runtime itself."""
    try:
        runtime = _Runtime(script)
    except jsbox.JavaScriptError as exc:
        started.set_result(_describe(exc))
        return
    except MemoryError:
        started.set_result("the script does not fit in memory_limit_mb")
        return
    started.set_result(None)
    while (job := jobs.get()) is not None:
        future, inputs, deadline = job
        if not future.set_running_or_notify_cancel():
            continue
        try:
            result = script.call(runtime, inputs, deadline)
        except ScriptError as exc:
            # A fresh exception: the original's traceback holds frames that hold the runtime.
            future.set_exception(ScriptError(exc.kind, exc.message))
        except Exception as exc:
            log.exception("JavaScript sandbox failure in %s", script.name)
            future.set_exception(ScriptError("runtime", f"sandbox error ({type(exc).__name__})"))
        else:
            future.set_result(result)
        del job, future, inputs


def _discard(outcome: asyncio.Future[Any]) -> None:
    if not outcome.cancelled():
        outcome.exception()  # read, so asyncio does not report it as never retrieved


def _stop(jobs: queue.SimpleQueue[_Job | None], workers: int) -> None:
    for _ in range(workers):
        jobs.put(None)


class Sandbox:
    """A compiled JS script and its runtimes. `await sandbox.run(inputs)` returns `(result,)` as plain Python.

    `parameters` names the script's function parameters, filled from `run`'s inputs by name
    (missing: `null`; `ctx` is built by the sandbox). An input that is a `CaseInsensitive` mapping
    reads the same whatever the case of the key (`headers["Authorization"]` finds `authorization`).
    `fetch` has the contract of the Lua `fetch` host function (outbound.script.Fetcher);
    `env` holds the values `ctx.env` exposes.
    """

    language = JS

    def __init__(
        self,
        path: Path,
        *,
        location: str,
        timeout: float,
        memory_limit_mb: int,
        parameters: Sequence[str],
        fetch: Callable[..., Any] | None = None,
        env: Mapping[str, str] | None = None,
        inline: bool = False,
    ) -> None:
        """Read and compile `path`; a problem is a ConfigError naming `location` (the config key).

        `inline`: run on the calling thread (the event loop's) rather than in worker threads. jsbox
        holds the GIL while JavaScript runs, so a worker thread frees the loop for nothing but host
        calls that wait (`fetch`); without any, the hop there and back is most of a check's cost.
        Each calling thread gets its own runtime on its first run; `close()` drops the caller's.
        """
        self.name = path.name
        self.timeout = timeout
        source = read_script(path, location)
        # The source starts on the first line, so the script's line numbers are the file's.
        function_text = f"function __mcp_script({', '.join(parameters)}) {{{source}\n}}"
        try:
            jsbox.Runtime().check_syntax(f"({function_text});")
        except jsbox.JavaScriptError as exc:
            raise ConfigError([f"{location}: JavaScript syntax error: {_describe(exc)}"]) from None
        allowlist = EnvAllowlist(env, setting="js.env", script=self.name)
        script = _Script(self.name, function_text, tuple(parameters), timeout, memory_limit_mb << 20, fetch, allowlist)
        self._script = script
        self._inline = threading.local() if inline else None
        workers = 1 if inline else POOL_SIZE  # inline: one worker only checks that the script loads
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # Stops the workers when the sandbox is closed or dropped (a reload that never calls close()).
        self._finalizer = weakref.finalize(self, _stop, self._jobs, workers)
        starts: list[Future[str | None]] = [Future() for _ in range(workers)]
        for n, started in enumerate(starts):
            threading.Thread(
                target=_serve, args=(script, self._jobs, started), name=f"js-{self.name}-{n}", daemon=True
            ).start()
        problems = {problem for started in starts if (problem := started.result()) is not None}
        if problems:
            self.close()
            raise ConfigError([f"{location}: cannot load the script: {problem}" for problem in sorted(problems)])
        if inline:
            self._finalizer()

    async def run(self, inputs: Mapping[str, Any]) -> tuple[Any, ...]:
        """Run the script once with `inputs` as its parameters; raise ScriptError on any failure."""
        if self._inline is not None:
            return self._script.call(self._own_runtime(), inputs, time.monotonic() + self.timeout)
        job: Future[tuple[Any, ...]] = Future()
        self._jobs.put((job, inputs, time.monotonic() + self.timeout))
        waiter = asyncio.wrap_future(job)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self.timeout + GRACE)
        except TimeoutError:
            # The worker is inside one long native operation; it takes the next job when that ends.
            raise ScriptError("timeout", f"no result within {self.timeout:g}s") from None
        finally:
            if not waiter.done():  # given up on (timeout or cancelled): nobody will read the outcome
                job.cancel()
                waiter.add_done_callback(_discard)

    def _own_runtime(self) -> _Runtime:
        assert self._inline is not None
        runtime: _Runtime | None = getattr(self._inline, "runtime", None)
        if runtime is None:
            try:
                runtime = self._inline.runtime = _Runtime(self._script)
            except (jsbox.JavaScriptError, MemoryError) as exc:  # it loaded in a worker: not expected
                raise ScriptError("runtime", f"cannot load the script ({type(exc).__name__})") from None
        return runtime

    def close(self) -> None:
        """Stop the worker threads once they finish what they are running; their runtimes go with them.

        Inline, drop the calling thread's runtime (a jsbox runtime must be dropped by its own thread,
        and the strategies close from the event loop that ran them).
        """
        if self._inline is not None:
            self._inline.__dict__.pop("runtime", None)
        self._finalizer()
