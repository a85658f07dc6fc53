"""`strategy: js`: the outbound script strategy (see `outbound.script`) with a JavaScript script.

The script file is a function body with one parameter, `ctx`; a top-level `return` gives the
result. `ctx.fetch` returns `{status, headers, text(), json()}`.
"""

from __future__ import annotations

from mcp_anything.config import Config, OutboundAuthConfig
from mcp_anything.js import Sandbox
from mcp_anything.outbound.script import Fetcher, ScriptOutboundAuth
from mcp_anything.scripting import JS


def create(config: OutboundAuthConfig, root: Config) -> ScriptOutboundAuth:
    js = config.js
    assert js is not None  # guaranteed by OutboundAuthConfig's validation
    fetcher = Fetcher(js.allowed_hosts, max_body=js.memory_limit_mb << 20, language=JS)
    # The server prefixes the location with the upstream: upstreams[0].outbound_auth.js.source
    path, location = root.resolve_path(js.source), "js.source"
    options = js.sandbox_options()
    sandbox = Sandbox(path, location=location, parameters=("ctx",), fetch=fetcher, **options)
    return ScriptOutboundAuth(sandbox, fetcher, secrets=options["env"].values())
