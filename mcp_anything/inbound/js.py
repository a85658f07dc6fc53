"""`strategy: js`: the inbound script strategy (see `inbound.script`) with a JavaScript script.

The script file is a function body: `headers`, `method`, `path` and `ctx` are its parameters,
and a top-level `return` gives the result.
"""

from __future__ import annotations

from mcp_anything.config import Config, InboundAuthConfig
from mcp_anything.inbound.script import INPUTS, ScriptAuthenticator
from mcp_anything.js import Sandbox


def create(config: InboundAuthConfig, root: Config) -> ScriptAuthenticator:
    js = config.js
    assert js is not None  # guaranteed by InboundAuthConfig's validation
    # The server prefixes the location with the group: groups[0].inbound_auth.js.source
    path, location = root.resolve_path(js.source), "inbound_auth.js.source"
    # Inline: an inbound script has no fetch to wait on, so a worker thread would only add the hop.
    options = js.sandbox_options()
    sandbox = Sandbox(path, location=location, parameters=INPUTS, inline=True, **options)
    return ScriptAuthenticator(sandbox, secrets=options["env"].values())
