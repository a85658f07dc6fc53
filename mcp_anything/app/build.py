"""Building a gateway from a config: every spec, tool, upstream client, authenticator and authorizer.

`build_gateway` does all of it before anything is served; a request only looks things up. The one
exception: a spec served by URL that cannot be fetched at startup is fetched again in the background
(with backoff) while the other upstreams serve; its upstream's tools appear when it loads, and
`/readyz` answers 503 until then.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from mcp_anything.authz import create_authorizer
from mcp_anything.config import GATEWAY_TOOLS, Config, ConfigError, GroupConfig, UpstreamConfig
from mcp_anything.inbound import create_authenticator
from mcp_anything.metrics import set_spec_findings
from mcp_anything.openapi import SpecUnavailable, UpstreamTools, load_upstream_tools
from mcp_anything.openapi.findings import counts, log_findings
from mcp_anything.outbound import OutboundAuth, create_outbound_auth
from mcp_anything.ratelimit import Limiter, RateLimits
from mcp_anything.server.group import Group
from mcp_anything.shaping import unmatched_globs
from mcp_anything.tools import Tool
from mcp_anything.upstream import Upstream, close_all

logger = logging.getLogger("mcp_anything")

SPEC_RETRY_FIRST = 1.0  # seconds before the first background retry of an unreachable spec URL
SPEC_RETRY_MAX = 60.0


def _locate(problems: list[str], location: str) -> list[str]:
    """Prefix strategy-relative problems (`lua.source: ...`) with where the strategy is configured."""
    return [p if p.startswith(("groups[", "upstreams[")) else f"{location}.{p}" for p in problems]


@dataclass
class PendingUpstream:
    """An upstream whose spec URL could not be fetched yet; retried in the background."""

    index: int
    config: UpstreamConfig
    auth: OutboundAuth


@dataclass
class Gateway:
    config: Config
    groups: list[Group]
    upstreams: dict[str, Upstream]
    specs: dict[str, UpstreamTools]
    limiter: Limiter  # rate-limit counters; handed on to the next gateway on reload
    pending: dict[str, PendingUpstream] = field(default_factory=dict)
    # Called after an upstream's tools appear (the app broadcasts `notifications/tools/list_changed`).
    on_tools_changed: Callable[[], None] = lambda: None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False, repr=False)

    def start(self) -> None:
        """Start serving: report the specs' findings; fetch in the background the specs not fetched yet."""
        for name, spec in self.specs.items():
            log_findings(name, spec.findings)
        self._export_findings()
        self._tasks = [asyncio.create_task(self._load_later(name)) for name in self.pending]

    def _export_findings(self) -> None:
        set_spec_findings({name: counts(spec.findings) for name, spec in self.specs.items()})

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await close_all(list(self.upstreams.values()))
        for pending in self.pending.values():
            await pending.auth.aclose()
        for group in self.groups:
            await group.authenticator.aclose()

    async def _load_later(self, name: str) -> None:
        pending = self.pending[name]
        delay = SPEC_RETRY_FIRST
        while True:
            await asyncio.sleep(random.uniform(delay / 2, delay))
            try:
                loaded = await asyncio.to_thread(
                    load_upstream_tools, pending.config, self.config, f"upstreams[{pending.index}]"
                )
                problems = self._clashes(name, loaded)
            except ConfigError as exc:
                problems = exc.problems
            if not problems:
                self._activate(name, loaded)
                return
            delay = min(delay * 2, SPEC_RETRY_MAX)
            fields = {"upstream": name, "problems": problems, "retry_in_s": delay}
            logger.warning("spec for upstream %r still not loaded", name, extra={"fields": fields})

    def _clashes(self, name: str, loaded: UpstreamTools) -> list[str]:
        specs = {**self.specs, name: loaded}
        return [
            problem
            for i, group in enumerate(self.config.groups)
            if name in group.upstreams
            for problem in _tool_clashes(f"groups[{i}].upstreams", group, specs)
        ]

    def _activate(self, name: str, loaded: UpstreamTools) -> None:
        pending = self.pending.pop(name)
        upstream = Upstream(pending.config, loaded.base_url, pending.auth)
        self.specs[name] = loaded
        self.upstreams[name] = upstream
        for group in self.groups:
            if name in group.config.upstreams:
                group.upstreams[name] = upstream
                group.set_tools(_group_tools(group.config, self.specs))
        logger.info("spec for upstream %r loaded: %d tools", name, len(loaded.tools))
        log_findings(name, loaded.findings)
        self._export_findings()
        self.on_tools_changed()


def _group_tools(group: GroupConfig, specs: Mapping[str, UpstreamTools]) -> dict[str, Tool]:
    """A group's tools in config order, from the upstreams whose specs are loaded."""
    return {t.name: t for name in group.upstreams if name in specs for t in specs[name].tools}


def _tool_clashes(location: str, group: GroupConfig, specs: Mapping[str, UpstreamTools]) -> list[str]:
    """Tool names that two of a group's upstreams (among those whose specs are loaded) both produce,
    or that an upstream shares with the gateway's own tools of the group's discovery mode."""
    problems = []
    owner: dict[str, str] = {}
    for name in group.upstreams:
        for tool in specs[name].tools if name in specs else ():
            if group.discovery.searchable and tool.name in GATEWAY_TOOLS:
                problems.append(
                    f"{location}: tool {tool.name!r} of upstream {name!r} has the name of the gateway's own"
                    f" {tool.name!r} tool (discovery mode {group.discovery.mode!r}); rename it (x-mcp-name,"
                    " tool_prefix) or set discovery.mode: all"
                )
            if tool.name in owner:
                problems.append(
                    f"{location}: tool {tool.name!r} comes from both {owner[tool.name]!r} and {name!r};"
                    " give one of them a different tool_prefix"
                )
            owner[tool.name] = name
    return problems


