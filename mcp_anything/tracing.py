"""OpenTelemetry tracing (`server.tracing`, the `tracing` extra): one span per tool call.

Imported only when tracing is enabled, so a gateway without it never loads the SDK and
its call path has no tracing code at all (`server.handler.GroupHandler` checks one attribute).

The span continues the caller's trace when the MCP request carries a W3C `traceparent`
header, and its context goes to the upstream as `traceparent` (and `tracestate`): gateway
headers, so a header parameter the operation declares under those names cannot override
them. Spans are exported in batches from a background thread, never on the event loop.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mcp_anything import __version__
from mcp_anything.config import TracingConfig
from mcp_anything.outcome import CallOutcome
from mcp_anything.tools import Tool


class Tracing:
    def __init__(self, config: TracingConfig) -> None:
        resource = Resource.create({"service.name": config.service_name, "service.version": __version__})
        self._provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)))
        self._provider.add_span_processor(BatchSpanProcessor(_exporter(config)))
        self._tracer = self._provider.get_tracer("mcp_anything", __version__)
        self._propagator = TraceContextTextMapPropagator()

    async def tool_call(
        self,
        group: str,
        tool: Tool,
        inbound_headers: Mapping[str, str],
        invoke: Callable[[dict[str, str]], Awaitable[CallOutcome]],
    ) -> CallOutcome:
        """Run `invoke(trace_headers)` inside a span; `trace_headers` must go on the upstream request."""
        parent = self._propagator.extract(inbound_headers)
        attributes = {
            "mcp.method.name": "tools/call",
            "gen_ai.tool.name": tool.name,
            "mcp_anything.group": group,
            "mcp_anything.upstream": tool.upstream,
            "http.request.method": tool.method,
        }
        with self._tracer.start_as_current_span(
            f"tools/call {tool.name}", context=parent, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            trace_headers: dict[str, str] = {}
            self._propagator.inject(trace_headers)
            called = await invoke(trace_headers)
            outcome = called.outcome
            span.set_attribute("mcp_anything.outcome", outcome)
            if called.status is not None:
                span.set_attribute("http.response.status_code", called.status)
            if outcome != "ok":
                span.set_status(Status(StatusCode.ERROR, outcome))
            return called

    def shutdown(self) -> None:
        """Flush the spans still queued, then stop the export thread."""
        self._provider.shutdown()


def _exporter(config: TracingConfig) -> SpanExporter:
    if config.exporter == "console":
        return ConsoleSpanExporter(out=sys.stdout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=config.endpoint)
