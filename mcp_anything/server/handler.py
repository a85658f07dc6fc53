"""The MCP methods of one group: who the caller is, what they may see, and one `tools/call`.

`server.transport.McpTransport` does the wire and calls the `Handler` methods here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers

from mcp_anything import __version__, metrics
from mcp_anything.authz import Forbidden, Grant, audit
from mcp_anything.config import SEARCH_TOOLS
from mcp_anything.identity import Identity
from mcp_anything.inbound import AuthError, InboundRequest
from mcp_anything.outcome import CallOutcome
from mcp_anything.server.group import Group
from mcp_anything.server.results import error_result
from mcp_anything.server.rpc import INVALID_PARAMS, HttpError, Method, RequestContext, RpcError
from mcp_anything.server.shape import CallerView
from mcp_anything.tools import ArgumentError, Tool

if TYPE_CHECKING:
    from mcp_anything.tracing import Tracing

logger = logging.getLogger("mcp_anything")

# How long a client may keep a tools list. Lists change only when the config is reloaded (or a late spec
# loads), and that notifies every open stream; a client that listens for nothing sees a change within this.
LIST_TTL_MS = 300_000
call_log = logging.getLogger("mcp_anything.calls")


class GroupHandler:
    """Serves one group's MCP methods."""

    capabilities: dict[str, Any] = {"tools": {"listChanged": True}}
    instructions: str | None = None

    def __init__(self, group: Group, *, metrics_enabled: bool = True, tracing: Tracing | None = None) -> None:
        self.group = group
        self.server_info = {"name": f"mcp-anything/{group.config.name}", "version": __version__}
        self.cache_scope = "private" if group.personalised else "public"
        self.methods: dict[str, Method] = {"tools/list": self.list_tools, "tools/call": self.call_tool}
        self._metrics_enabled = metrics_enabled
        self._tool_metrics: dict[str, metrics.ToolMetrics] = {}
        self._tracing = tracing

    @property
    def list_ttl_ms(self) -> int:
        """0 while one of the group's specs is still loading: its tools may appear at any moment."""
        return LIST_TTL_MS if len(self.group.upstreams) == len(self.group.config.upstreams) else 0

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
        if ctx.grant is None:
            try:
                ctx.grant = self.group.authorizer.grant(self.group.config.name, ctx.identity, ctx.headers)
            except Forbidden as exc:
                raise HttpError(403, {"error": "forbidden", "error_description": str(exc)}) from None
        return ctx.grant

    async def admit(self, ctx: RequestContext) -> None:
        self._grant(ctx)

    async def list_tools(self, ctx: RequestContext, params: Mapping[str, Any]) -> dict[str, Any]:
        group = self.group
        allowed = self._grant(ctx).filter_tools(group.tools.values())
        catalog = group.catalog
        if not catalog.searching(len(allowed)):
            return {"tools": [group.listings[tool.name] for tool in allowed]}
        pinned = [group.listings[tool.name] for tool in allowed if tool.name in catalog.pinned]
        return {"tools": pinned + catalog.gateway_tools}

    async def call_tool(self, ctx: RequestContext, params: Mapping[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if not isinstance(name, str):
            raise RpcError(INVALID_PARAMS, "tools/call needs `name`, a string")
        if not isinstance(arguments, dict):
            raise RpcError(INVALID_PARAMS, f"tools/call `arguments` for tool '{name[:64]}' must be an object")
        validate = self.group.catalog.validators.get(name)
        if validate is None:
            return await self._call(ctx, name, arguments)
        try:
            validate(arguments)
        except ArgumentError as exc:
            return error_result(f"Invalid arguments for tool '{name}': {exc}")
        if name == SEARCH_TOOLS:
            return self._search(ctx, arguments["query"], arguments.get("limit"))
        # The same path as a plain tools/call of that tool: one authorization, limit, metric, log and audit line.
        return await self._call(ctx, arguments["name"], arguments.get("arguments") or {})

    def _search(self, ctx: RequestContext, query: str, limit: int | None) -> dict[str, Any]:
        """`search_tools`: only tools the caller may use are ranked, with the same Grant as tools/list."""
        tools = self.group.tools
        allowed = self._grant(ctx).filter_tools(tools.values())
        # Every tool: no set to build for the callers who may use them all.
        names = None if len(allowed) == len(tools) else {tool.name for tool in allowed}
        return self.group.catalog.search(query, limit, names)

    async def _call(self, ctx: RequestContext, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = self.group.tools.get(name)
        # A tool the caller may not call answers exactly like a tool that does not exist.
        if tool is None or not self._grant(ctx).can_call(tool, arguments):
            raise RpcError(INVALID_PARAMS, f"Unknown tool: {name[:64]}")
        return await self.run_tool(ctx, tool, arguments)

    async def run_tool(self, ctx: RequestContext, tool: Tool, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """One admitted call, whichever MCP method asked for it: rate limit, upstream, shaping, metrics, logs."""
        started = time.perf_counter()
        exceeded = await self.group.rate_limits.hit(tool, ctx.identity) if self.group.rate_limits else None
        view = self.group.caller_view(tool, ctx.identity)
        if exceeded is not None:
            message = f"Rate limit exceeded for tool '{tool.name}': {exceeded.rule}; retry in {exceeded.retry_after}s"
            outcome = CallOutcome(error_result(message), refused="rate_limited")
        elif self._tracing is None:
            outcome = await self._invoke(tool, arguments, view)
        else:
            invoke = partial(self._invoke, tool, arguments, view)
            outcome = await self._tracing.tool_call(self.group.config.name, tool, ctx.headers, invoke)
        elapsed = time.perf_counter() - started
        self._metrics_for(tool.name).record(outcome.outcome, None if exceeded else elapsed)
        self._log_call(ctx, tool, outcome, elapsed)
        if view is not None and (view.stats is not None or view.withheld is not None):
            audit.response_filtered(self.group.config.name, ctx.identity, tool.name, view.stats, withheld=view.withheld)
        return outcome.result

    async def _invoke(
        self,
        tool: Tool,
        arguments: Mapping[str, Any],
        view: CallerView | None,
        trace_headers: Mapping[str, str] | None = None,
    ) -> CallOutcome:
        """Validate, build, send; `view` shapes the answer for the caller."""
        try:
            tool.validate(arguments)
            request = tool.build_request(arguments)
            if trace_headers is not None:
                # Gateway headers: a declared `traceparent` parameter never replaces the gateway's trace context.
                for key in [k for k in request.headers if k.lower() in ("traceparent", "tracestate")]:
                    del request.headers[key]
                request.headers.update(trace_headers)
            outcome = await self.group.upstreams[tool.upstream].call(tool, request, view)
        except ArgumentError as exc:
            message = f"Invalid arguments for tool '{tool.name}': {exc}"
            return CallOutcome(error_result(message), refused="invalid_arguments")
        except Exception:
            # Never let an internal error's text reach the caller; the log has the traceback.
            fields = {"group": self.group.config.name, "tool": tool.name}
            logger.exception("tool call failed", extra={"fields": fields})
            message = f"Internal error while calling tool '{tool.name}'; see the gateway log"
            return CallOutcome(error_result(message), refused="error")
        if outcome.error is not None and self._metrics_enabled:
            metrics.upstream_error(tool.upstream, outcome.error)
        return outcome

    def _metrics_for(self, name: str) -> metrics.ToolMetrics:
        tool_metrics = self._tool_metrics.get(name)
        if tool_metrics is None:
            if not self._metrics_enabled:
                return metrics.NULL_TOOL_METRICS  # type: ignore[return-value]
            tool_metrics = self._tool_metrics[name] = metrics.ToolMetrics(self.group.config.name, name)
        return tool_metrics

    def _log_call(self, ctx: RequestContext, tool: Tool, outcome: CallOutcome, elapsed: float) -> None:
        fields = {
            "group": self.group.config.name,
            "subject": ctx.identity.subject,
            "tool": tool.name,
            "upstream": tool.upstream,
            "upstream_status": outcome.status,
            "outcome": outcome.outcome,
            "duration_ms": round(elapsed * 1000, 2),
        }
        call_log.info("tool call", extra={"fields": fields})


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
