"""Host and Origin checks for MCP endpoints: DNS rebinding and cross-site browser requests.

A web page can make a browser send requests to a gateway on the user's machine or network,
either directly (cross-site, with an `Origin` header) or by rebinding its own DNS name to the
gateway's address (same-origin for the browser, but with the attacker's name in `Host`).

- `Origin` present and not allowed: 403 (the MCP transport specification). No `Origin`: allowed,
  since non-browser clients do not send one.
- `Host` not allowed: 421 Misdirected Request.

Defaults (`server.allowed_origins` / `server.allowed_hosts` unset):
- bound to a loopback address: loopback origins and hosts (`localhost`, `127.0.0.1`, `[::1]`) on
  any port, plus the origin and host of `server.public_url`;
- bound elsewhere: origins, only `server.public_url`'s; hosts, any.

Entries: an origin `https://app.example.com` (exact) or `http://localhost:*` (any port); a host
`mcp.example.com` (any port) or `mcp.example.com:8443` (that port only); `*` allows anything.
"""

from __future__ import annotations

from mcp_anything.config import ServerConfig


def _split_port(value: str) -> tuple[str, str | None]:
    """`host:port` or `scheme://host:port` into (the rest, port or `*`); IPv6 literals are bracketed in both."""
    base, colon, port = value.rpartition(":")
    if colon and (port.isdigit() or port == "*") and not base.endswith(":"):
        return base, port
    return value, None


class HostOriginPolicy:
    def __init__(self, server: ServerConfig) -> None:
        origins, hosts = server.origin_allowlist, server.host_allowlist
        self.any_origin = "*" in origins
        self._origins = frozenset(o.lower().rstrip("/") for o in origins if not o.endswith(":*"))
        self._origins_any_port = frozenset(o.lower()[:-2] for o in origins if o.endswith(":*"))
        self.any_host = "*" in hosts
        split = [(h.lower(), *_split_port(h.lower())) for h in hosts]
        self._hosts = frozenset(host for host, _, port in split if port not in (None, "*"))
        self._host_names = frozenset(name for _, name, port in split if port in (None, "*"))

    def origin_allowed(self, origin: str) -> bool:
        if self.any_origin:
            return True
        origin = origin.lower()
        if origin in self._origins:
            return True
        return _split_port(origin)[0] in self._origins_any_port

    def host_allowed(self, host: str) -> bool:
        if self.any_host:
            return True
        host = host.lower()
        return host in self._hosts or _split_port(host)[0] in self._host_names
