"""OpenTelemetry tracing end to end: the real OTLP/HTTP exporter sending to a real receiver on 127.0.0.1,
the recording upstream checking the propagated `traceparent`, the official MCP client sending its own."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.types import Receive, Scope, Send

from tests.support.gateway import GatewayFactory
from tests.support.mcp import mcp_client
from tests.support.servers import ServerThread, free_port, read_body
from tests.support.upstream import RecordingUpstream

pytestmark = pytest.mark.anyio

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SPOOFED = "00-11111111111111111111111111111111-2222222222222222-01"

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "traced", "version": "1"},
    "paths": {
        "/traced": {
            "get": {
                "operationId": "traced",
                "parameters": [{"name": "traceparent", "in": "header", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/status/{code}": {
            "get": {
                "operationId": "status",
                "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "ok"}},
            }
        },
    },
}


class OtlpReceiver:
    """The receiving end of OTLP/HTTP traces (protobuf), recording every span."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if dict(scope["headers"]).get(b"content-encoding") == b"gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-protobuf")]}
        )
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def receiver() -> Iterator[tuple[OtlpReceiver, str]]:
    app = OtlpReceiver()
    with ServerThread(app) as server:
        yield app, server.url + "/v1/traces"


def traced_config(upstream_url: str, tracing: dict[str, Any], directory: Path) -> dict[str, Any]:
    (directory / "traced.yaml").write_text(yaml.safe_dump(SPEC))
    return {
        "server": {"tracing": tracing},
        "groups": [
            {"name": "default", "endpoint": "/mcp", "upstreams": ["traced"], "inbound_auth": {"strategy": "none"}}
        ],
        "upstreams": [
            {"name": "traced", "tool_prefix": "t", "base_url": upstream_url, "openapi": {"source": "traced.yaml"}}
        ],
    }


def _attributes(span: Span) -> dict[str, Any]:
    result = {}
    for attribute in span.attributes:
        value = attribute.value
        result[attribute.key] = getattr(value, value.WhichOneof("value"))
    return result


@pytest.mark.slow
async def test_a_span_per_call_continuing_the_callers_trace_and_propagated_upstream(
    gateway: GatewayFactory,
    upstream: RecordingUpstream,
    upstream_url: str,
    receiver: tuple[OtlpReceiver, str],
    tmp_path: Path,
) -> None:
    collected, endpoint = receiver
    raw = traced_config(upstream_url, {"enabled": True, "service_name": "gw-test", "endpoint": endpoint}, tmp_path)
    caller = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
    with gateway(raw, base_dir=tmp_path) as url:
        async with mcp_client(url + "/mcp", headers=caller) as client:
            ok = await client.call_tool("t_traced", {"traceparent": SPOOFED})
            failed = await client.call_tool("t_status", {"code": 503})
    # Leaving the block shut the gateway down, which flushed its spans.
    assert ok.is_error is False and failed.is_error is True

    sent = upstream.requests[0].header("traceparent")
    assert sent is not None and sent != SPOOFED, "a declared traceparent parameter never replaces the gateway's"
    version, trace_id, span_id, flags = sent.split("-")
    assert (version, trace_id, flags) == ("00", CALLER_TRACE, "01")
    assert span_id != CALLER_SPAN

    spans = {span.name: span for span in collected.spans}
    assert set(spans) == {"tools/call t_traced", "tools/call t_status"}
    span = spans["tools/call t_traced"]
    assert span.trace_id.hex() == CALLER_TRACE
    assert span.parent_span_id.hex() == CALLER_SPAN
    assert span.span_id.hex() == span_id, "the upstream's parent is the tool call span"
    assert span.kind == Span.SpanKind.SPAN_KIND_CLIENT
    assert {
        "mcp.method.name": "tools/call",
        "gen_ai.tool.name": "t_traced",
        "mcp_anything.group": "default",
        "mcp_anything.upstream": "traced",
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "mcp_anything.outcome": "ok",
    }.items() <= _attributes(span).items()

    error = spans["tools/call t_status"]
    assert _attributes(error)["http.response.status_code"] == 503
    assert error.status.code == error.status.STATUS_CODE_ERROR


@pytest.mark.slow
async def test_without_a_caller_trace_each_call_starts_one(
    gateway: GatewayFactory,
    upstream: RecordingUpstream,
    upstream_url: str,
    receiver: tuple[OtlpReceiver, str],
    tmp_path: Path,
) -> None:
    collected, endpoint = receiver
    raw = traced_config(upstream_url, {"enabled": True, "endpoint": endpoint}, tmp_path)
    with gateway(raw, base_dir=tmp_path) as url:
        async with mcp_client(url + "/mcp") as client:
            await client.call_tool("t_traced", {})
    (span,) = collected.spans
    assert not span.parent_span_id
    sent = upstream.last.header("traceparent")
    assert sent is not None and sent.startswith(f"00-{span.trace_id.hex()}-{span.span_id.hex()}-")


@pytest.mark.slow
async def test_tracing_off_sends_no_trace_headers(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, tmp_path: Path
) -> None:
    raw = traced_config(upstream_url, {"enabled": False}, tmp_path)
    caller = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
    with gateway(raw, base_dir=tmp_path) as url:
        async with mcp_client(url + "/mcp", headers=caller) as client:
            await client.call_tool("t_traced", {})
    assert upstream.last.header("traceparent") is None, "inbound headers are never copied upstream"


@pytest.mark.slow
def test_disabled_tracing_never_loads_the_sdk(tmp_path: Path) -> None:
    (tmp_path / "traced.yaml").write_text(yaml.safe_dump(SPEC))
    script = (
        "import sys\n"
        "from mcp_anything.config import parse_config\n"
        "from mcp_anything.app import create_app\n"
        f"raw = {traced_config('http://127.0.0.1:9', {'enabled': False}, tmp_path)!r}\n"
        f"create_app(parse_config(raw, base_dir=__import__('pathlib').Path({str(tmp_path)!r})))\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'mcp_anything.tracing')))\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


@pytest.mark.slow
async def test_console_exporter_prints_spans_from_a_served_gateway(upstream_url: str, tmp_path: Path) -> None:
    port = free_port()
    tracing = {"enabled": True, "exporter": "console", "service_name": "console-test"}
    raw = traced_config(upstream_url, tracing, tmp_path)
    raw["server"]["port"] = port
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    stdout = tmp_path / "stdout.log"
    with served(tmp_path / "config.yaml", stdout):
        await _started(f"http://127.0.0.1:{port}/healthz")
        async with mcp_client(f"http://127.0.0.1:{port}/mcp") as client:
            assert (await client.call_tool("t_traced", {})).is_error is False
    spans = json.loads("[" + stdout.read_text().replace("}\n{", "},\n{") + "]")
    (span,) = [s for s in spans if s["name"] == "tools/call t_traced"]
    assert span["resource"]["attributes"]["service.name"] == "console-test"
    assert span["attributes"]["gen_ai.tool.name"] == "t_traced"


async def _started(health_url: str) -> None:
    async with httpx2.AsyncClient() as http:
        with anyio.fail_after(20):
            while True:
                try:
                    if (await http.get(health_url)).status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                await anyio.sleep(0.1)


@contextmanager
def served(config: Path, stdout: Path) -> Iterator[None]:
    """`mcp-anything serve` as its own process, stdout into a file; stopped with SIGINT (spans are flushed)."""
    with stdout.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_anything", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)
