"""Per-group rate limits on tool calls (`groups[].rate_limits`), counted with the `limits` library.

Each rule counts calls per subject (the caller, across the tools it covers), per tool
(all callers together) or per subject and tool, in a moving window: at most N calls in any
period of the limit's length, with no burst at a window edge (state: one timestamp per call
still inside the window, so at most N per counter). Which rules apply to a tool is
worked out once, on its first call; a call only hits its tool's counters.

Counters live in `server.rate_limit_storage`: in this process (`memory://`, so each replica
counts on its own) or in Redis (`redis://...`, shared by every replica). If the storage
fails, calls are let through and the failure is logged: a rate limit protects upstreams,
it is not an access control, and a Redis outage must not take every tool down with it.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError
from limits.storage import storage_from_string

from mcp_anything.config import ConfigError, RateLimitConfig
from mcp_anything.identity import Identity
from mcp_anything.tools import Tool

logger = logging.getLogger("mcp_anything.ratelimit")

KEY_PREFIX = "mcp-anything"
STORAGE_ERROR_LOG_SECONDS = 10.0  # while the storage is down, one log line per this many seconds, not one per call
_PER = {"subject": "per caller", "tool": "per tool", "subject_tool": "per caller and tool"}


class Limiter:
    """The counter storage shared by every group of one gateway (and kept across reloads)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        try:
            # `limits` names its asyncio storages async+<scheme>.
            self.storage: Storage = storage_from_string("async+" + uri)  # type: ignore[assignment]
        except ConfigurationError:  # the Redis client is an optional dependency
            raise ConfigError(
                ["server.rate_limit_storage: Redis storage needs the redis extra: pip install 'mcp-anything[redis]'"]
            ) from None
        # A moving window is exact: `10/minute` admits at most 10 calls in any 60 s. The sliding-window
        # counter approximates the previous window by weight, so near a window's edge it let extra calls in.
        self.strategy = MovingWindowRateLimiter(self.storage)
        self._failures = 0
        self._logged_at = -math.inf

    def close(self) -> None:
        """Close the connections to Redis, if any: `limits` gives its storages no close of their own, so
        this reaches the Redis client's connection pool (coredis) behind the storage."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    def storage_failed(self, **fields: object) -> None:
        """Log (at most once per STORAGE_ERROR_LOG_SECONDS) that counting failed; `fields` say what was counted."""
        self._failures += 1
        now = time.monotonic()
        if now - self._logged_at >= STORAGE_ERROR_LOG_SECONDS:
            self._logged_at = now
            fields = {**fields, "failures": self._failures}
            logger.exception("rate limit storage failed; letting requests through", extra={"fields": fields})


@dataclass(frozen=True, slots=True)
class _Rule:
    index: int
    per: str
    item: RateLimitItem
    text: str  # as configured, for messages


@dataclass(frozen=True, slots=True)
class Exceeded:
    rule: str  # `rate_limits[0] (5/minute per caller)`
    retry_after: int  # whole seconds, at least 1


class RateLimits:
    """One group's rules; which apply to a tool is worked out on its first call, then remembered."""

    def __init__(self, group: str, rules: list[RateLimitConfig], limiter: Limiter) -> None:
        self._group = group
        self._limiter = limiter
        self._rules = [(_Rule(i, r.per, parse(r.limit), r.limit), r.tools) for i, r in enumerate(rules)]
        # Tools can appear after startup (a spec URL that loads late), so this is filled as calls come.
        self._by_tool: dict[str, tuple[_Rule, ...]] = {}

    def _rules_for(self, tool: str) -> tuple[_Rule, ...]:
        rules = self._by_tool.get(tool)
        if rules is None:
            rules = self._by_tool[tool] = tuple(
                rule
                for rule, patterns in self._rules
                if patterns is None or any(fnmatch.fnmatchcase(tool, p) for p in patterns)
            )
        return rules

    async def hit(self, tool: Tool, identity: Identity) -> Exceeded | None:
        """Count one call of `tool` by `identity`; say which limit it exceeds, if any."""
        strategy = self._limiter.strategy
        for rule in self._rules_for(tool.name):
            keys = self._keys(rule, tool, identity)
            try:
                if await strategy.hit(rule.item, *keys):
                    continue
                stats = await strategy.get_window_stats(rule.item, *keys)
            except Exception:
                self._limiter.storage_failed(group=self._group, tool=tool.name)
                return None
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            return Exceeded(f"rate_limits[{rule.index}] ({rule.text} {_PER[rule.per]})", retry_after)
        return None

    def _keys(self, rule: _Rule, tool: Tool, identity: Identity) -> tuple[str, ...]:
        if rule.per == "subject":
            return KEY_PREFIX, self._group, str(rule.index), identity.principal
        if rule.per == "tool":
            return KEY_PREFIX, self._group, str(rule.index), tool.name
        return KEY_PREFIX, self._group, str(rule.index), identity.principal, tool.name