def _group_tool_names(group: GroupConfig, specs: Mapping[str, UpstreamTools]) -> list[str] | None:
    """The group's tool names; None until every upstream of the group is loaded (`validate` checks the rest)."""
    if not all(name in specs for name in group.upstreams):
        return None
    return [tool.name for name in group.upstreams for tool in specs[name].tools]


def _unmatched_filter_globs(location: str, group: GroupConfig, specs: Mapping[str, UpstreamTools]) -> list[str]:
    """Response filters naming tools the group does not have: a misspelt glob would leave a tool unfiltered."""
    names = _group_tool_names(group, specs)
    if names is None:
        return []
    return [
        f"{location}[{index}]" + (f" ({model.notes!r})" if model.notes else "") + f": tools: {glob!r} matches no"
        f" tool of group {group.name!r}"
        for index, model in enumerate(group.response_filters)
        for glob in unmatched_globs(model, names)
    ]


def _unmatched_pinned_globs(location: str, group: GroupConfig, specs: Mapping[str, UpstreamTools]) -> list[str]:
    """Pinned globs naming tools the group does not have: a misspelt one would hide a tool meant to be listed."""
    names = _group_tool_names(group, specs)
    if names is None or not group.discovery.searchable:
        return []
    return [
        f"{location}[{index}]: {glob!r} matches no tool of group {group.name!r}"
        for index, glob in enumerate(group.discovery.pinned)
        if not any(fnmatchcase(name, glob) for name in names)
    ]


def load_tools(config: Config) -> dict[str, UpstreamTools]:
    """Load every upstream's spec and build its tools; raise ConfigError listing every problem."""
    return _load_specs(config, defer_unavailable=False)[0]


def _load_specs(config: Config, *, defer_unavailable: bool) -> tuple[dict[str, UpstreamTools], dict[str, str]]:
    """(loaded specs, {upstream: problem} for spec URLs that could not be fetched and will be retried)."""
    problems: list[str] = []
    loaded: dict[str, UpstreamTools] = {}
    unavailable: dict[str, str] = {}
    for i, upstream in enumerate(config.upstreams):
        try:
            loaded[upstream.name] = load_upstream_tools(upstream, config, f"upstreams[{i}]")
        except SpecUnavailable as exc:
            if not defer_unavailable:
                problems += exc.problems
            unavailable[upstream.name] = exc.problems[0]
        except ConfigError as exc:
            problems += exc.problems
    for i, group in enumerate(config.groups):
        problems += _tool_clashes(f"groups[{i}].upstreams", group, loaded)
        problems += _unmatched_filter_globs(f"groups[{i}].response_filters", group, loaded)
        problems += _unmatched_pinned_globs(f"groups[{i}].discovery.pinned", group, loaded)
    if problems:
        raise ConfigError(problems)
    return loaded, unavailable


def build_gateway(config: Config, *, defer_unavailable_specs: bool = False, previous: Gateway | None = None) -> Gateway:
    """Build everything a request needs; with `defer_unavailable_specs`, unreachable spec URLs load later.

    `previous` (on reload) lends what must outlive a config: the rate-limit counters.
    """
    specs, unavailable = _load_specs(config, defer_unavailable=defer_unavailable_specs)
    storage = config.server.rate_limit_storage.get_secret_value()
    limiter = previous.limiter if previous is not None and previous.limiter.uri == storage else Limiter(storage)
    problems: list[str] = []
    upstreams: dict[str, Upstream] = {}
    pending: dict[str, PendingUpstream] = {}
    for i, upstream_config in enumerate(config.upstreams):
        try:
            auth = create_outbound_auth(upstream_config.outbound_auth, config)
        except ConfigError as exc:
            problems += _locate(exc.problems, f"upstreams[{i}].outbound_auth")
            continue
        name = upstream_config.name
        if name in unavailable:
            pending[name] = PendingUpstream(i, upstream_config, auth)
            fields = {"upstream": name, "problems": [unavailable[name]]}
            logger.warning(
                "spec for upstream %r not loaded; retrying in the background", name, extra={"fields": fields}
            )
        else:
            upstreams[name] = Upstream(upstream_config, specs[name].base_url, auth)
    groups = []
    for i, group_config in enumerate(config.groups):
        try:
            authenticator = create_authenticator(group_config.inbound_auth, config)
            authorizer = create_authorizer(group_config.authorization, config)
        except ConfigError as exc:
            problems += _locate(exc.problems, f"groups[{i}]")
            continue
        rate_limits = (
            RateLimits(group_config.name, group_config.rate_limits, limiter) if group_config.rate_limits else None
        )
        groups.append(
            Group(
                group_config,
                _group_tools(group_config, specs),
                {name: upstreams[name] for name in group_config.upstreams if name in upstreams},
                authenticator,
                authorizer,
                config.server.base_url,
                rate_limits,
            )
        )
    if problems:
        raise ConfigError(problems)
    if not config.server.loopback:
        for group in groups:
            if group.config.inbound_auth.strategy == "none":
                logger.warning(
                    "group %r serves %s on %s with no inbound auth: anyone who can reach it can call its tools",
                    group.config.name,
                    group.config.endpoint,
                    config.server.host,
                )
    return Gateway(config, groups, upstreams, specs, limiter, pending)
