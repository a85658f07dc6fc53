"""Search-based tool discovery: rank a load's tools for a task's wording; a group's discovery modes.

`SearchIndex` is imported from `mcp_anything.discovery.index`, not re-exported here: the index
brings bm25s and numpy, which load only when a group can search.
"""

from mcp_anything.discovery.catalog import Catalog

__all__ = ["Catalog"]
