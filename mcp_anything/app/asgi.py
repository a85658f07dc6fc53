"""The ASGI application: one gateway's routes (group endpoints, health, readiness, metrics and
protected-resource metadata), matched by exact path, its lifespan, and swapping gateways on reload.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_anything import metrics
from mcp_anything.app.build import Gateway, build_gateway
from mcp_anything.app.metrics_listener import MetricsListener
from mcp_anything.app.reload import Reloader
from mcp_anything.config import Config, ConfigError, ConfigSource
from mcp_anything.origins import HostOriginPolicy
from mcp_anything.server import (
    PRM_PREFIX,
    RELEASE_SCOPE_KEY,
    Group,
    GroupHandler,
    McpTransport,
    SessionStore,
    send_json,
)

if TYPE_CHECKING:
    from mcp_anything.tracing import Tracing

logger = logging.getLogger("mcp_anything")


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


class _Hold:
    """One request's hold on the gateway it started on; released once, at its end or when it becomes a stream."""

    __slots__ = ("_serving",)

    def __init__(self, serving: _Serving) -> None:
        self._serving: _Serving | None = serving

    def __call__(self) -> None:
        if self._serving is not None:
            self._serving.leave()
            self._serving = None


class GatewayApp:
    """The ASGI app: group endpoints, health, readiness, metrics and metadata, matched by exact path.

    `swap` replaces the gateway and its routes in one assignment: a request that already
    found its route finishes on the gateway it started with.
    """

    def __init__(
        self, gateway: Gateway, *, mounts: Mapping[str, ASGIApp] | None = None, tracing: Tracing | None = None
    ) -> None:
        self.mounts = dict(mounts or {})
        self.sessions = SessionStore(gateway.config.server.sessions, limiter=gateway.limiter)
        self.tracing = tracing
        self.reloader: Reloader | None = None  # set by create_app when the config comes from a file
        # `server.metrics.port` is read at startup, like `server.port`.
        metrics_port = gateway.config.server.metrics.port
        self.metrics_listener = (
            None if metrics_port is None else MetricsListener(self._metrics, gateway.config.server.host, metrics_port)
        )
        self._serving = self._serve(gateway)
        self._retiring: dict[asyncio.Task[None], _Serving] = {}
        self._publisher: asyncio.Task[None] | None = None

    @property
    def gateway(self) -> Gateway:
        return self._serving.gateway

    def _serve(self, gateway: Gateway) -> _Serving:
        gateway.on_tools_changed = lambda: self.sessions.broadcast("notifications/tools/list_changed")
        return _Serving(gateway, self._routes(gateway))

    def _routes(self, gateway: Gateway) -> dict[str, ASGIApp]:
        routes: dict[str, ASGIApp] = {"/healthz": self._healthz, "/readyz": self._readyz}
        metrics_enabled = gateway.config.server.metrics.enabled
        if metrics_enabled and self.metrics_listener is None:
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
                endpoint=group.config.endpoint,
                max_body_bytes=int(server.max_body_bytes),
            )
        for group in metadata_groups:
            routes[PRM_PREFIX + group.config.endpoint] = _static_json(group.protected_resource_metadata())
        root = _root_metadata_group(metadata_groups)
        if root is not None:
            routes[PRM_PREFIX] = _static_json(root.protected_resource_metadata())
        return routes

    async def reload(self, config: Config) -> int:
        """Build a gateway for `config` off the event loop (specs may be fetched) and serve it; raise ConfigError.

        Returns how many tools the new gateway serves.

        Unlike at startup, a spec URL that cannot be fetched fails the reload: the previous config, which
        has that upstream's tools, keeps serving rather than one that would be missing them.
        """
        gateway = await asyncio.to_thread(build_gateway, config, previous=self.gateway)
        await self.swap(gateway)
        return sum(len(g.tools) for g in gateway.groups)

    async def swap(self, gateway: Gateway) -> None:
        """Serve `gateway` from now on; tell sessions whose tools changed; close the old one once it is idle."""
        old = self._serving
        self.sessions.configure(gateway.config.server.sessions, gateway.limiter)
        self._serving = self._serve(gateway)
        gateway.start()
        self.sessions.retain({g.config.endpoint for g in gateway.groups})
        before = {g.config.name: (g.config, _listing(g)) for g in old.gateway.groups}
        for group in gateway.groups:
            # Another group config (auth, authorization) can change which tools a caller sees, with the same tools.
            if before.get(group.config.name) != (group.config, _listing(group)):
                self.sessions.broadcast("notifications/tools/list_changed", endpoint=group.config.endpoint)
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
            hold = _Hold(serving)
            scope[RELEASE_SCOPE_KEY] = hold  # a subscriptions/listen stream lets go once it starts
            try:
                await route(scope, receive, send)
            finally:
                hold()
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
        settings = self.gateway.config.server.metrics
        if scope["type"] != "http":  # the metrics listener's server hands over websocket connections too
            return
        if not settings.enabled or scope["path"] != "/metrics":
            await send_json(send, 404, orjson.dumps({"error": "not_found", "path": scope["path"]}))
            return
        if settings.token is not None and not _bearer_matches(scope, settings.token.get_secret_value()):
            refusal = {"error": "unauthorized", "error_description": "/metrics needs the metrics bearer token"}
            await send_json(send, 401, orjson.dumps(refusal), [(b"www-authenticate", b'Bearer realm="metrics"')])
            return
        body = metrics.exposition(**self._scraped())
        content_type = metrics.CONTENT_TYPE_LATEST.encode()
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _scraped(self) -> dict[str, Any]:
        # Circuit states are read when scraped: open turns half-open by the clock, not by a call.
        circuits = {name: upstream.breaker.state for name, upstream in self.gateway.upstreams.items()}
        return {"sessions": len(self.sessions), "streams": self.sessions.stream_count, "circuits": circuits}

    async def _publish(self) -> None:
        """With --workers a scrape reaches one worker: every worker keeps its read-at-scrape gauges current."""
        while True:
            if self.gateway.config.server.metrics.enabled:
                metrics.publish(**self._scraped())
            await asyncio.sleep(metrics.PUBLISH_INTERVAL)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.metrics_listener is not None:
                    try:
                        await self.metrics_listener.start()
                    except ConfigError as exc:
                        await send({"type": "lifespan.startup.failed", "message": "\n".join(exc.problems)})
                        return
                self.gateway.start()
                if self.reloader is not None:
                    self.reloader.start()
                if metrics.MULTIPROCESS:
                    self._publisher = asyncio.create_task(self._publish())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.metrics_listener is not None:
                    await self.metrics_listener.stop()
                if self._publisher is not None:
                    self._publisher.cancel()
                if self.reloader is not None:
                    await self.reloader.stop()
                for retired in self._retiring.values():
                    retired.hurry()
                await asyncio.gather(*self._retiring, return_exceptions=True)
                await self.gateway.aclose()
                self.gateway.limiter.close()  # kept across reloads, so closed only here
                await self.sessions.aclose()
                if self.tracing is not None:
                    await asyncio.to_thread(self.tracing.shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _listing(group: Group) -> bytes:
    """Everything `tools/list` can show of a group, to tell whether a reload changed it."""
    return orjson.dumps(list(group.listings.values()))


def _root_metadata_group(groups: list[Group]) -> Group | None:
    """Whose metadata the suffix-less root path serves: the only protected group, else the one at `/mcp`.

    A client that knows only the host asks the root. With several protected groups, guessing any group
    but the conventional `/mcp` one would point it at the wrong resource, so the root is then a 404.
    """
    if len(groups) == 1:
        return groups[0]
    return next((g for g in groups if g.config.endpoint == "/mcp"), None)


def _bearer_matches(scope: Scope, token: str) -> bool:
    """Exactly one `Authorization: Bearer <token>`, compared in constant time."""
    values = [value for name, value in scope["headers"] if name.lower() == b"authorization"]
    return len(values) == 1 and hmac.compare_digest(values[0], b"Bearer " + token.encode())


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
    for warning in config.warnings():
        logger.warning("config: %s", warning)
    if source is not None:
        app.reloader = Reloader(source, current=lambda: app.gateway.config, serve=app.reload)
    return app
