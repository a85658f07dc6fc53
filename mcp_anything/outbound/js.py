"""`strategy: js`: the outbound script strategy (see `outbound.script`) with a JavaScript script.

The script file is a function body with one parameter, `ctx`; a top-level `return` gives the
result. `ctx.fetch` returns `{status, headers, text(), json()}`.
"""

from __future__ import annotations

from mcp_anything.config import Config, OutboundAuthConfig
from mcp_anything.js import LANGUAGE, Sandbox
from mcp_anything.outbound.script import Fetcher, ScriptOutboundAuth


def create(config: OutboundAuthConfig, root: Config) -> ScriptOutboundAuth:
    js = config.js
    assert js is not None  # guaranteed by OutboundAuthConfig's validation
    fetcher = Fetcher(js.allowed_hosts, max_body=js.memory_limit_mb << 20, language=LANGUAGE)
    sandbox = Sandbox(
        root.resolve_path(js.source),
        location="js.source",  # the server prefixes the upstream: upstreams[0].outbound_auth.js.source
        timeout=js.timeout,
        memory_limit_mb=js.memory_limit_mb,
        parameters=("ctx",),
        fetch=fetcher,
        env=js.env_values(),
    )
    return ScriptOutboundAuth(sandbox, fetcher)
