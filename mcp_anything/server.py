"""The gateway: built once from a config, served as one ASGI app.

`build_gateway` loads every spec and builds every tool, authenticator and
authorizer before anything is served; a request only looks things up. The one
exception: a spec served by URL that cannot be fetched at startup is fetched
again in the background (with backoff) while the other upstreams serve; its
upstream's tools appear when it loads, and `/readyz` answers 503 until then.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_anything import __version__, metrics
from mcp_anything.authz import Authorizer, Forbidden, Grant, create_authorizer
from mcp_anything.config import Config, ConfigError, ConfigSource, GroupConfig, UpstreamConfig
from mcp_anything.identity import Identity
from mcp_anything.inbound import Authenticator, AuthError, InboundRequest, create_authenticator
from mcp_anything.openapi import SpecUnavailable, UpstreamTools, load_upstream_tools
from mcp_anything.origins import HostOriginPolicy
from mcp_anything.outbound import OutboundAuth, create_outbound_auth
from mcp_anything.protocol import (
    INVALID_PARAMS,
    HttpError,
    McpTransport,
    RequestContext,
    RpcError,
    SessionStore,
    send_json,
)
from mcp_anything.ratelimit import Limiter, RateLimits
from mcp_anything.reload import Reloader
from mcp_anything.tools import ArgumentError, Tool
from mcp_anything.upstream import Upstream, close_all, error_result

if TYPE_CHECKING:
    from mcp_anything.tracing import Tracing

logger = logging.getLogger("mcp_anything")
call_log = logging.getLogger("mcp_anything.calls")

PRM_PREFIX = "/.well-known/oauth-protected-resource"
SPEC_RETRY_FIRST = 1.0  # seconds before the first background retry of an unreachable spec URL
SPEC_RETRY_MAX = 60.0


def _locate(problems: list[str], location: str) -> list[str]:
    """Prefix strategy-relative problems (`lua.source: ...`) with where the strategy is configured."""
    return [p if p.startswith(("groups[", "upstreams[")) else f"{location}.{p}" for p in problems]


@dataclass
class Group:
    """One MCP endpoint: its tools (built once), auth and authorization."""

    config: GroupConfig
    tools: dict[str, Tool]
    upstreams: Mapping[str, Upstream]
    authenticator: Authenticator
    authorizer: Authorizer
    public_url: str  # the server's public base URL
    rate_limits: RateLimits | None = None
    # Each tool's `tools/list` entry, serialised once.
    listings: dict[str, orjson.Fragment] = field(init=False)

    def __post_init__(self) -> None:
        self.set_tools(self.tools)

    def set_tools(self, tools: dict[str, Tool]) -> None:
        """Replace the tools (an upstream whose spec loaded late); requests see the old set or the new one."""
        self.listings = {name: orjson.Fragment(orjson.dumps(t.definition)) for name, t in tools.items()}
        self.tools = tools

    @property
    def resource_url(self) -> str:
        return self.public_url + self.config.endpoint

    @property
    def metadata_url(self) -> str | None:
        """Where this group's RFC 9728 protected resource metadata is served, if it has any."""
        if not self.authenticator.authorization_servers:
            return None
        return self.public_url + PRM_PREFIX + self.config.endpoint

    @property
    def personalised(self) -> bool:
        """Whether what a caller sees can depend on who the caller is."""
        authorization = self.config.authorization
        return (
            self.config.inbound_auth.strategy != "none"
            or authorization.capabilities is not None
            or bool(authorization.rules)
            or authorization.default == "deny"
        )

    def protected_resource_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "resource": self.resource_url,
            "authorization_servers": self.authenticator.authorization_servers,
            "bearer_methods_supported": ["header"],
        }
        scopes = getattr(self.authenticator, "scopes_supported", None)
        if scopes:
            metadata["scopes_supported"] = scopes
        return metadata


