"""Search-based tool discovery: rank a load's tools for a task's wording; a group's discovery modes."""

from mcp_anything.discovery.catalog import Catalog
from mcp_anything.discovery.index import SearchIndex

__all__ = ["Catalog", "SearchIndex"]
