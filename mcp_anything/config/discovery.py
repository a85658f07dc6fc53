"""`groups[].discovery`: whether `tools/list` shows every tool, or a search for them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mcp_anything.config.types import StrictModel

# The gateway's own tools in search mode: no upstream tool of such a group may have these names.
SEARCH_TOOLS = "search_tools"
CALL_TOOL = "call_tool"
GATEWAY_TOOLS = (SEARCH_TOOLS, CALL_TOOL)


class DiscoveryConfig(StrictModel):
    # all: every tool the caller may use; search: pinned tools plus search_tools and call_tool;
    # auto: search for callers who may use more than `auto_threshold` tools, all for the others.
    mode: Literal["all", "search", "auto"] = "auto"
    auto_threshold: int = Field(default=50, ge=0)
    max_results: int = Field(default=10, ge=1, le=50)  # search_tools' default page of results
    pinned: list[str] = []  # glob patterns on tool names: listed as themselves in search mode

    @property
    def searchable(self) -> bool:
        """Whether the group may serve the gateway tools, whose names its upstreams' tools may then not take.

        In `auto`, only once it has more tools than `auto_threshold`; the names are reserved regardless,
        so a spec that grows cannot turn a working config into a broken one.
        """
        return self.mode != "all"
