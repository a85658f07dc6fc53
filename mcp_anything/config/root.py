"""The whole config file: `server`, `groups` and `upstreams`, and the checks that span sections."""

from __future__ import annotations

from pathlib import Path

from pydantic import PrivateAttr, ValidationInfo, model_validator

from mcp_anything.config.groups import GroupConfig
from mcp_anything.config.server import ServerConfig
from mcp_anything.config.types import StrictModel
from mcp_anything.config.upstreams import UpstreamConfig


class Config(StrictModel):
    server: ServerConfig = ServerConfig()
    groups: list[GroupConfig]
    upstreams: list[UpstreamConfig]
    # Where relative paths (specs, overlays, scripts, keys) are resolved from: the config file's directory.
    # Not a key: the loader passes it as validation context (`{"base_dir": ...}`).
    _base_dir: Path = PrivateAttr(default=Path("."))

    @model_validator(mode="after")
    def _take_base_dir(self, info: ValidationInfo) -> Config:
        if isinstance(info.context, dict) and "base_dir" in info.context:
            self._base_dir = Path(info.context["base_dir"]).resolve()
        return self

    def cross_reference_problems(self) -> list[str]:
        """Problems no single section can see: duplicate names, groups naming unknown upstreams."""
        problems: list[str] = []
        problems += _duplicates("upstreams", [u.name for u in self.upstreams], "name")
        problems += _duplicates("groups", [g.name for g in self.groups], "name")
        problems += _duplicates("groups", [g.endpoint for g in self.groups], "endpoint")
        metrics = self.server.metrics
        reserved = {"/healthz", "/readyz"} | ({"/metrics"} if metrics.enabled and metrics.port is None else set())
        for i, group in enumerate(self.groups):
            if group.endpoint in reserved:
                problems.append(f"groups[{i}].endpoint: {group.endpoint} is served by the gateway itself")
        known = {u.name for u in self.upstreams}
        for i, group in enumerate(self.groups):
            for j, name in enumerate(group.upstreams):
                if name not in known:
                    problems.append(f"groups[{i}].upstreams[{j}]: unknown upstream {name!r}; known: {sorted(known)}")
        return problems

    def warnings(self) -> list[str]:
        """Valid but risky settings, `location: what and why`: `validate` prints them, `serve` logs them."""
        found = []
        server = self.server
        if server.metrics.exposed and not server.loopback:
            found.append(
                f"server.metrics: /metrics is served without a token on {server.host}:{server.port}, next to the "
                "MCP endpoints: anyone who can reach them can read every tool name, upstream and outcome count; "
                "set server.metrics.port or server.metrics.token"
            )
        found += [
            f"groups[{i}].authorization.capabilities: the wristband is bound to neither an `audience` nor the "
            "caller (`bind_subject: true`): one that leaks can be replayed at every group trusting this key, "
            "by any caller, until it expires"
            for i, group in enumerate(self.groups)
            if group.authorization.capabilities is not None and group.authorization.capabilities.unbound
        ]
        return found

    def upstream(self, name: str) -> UpstreamConfig:
        return next(u for u in self.upstreams if u.name == name)

    def resolve_path(self, path: str | Path) -> Path:
        return (self._base_dir / path).resolve()

    @property
    def audit_destination(self) -> str | Path:
        """`server.audit_log` with a file path resolved against the config file."""
        audit = self.server.audit_log
        return audit if audit in ("stderr", "stdout", "off") else self.resolve_path(audit)


def _duplicates(section: str, values: list[str], key: str) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for i, value in enumerate(values):
        if value in seen:
            problems.append(f"{section}[{i}].{key}: {value!r} is already used by {section}[{seen[value]}]")
        seen.setdefault(value, i)
    return problems