class GroupHandler:
    """Serves one group's MCP methods; `protocol.McpTransport` does the wire."""

    capabilities = {"tools": {"listChanged": True}}
    instructions = None

    def __init__(self, group: Group, *, metrics_enabled: bool = True, tracing: Tracing | None = None) -> None:
        self.group = group
        self.server_info = {"name": f"mcp-anything/{group.config.name}", "version": __version__}
        self.cache_scope = "private" if group.personalised else "public"
        self.methods = {"tools/list": self.list_tools, "tools/call": self.call_tool}
        self._metrics_enabled = metrics_enabled
        self._tool_metrics: dict[str, metrics.ToolMetrics] = {}
        self._tracing = tracing

    async def authenticate(self, method: str, path: str, headers: Headers) -> Identity:
        try:
            return await self.group.authenticator.authenticate(InboundRequest(method, path, headers))
        except AuthError as exc:
            raise self._challenge(exc) from None

    def _challenge(self, exc: AuthError) -> HttpError:
        logger.info("authentication failed", extra={"fields": {"group": self.group.config.name, "reason": exc.error}})
        if self._metrics_enabled:
            metrics.auth_failure(self.group.config.name, exc.error)
        body = {"error": exc.error, "error_description": exc.description}
        if exc.status == 503:
            return HttpError(503, body, {"Retry-After": "5"})
        params = [f'error="{exc.error}"', f'error_description="{_quoted(exc.description)}"']
        if exc.scope:
            params.append(f'scope="{_quoted(exc.scope)}"')
        metadata_url = self.group.metadata_url
        if metadata_url:
            params.insert(0, f'resource_metadata="{metadata_url}"')
        return HttpError(exc.status, body, {"WWW-Authenticate": "Bearer " + ", ".join(params)})

    def _grant(self, ctx: RequestContext) -> Grant:
        grant: Grant | None = ctx.state.get("grant")
        if grant is None:
            try:
                grant = self.group.authorizer.grant(self.group.config.name, ctx.identity, ctx.headers)
            except Forbidden as exc:
                raise HttpError(403, {"error": "forbidden", "error_description": str(exc)}) from None
            ctx.state["grant"] = grant
        return grant

    async def admit(self, ctx: RequestContext) -> None:
        self._grant(ctx)

    async def list_tools(self, ctx: RequestContext, params: Mapping[str, Any]) -> dict[str, Any]:
        grant = self._grant(ctx)
        listings = self.group.listings
        return {"tools": [listings[tool.name] for tool in grant.filter_tools(self.group.tools.values())]}

    async def call_tool(self, ctx: RequestContext, params: Mapping[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if not isinstance(name, str):
            raise RpcError(INVALID_PARAMS, "tools/call needs `name`, a string")
        if not isinstance(arguments, dict):
            raise RpcError(INVALID_PARAMS, f"tools/call `arguments` for tool '{name[:64]}' must be an object")
        tool = self.group.tools.get(name)
        # A tool the caller may not call answers exactly like a tool that does not exist.
        if tool is None or not self._grant(ctx).can_call(tool, arguments):
            raise RpcError(INVALID_PARAMS, f"Unknown tool: {name[:64]}")
        started = time.perf_counter()
        exceeded = await self.group.rate_limits.hit(tool, ctx.identity) if self.group.rate_limits else None
        if exceeded is not None:
            message = f"Rate limit exceeded for tool '{name}': {exceeded.rule}; retry in {exceeded.retry_after}s"
            result, status, outcome = error_result(message), None, "rate_limited"
        elif self._tracing is None:
            result, status, outcome = await self._invoke(tool, arguments)
        else:
            invoke = partial(self._invoke, tool, arguments)
            result, status, outcome = await self._tracing.tool_call(self.group.config.name, tool, ctx.headers, invoke)
        elapsed = time.perf_counter() - started
        self._metrics_for(name).record(outcome, None if exceeded else elapsed)
        call_log.info(
            "tool call",
            extra={
                "fields": {
                    "group": self.group.config.name,
                    "subject": ctx.identity.subject,
                    "tool": name,
                    "upstream": tool.upstream,
                    "upstream_status": status,
                    "outcome": outcome,
                    "duration_ms": round(elapsed * 1000, 2),
                }
            },
        )
        return result

    def _metrics_for(self, name: str) -> metrics.ToolMetrics:
        tool_metrics = self._tool_metrics.get(name)
        if tool_metrics is None:
            if not self._metrics_enabled:
                return metrics.NULL_TOOL_METRICS  # type: ignore[return-value]
            tool_metrics = self._tool_metrics[name] = metrics.ToolMetrics(self.group.config.name, name)
        return tool_metrics

    async def _invoke(
        self, tool: Tool, arguments: Mapping[str, Any], trace_headers: Mapping[str, str] | None = None
    ) -> tuple[dict[str, Any], int | None, str]:
        """Validate, build, send: (MCP result, upstream status, outcome for the call log)."""
        try:
            tool.validate(arguments)
            request = tool.build_request(arguments)
            if trace_headers is not None:
                # Gateway headers: a declared `traceparent` parameter never replaces the gateway's trace context.
                for key in [k for k in request.headers if k.lower() in ("traceparent", "tracestate")]:
                    del request.headers[key]
                request.headers.update(trace_headers)
            call = await self.group.upstreams[tool.upstream].call(tool, request)
        except ArgumentError as exc:
            return error_result(f"Invalid arguments for tool '{tool.name}': {exc}"), None, "invalid_arguments"
        except Exception:
            # Never let an internal error's text reach the caller; the log has the traceback.
            fields = {"group": self.group.config.name, "tool": tool.name}
            logger.exception("tool call failed", extra={"fields": fields})
            return error_result(f"Internal error while calling tool '{tool.name}'; see the gateway log"), None, "error"
        if call.error is not None and self._metrics_enabled:
            metrics.upstream_error(tool.upstream, call.error)
        return call.result, call.status, "error" if call.result.get("isError") else "ok"


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@dataclass
class PendingUpstream:
    """An upstream whose spec URL could not be fetched yet; retried in the background."""

    index: int
    config: UpstreamConfig
    auth: OutboundAuth


@dataclass
class Gateway:
    config: Config
    groups: list[Group]
    upstreams: dict[str, Upstream]
    specs: dict[str, UpstreamTools]
    limiter: Limiter  # rate-limit counters; handed on to the next gateway on reload
    pending: dict[str, PendingUpstream] = field(default_factory=dict)
    # Called after an upstream's tools appear (the app broadcasts `notifications/tools/list_changed`).
    on_tools_changed: Callable[[], None] = lambda: None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False, repr=False)

    def start(self) -> None:
        """Start the background work: fetching the specs that could not be fetched at startup."""
        self._tasks = [asyncio.create_task(self._load_later(name)) for name in self.pending]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await close_all(list(self.upstreams.values()))
        for pending in self.pending.values():
            await pending.auth.aclose()
        for group in self.groups:
            await group.authenticator.aclose()

    async def _load_later(self, name: str) -> None:
        pending = self.pending[name]
        delay = SPEC_RETRY_FIRST
        while True:
            await asyncio.sleep(random.uniform(delay / 2, delay))
            try:
                loaded = await asyncio.to_thread(
                    load_upstream_tools, pending.config, self.config, f"upstreams[{pending.index}]"
                )
                problems = self._clashes(name, loaded)
            except ConfigError as exc:
                problems = exc.problems
            if not problems:
                self._activate(name, loaded)
                return
            delay = min(delay * 2, SPEC_RETRY_MAX)
            fields = {"upstream": name, "problems": problems, "retry_in_s": delay}
            logger.warning("spec for upstream %r still not loaded", name, extra={"fields": fields})

    def _clashes(self, name: str, loaded: UpstreamTools) -> list[str]:
        specs = {**self.specs, name: loaded}
        return [
            problem
            for i, group in enumerate(self.config.groups)
            if name in group.upstreams
            for problem in _tool_clashes(f"groups[{i}].upstreams", group, specs)
        ]

    def _activate(self, name: str, loaded: UpstreamTools) -> None:
        pending = self.pending.pop(name)
        upstream = Upstream(pending.config, loaded.base_url, pending.auth)
        self.specs[name] = loaded
        self.upstreams[name] = upstream
        for group in self.groups:
            if name in group.config.upstreams:
                group.upstreams[name] = upstream
                group.set_tools(_group_tools(group.config, self.specs))
        logger.info("spec for upstream %r loaded: %d tools", name, len(loaded.tools))
        self.on_tools_changed()


def _group_tools(group: GroupConfig, specs: Mapping[str, UpstreamTools]) -> dict[str, Tool]:
    """A group's tools in config order, from the upstreams whose specs are loaded."""
    return {t.name: t for name in group.upstreams if name in specs for t in specs[name].tools}


def _tool_clashes(location: str, group: GroupConfig, specs: Mapping[str, UpstreamTools]) -> list[str]:
    """Tool names that two of a group's upstreams (among those whose specs are loaded) both produce."""
    problems = []
    owner: dict[str, str] = {}
    for name in group.upstreams:
        for tool in specs[name].tools if name in specs else ():
            if tool.name in owner:
                problems.append(
                    f"{location}: tool {tool.name!r} comes from both {owner[tool.name]!r} and {name!r};"
                    " give one of them a different tool_prefix"
                )
            owner[tool.name] = name
    return problems


def load_tools(config: Config) -> dict[str, UpstreamTools]:
    """Load every upstream's spec and build its tools; raise ConfigError listing every problem."""
    return _load_specs(config, defer_unavailable=False)[0]


def _load_specs(config: Config, *, defer_unavailable: bool) -> tuple[dict[str, UpstreamTools], dict[str, str]]:
    """(loaded specs, {upstream: problem} for spec URLs that could not be fetched and will be retried)."""
    problems: list[str] = []
    loaded: dict[str, UpstreamTools] = {}
    unavailable: dict[str, str] = {}
    for i, upstream in enumerate(config.upstreams):
        try:
            loaded[upstream.name] = load_upstream_tools(upstream, config, f"upstreams[{i}]")
        except SpecUnavailable as exc:
            if not defer_unavailable:
                problems += exc.problems
            unavailable[upstream.name] = exc.problems[0]
        except ConfigError as exc:
            problems += exc.problems
    for i, group in enumerate(config.groups):
        problems += _tool_clashes(f"groups[{i}].upstreams", group, loaded)
    if problems:
        raise ConfigError(problems)
    return loaded, unavailable


def build_gateway(config: Config, *, defer_unavailable_specs: bool = False, previous: Gateway | None = None) -> Gateway:
    """Build everything a request needs; with `defer_unavailable_specs`, unreachable spec URLs load later.

    `previous` (on reload) lends what must outlive a config: the rate-limit counters.
    """
    specs, unavailable = _load_specs(config, defer_unavailable=defer_unavailable_specs)
    storage = config.server.rate_limit_storage.get_secret_value()
    limiter = previous.limiter if previous is not None and previous.limiter.uri == storage else Limiter(storage)
    problems: list[str] = []
    upstreams: dict[str, Upstream] = {}
    pending: dict[str, PendingUpstream] = {}
    for i, upstream_config in enumerate(config.upstreams):
        try:
            auth = create_outbound_auth(upstream_config.outbound_auth, config)
        except ConfigError as exc:
            problems += _locate(exc.problems, f"upstreams[{i}].outbound_auth")
            continue
        name = upstream_config.name
        if name in unavailable:
            pending[name] = PendingUpstream(i, upstream_config, auth)
            fields = {"upstream": name, "problems": [unavailable[name]]}
            logger.warning(
                "spec for upstream %r not loaded; retrying in the background", name, extra={"fields": fields}
            )
        else:
            upstreams[name] = Upstream(upstream_config, specs[name].base_url, auth)
    groups = []
    for i, group_config in enumerate(config.groups):
        try:
            authenticator = create_authenticator(group_config.inbound_auth, config)
            authorizer = create_authorizer(group_config.authorization, config)
        except ConfigError as exc:
            problems += _locate(exc.problems, f"groups[{i}]")
            continue
        rate_limits = (
            RateLimits(group_config.name, group_config.rate_limits, limiter) if group_config.rate_limits else None
        )
        groups.append(
            Group(
                group_config,
                _group_tools(group_config, specs),
                {name: upstreams[name] for name in group_config.upstreams if name in upstreams},
                authenticator,
                authorizer,
                config.server.base_url,
                rate_limits,
            )
        )
    if problems:
        raise ConfigError(problems)
    if not config.server.loopback:
        for group in groups:
            if group.config.inbound_auth.strategy == "none":
                logger.warning(
                    "group %r serves %s on %s with no inbound auth: anyone who can reach it can call its tools",
                    group.config.name,
                    group.config.endpoint,
                    config.server.host,
                )
    return Gateway(config, groups, upstreams, specs, limiter, pending)


class _Serving:
    """One gateway and the route table built from it: swapped as a whole on reload."""

    def __init__(self, gateway: Gateway, routes: dict[str, ASGIApp]) -> None:
        self.gateway = gateway
        self.routes = routes
        self.active = 0  # requests in progress, event streams excepted
        self.drained: asyncio.Event | None = None  # set once retired and idle

    def leave(self) -> None:
        self.active -= 1
        if self.active == 0 and self.drained is not None:
            self.drained.set()

    async def retire(self, grace: float) -> None:
        """Wait for the requests still using this gateway (up to `grace` seconds), then close its clients."""
        if self.drained is None:
            self.drained = asyncio.Event()
        if self.active:
            try:
                await asyncio.wait_for(self.drained.wait(), grace)
            except TimeoutError:
                logger.warning("closing the previous config's clients with %d requests still in progress", self.active)
        await self.gateway.aclose()

    def hurry(self) -> None:
        """Stop waiting for requests (the server is shutting down and has had its own grace period)."""
        if self.drained is None:
            self.drained = asyncio.Event()
        self.drained.set()


class GatewayApp:
    """The ASGI app: group endpoints, health, readiness, metrics and metadata, matched by exact path.

    `swap` replaces the gateway and its routes in one assignment: a request that already
    found its route finishes on the gateway it started with.
    """

    def __init__(
        self, gateway: Gateway, *, mounts: Mapping[str, ASGIApp] | None = None, tracing: Tracing | None = None
    ) -> None:
        self.mounts = dict(mounts or {})
        self.sessions = SessionStore()
        self.tracing = tracing
        self.reloader: Reloader | None = None  # set by create_app when the config comes from a file
        self._serving = self._serve(gateway)
        self._retiring: dict[asyncio.Task[None], _Serving] = {}

    @property
    def gateway(self) -> Gateway:
        return self._serving.gateway

    def _serve(self, gateway: Gateway) -> _Serving:
        gateway.on_tools_changed = lambda: self.sessions.broadcast("notifications/tools/list_changed")
        return _Serving(gateway, self._routes(gateway))

    def _routes(self, gateway: Gateway) -> dict[str, ASGIApp]:
        routes: dict[str, ASGIApp] = {"/healthz": self._healthz, "/readyz": self._readyz}
        metrics_enabled = gateway.config.server.metrics
        if metrics_enabled:
            routes["/metrics"] = self._metrics
        metadata_groups = [g for g in gateway.groups if g.metadata_url]
        server = gateway.config.server
        policy = HostOriginPolicy(server)
        for group in gateway.groups:
            handler = GroupHandler(group, metrics_enabled=metrics_enabled, tracing=self.tracing)
            routes[group.config.endpoint] = McpTransport(
                handler,
                sessions=self.sessions,
                policy=policy,
                group=group.config.name,
                max_body_bytes=int(server.max_body_bytes),
            )
        for group in metadata_groups:
            routes[PRM_PREFIX + group.config.endpoint] = _static_json(group.protected_resource_metadata())
        if len(metadata_groups) == 1:
            routes[PRM_PREFIX] = _static_json(metadata_groups[0].protected_resource_metadata())
        return routes

    async def reload(self, config: Config) -> None:
        """Build a gateway for `config` off the event loop (specs may be fetched) and serve it; raise ConfigError.

        Unlike at startup, a spec URL that cannot be fetched fails the reload: the previous config, which
        has that upstream's tools, keeps serving rather than one that would be missing them.
        """
        gateway = await asyncio.to_thread(build_gateway, config, previous=self.gateway)
        await self.swap(gateway)

    async def swap(self, gateway: Gateway) -> None:
        """Serve `gateway` from now on; tell sessions whose tools changed; close the old one once it is idle."""
        old = self._serving
        self._serving = self._serve(gateway)
        gateway.start()
        self.sessions.retain({g.config.name for g in gateway.groups})
        before = {g.config.name: (g.config, _listing(g)) for g in old.gateway.groups}
        for group in gateway.groups:
            # Another group config (auth, authorization) can change which tools a caller sees, with the same tools.
            if before.get(group.config.name) != (group.config, _listing(group)):
                self.sessions.broadcast("notifications/tools/list_changed", group=group.config.name)
        # In-flight calls finish on the old gateway, so its clients close only after the longest upstream timeout.
        timeout = max((u.timeout for u in old.gateway.config.upstreams), default=30.0) + 5.0
        task = asyncio.create_task(old.retire(timeout))
        self._retiring[task] = old
        task.add_done_callback(lambda done: self._retiring.pop(done, None))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        serving = self._serving
        route = serving.routes.get(path) or serving.routes.get(path.rstrip("/"))
        if route is not None:
            if scope["method"] == "GET":  # an event stream may stay open for hours; it holds no upstream call
                await route(scope, receive, send)
                return
            serving.active += 1
            try:
                await route(scope, receive, send)
            finally:
                serving.leave()
            return
        for prefix, app in self.mounts.items():
            if path.startswith(prefix + "/"):
                await app({**scope, "path": path[len(prefix) :], "root_path": prefix}, receive, send)
                return
        await send_json(send, 404, orjson.dumps({"error": "not_found", "path": path}))

    async def _healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, orjson.dumps({"status": "alive"}))

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """503 while a spec is still loading; an open circuit is reported but keeps the gateway ready.

        A replica without a spec is missing tools another replica may have, so it stays out of
        rotation. An open circuit is the same on every replica, and failing readiness for it would
        take the other upstreams and groups out of service with it, and leave no traffic to probe
        the upstream with. Names and states only: no URLs or errors on an unauthenticated route.
        """
        gateway = self.gateway
        upstreams: dict[str, dict[str, Any]] = {}
        for upstream_config in gateway.config.upstreams:
            name = upstream_config.name
            upstream = gateway.upstreams.get(name)
            if upstream is None:
                upstreams[name] = {"spec": "loading"}
                continue
            breaker = upstream.breaker
            entry: dict[str, Any] = {
                "spec": "loaded",
                "tools": len(gateway.specs[name].tools),
                "circuit": breaker.state,
            }
            if breaker.state == "open":
                entry["retry_in_s"] = round(breaker.retry_in(), 1)
            upstreams[name] = entry
        loading = [name for name, entry in upstreams.items() if entry["spec"] != "loaded"]
        circuit_open = [name for name, entry in upstreams.items() if entry.get("circuit", "closed") != "closed"]
        status = "starting" if loading else "degraded" if circuit_open else "ready"
        body = {"status": status, "upstreams": upstreams, "loading": loading, "circuit_open": circuit_open}
        await send_json(send, 503 if loading else 200, orjson.dumps(body))

    def begin_shutdown(self) -> None:
        """The server stopped accepting connections: end event streams so in-flight calls alone hold shutdown."""
        self.sessions.closing.set()

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Circuit states are read when scraped: open turns half-open by the clock, not by a call.
        circuits = {name: upstream.breaker.state for name, upstream in self.gateway.upstreams.items()}
        body = metrics.exposition(sessions=len(self.sessions), circuits=circuits)
        content_type = metrics.CONTENT_TYPE_LATEST.encode()
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.gateway.start()
                if self.reloader is not None:
                    self.reloader.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.reloader is not None:
                    await self.reloader.stop()
                for retired in self._retiring.values():
                    retired.hurry()
                await asyncio.gather(*self._retiring, return_exceptions=True)
                await self.gateway.aclose()
                if self.tracing is not None:
                    await asyncio.to_thread(self.tracing.shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _listing(group: Group) -> bytes:
    """Everything `tools/list` can show of a group, to tell whether a reload changed it."""
    return orjson.dumps(list(group.listings.values()))


def _static_json(body: Any) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, orjson.dumps(body))

    return app


def create_app(
    config: Config, *, mounts: Mapping[str, ASGIApp] | None = None, source: ConfigSource | None = None
) -> GatewayApp:
    """The app for `config`; with `source` (where `config` came from), it reloads on SIGHUP and file changes."""
    tracing = None
    if config.server.tracing.enabled:
        try:
            from mcp_anything.tracing import Tracing
        except ImportError:
            raise ConfigError(
                ["server.tracing.enabled: needs OpenTelemetry: pip install 'mcp-anything[tracing]'"]
            ) from None
        tracing = Tracing(config.server.tracing)
    app = GatewayApp(build_gateway(config, defer_unavailable_specs=True), mounts=mounts, tracing=tracing)
    if source is not None:
        app.reloader = Reloader(app, source)
    return app
