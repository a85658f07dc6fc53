"""OpenAPI upstreams as MCP tools: `load_upstream_tools` (see `loader`) builds an upstream's tools from its spec."""

from mcp_anything.openapi.loader import SpecUnavailable, UpstreamTools, load_upstream_tools

__all__ = ["SpecUnavailable", "UpstreamTools", "load_upstream_tools"]
