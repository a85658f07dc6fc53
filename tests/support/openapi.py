"""Building an upstream's tools from a spec in tests: a spec file or dict, through the real loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mcp_anything.config import parse_config
from mcp_anything.openapi import UpstreamTools, load_upstream_tools

SPECS = Path(__file__).resolve().parents[1] / "specs"
# The real-spec corpus, ../shared/specs beside the repository; tests that read it are marked `corpus`.
SHARED_SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs"


def load(spec: str | Path | dict[str, Any], tmp_path: Path | None = None, **upstream: Any) -> UpstreamTools:
    """Tools for `spec` (a path, or a dict written to tmp_path) with upstream settings as keyword arguments."""
    if isinstance(spec, dict):
        assert tmp_path is not None
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(spec))
        spec = path
    settings = {"name": "pets", "base_url": "http://127.0.0.1:9", "openapi": {"source": str(spec)}, **upstream}
    config = parse_config(
        {
            "groups": [{"name": "g", "upstreams": [settings["name"]], "inbound_auth": {"strategy": "none"}}],
            "upstreams": [settings],
        }
    )
    return load_upstream_tools(config.upstreams[0], config, "upstreams[0]")


def tools_by_name(spec: str | Path | dict[str, Any], tmp_path: Path | None = None, **upstream: Any) -> dict:
    return {tool.name: tool for tool in load(spec, tmp_path, **upstream).tools}


def minimal_spec(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths, **extra}
