"""The upstream's base URL: configured, or the spec's first server with its variables filled in."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

from mcp_anything.config import UpstreamConfig
from mcp_anything.openapi.documents import SpecError

_VARIABLE = re.compile(r"\{([^{}]+)\}")


def base_url(spec: dict[str, Any], upstream: UpstreamConfig, source_uri: str) -> str:
    servers = spec.get("servers")
    server = servers[0] if isinstance(servers, list) and servers and isinstance(servers[0], dict) else {}
    variables = server.get("variables")
    declared: dict[str, Any] = variables if isinstance(variables, dict) else {}
    unknown = sorted(set(upstream.server_variables) - set(declared))
    if unknown:
        raise SpecError(
            f"server_variables {unknown} are not declared by the spec's first server (declared: {sorted(declared)})"
        )
    if upstream.base_url:
        return upstream.base_url.rstrip("/")
    url = str(server.get("url") or "/")

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        variable = declared.get(name)
        if name in upstream.server_variables:
            value = upstream.server_variables[name]
            allowed = variable.get("enum") if isinstance(variable, dict) else None
            if isinstance(allowed, list) and allowed and value not in allowed:
                raise SpecError(f"server variable {name!r}: {value!r} is not one of {allowed}")
            return value
        if not isinstance(variable, dict) or "default" not in variable:
            raise SpecError(f"server URL {url!r}: variable {{{name}}} has no default; set it in server_variables")
        return str(variable["default"])

    url = _VARIABLE.sub(substitute, url)
    if not re.match(r"^https?://", url):
        if not source_uri.startswith(("http://", "https://")):
            raise SpecError(f"the spec's server URL {url!r} is not an absolute http(s) URL; set base_url")
        url = urljoin(source_uri, url)
    return url.rstrip("/")
