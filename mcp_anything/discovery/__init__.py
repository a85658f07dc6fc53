"""Search-based tool discovery: rank a load's tools for a task's wording."""

from mcp_anything.discovery.index import SearchIndex

__all__ = ["SearchIndex"]
