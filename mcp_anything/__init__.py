"""mcp-anything: serve existing HTTP APIs, described by OpenAPI, as MCP tools."""

__version__ = "0.1.0"
