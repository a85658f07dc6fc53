"""What `mcp-anything validate` can tell about a script without running it.

A script that calls `ctx.fetch` with no `allowed_hosts` fails on every fetch, and one
that reads a `ctx.env` name its `env:` does not list reads nothing: both are config
mistakes worth a warning before the gateway serves. Only plain spellings are seen
(`ctx.fetch(`, `ctx.env.NAME`, `ctx.env["NAME"]`, and Lua's global `fetch(`); a
script that reaches them some other way gets its error at run time instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mcp_anything.config import Config, OutboundScriptConfig, ScriptConfig

_FETCH = {
    "js": re.compile(r"\bctx\s*(?:\.\s*fetch|\[\s*[\"']fetch[\"']\s*\])\s*\("),
    "lua": re.compile(r"(?<![\w.:])fetch\s*\(|\bctx\s*(?:\.\s*fetch|\[\s*[\"']fetch[\"']\s*\])\s*\("),
}
_ENV_READ = re.compile(r"\bctx\s*\.\s*env\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*([\"'])([A-Za-z_]\w*)\2\s*\])")


def script_warnings(config: Config) -> list[str]:
    """One line per problem seen, each naming the config key to change."""
    warnings: list[str] = []
    for location, strategy, script in _scripts(config):
        try:
            source = config.resolve_path(script.source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # loading the config already reported it
        if _FETCH[strategy].search(source):
            if not isinstance(script, OutboundScriptConfig):
                warnings.append(f"{location}.source: the script calls fetch, which inbound scripts do not have")
            elif not script.allowed_hosts:
                warnings.append(
                    f"{location}.source: the script calls fetch, but {location}.allowed_hosts lists no host,"
                    " so every fetch fails"
                )
        read = dict.fromkeys(match[1] or match[3] for match in _ENV_READ.finditer(source))
        for name in read:
            if name not in script.env:
                warnings.append(
                    f"{location}.source: the script reads ctx.env.{name}, but {location}.env does not list {name},"
                    " so it reads as nothing"
                )
    return warnings


def _scripts(config: Config) -> Iterator[tuple[str, str, ScriptConfig]]:
    for i, group in enumerate(config.groups):
        if (script := group.inbound_auth.script) is not None:
            yield f"groups[{i}].inbound_auth.{group.inbound_auth.strategy}", group.inbound_auth.strategy, script
    for i, upstream in enumerate(config.upstreams):
        auth = upstream.outbound_auth
        if (script := auth.script) is not None:
            yield f"upstreams[{i}].outbound_auth.{auth.strategy}", auth.strategy, script
