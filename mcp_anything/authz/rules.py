"""Claim rules: CEL expressions over the caller's verified claims, compiled once at startup.

A rule's `when` sees `jwt` (the verified claims), `request.headers` (lower-cased names, without
credentials, cookies or the capability header) and, for calls, `mcp.tool` (`name`, `arguments`,
`method`, `path` as templated in the spec, `upstream`, `tags`). Any matching deny wins, otherwise
any matching allow, otherwise the group's `default`. Among the matching rules of the winning effect,
the one reported (and audited with its `notes`) has the lowest `priority`, then comes first. An
expression that fails at run time (a missing claim, a type mismatch) counts as matching for deny
rules and as not matching for allow rules.

Cost model: rules that read only `jwt` and `request` are evaluated once per request (`Rules.evaluate`);
which rules apply to which tool is worked out once per tool name and remembered, so
filtering a list is two bit tests per tool. Only rules that read `mcp` run per tool. Rules hold
their bits in (priority, config order), so the lowest set bit is the rule to report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import cel

from mcp_anything.config import RuleConfig, compile_expression, uses_tool
from mcp_anything.tools import Tool


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    name: str  # what the audit log names: `rules[2]`, or `default`
    deny: bool
    program: cel.Program | None = None  # None: always matches (the default)
    tools: tuple[str, ...] | None = None  # None: every tool, and the rule gates the endpoint
    per_tool: bool = False  # reads `mcp`: decided per tool, never once per request
    priority: int = 0
    notes: str = ""

    def covers(self, tool_name: str) -> bool:
        return self.tools is None or any(fnmatchcase(tool_name, pattern) for pattern in self.tools)


# Never shown to rules: they could copy a secret into an error message or a log line. A session id
# is a bearer secret too (whoever holds it continues the session).
_SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "mcp-session-id")


class EvaluationError(Exception):
    """A rule's expression failed or did not return a boolean."""


def _run(rule: Rule, context: cel.Context | None) -> bool:
    if context is None:
        raise EvaluationError("the caller's claims cannot be read by CEL")
    assert rule.program is not None
    try:
        result = rule.program.execute(context)
    except Exception as exc:  # KeyError, TypeError, RuntimeError, ValueError, ZeroDivisionError...
        raise EvaluationError(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(result, bool):
        raise EvaluationError(f"expected a boolean, got {type(result).__name__}")
    return result


class Rules:
    """A group's rules and default, compiled; `evaluate` once per request."""

    def __init__(self, rules: Sequence[Rule], default_allow: bool, hidden_headers: Iterable[str] = ()) -> None:
        # Sorted once: bit order is report order (the lowest priority first; a stable sort keeps config order).
        self.rules = tuple(sorted(rules, key=lambda rule: rule.priority))
        self.default = Rule(name="default", deny=not default_allow)
        self._bit = {rule: 1 << i for i, rule in enumerate(self.rules)}
        self._endpoint_allow = [r for r in self.rules if r.tools is None and not r.deny]
        self._per_tool_mask = sum(self._bit[r] for r in self.rules if r.per_tool)
        # tool name -> bit mask of the rules that cover it; bounded by the number of tools served.
        self._covering: dict[str, int] = {}
        self._hidden_headers = frozenset(name.lower() for name in (*_SECRET_HEADERS, *hidden_headers))
        self._reads_request = any("request" in rule.program.variables() for rule in self.rules if rule.program)

    def evaluate(self, claims: Mapping[str, Any], headers: Iterable[tuple[str, str]] = ()) -> RequestRules:
        """`headers`: the request's (name, value) pairs, names in any case."""
        variables: dict[str, Any] = {"jwt": claims}
        if self._reads_request:
            variables["request"] = {"headers": self.visible_headers(headers)}
        try:
            context: cel.Context | None = cel.Context(variables=variables)
        except Exception:  # a claim value CEL cannot represent: every rule errors, so fail closed
            context = None
        return RequestRules(self, context)

    def visible_headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """What `request.headers` holds: lower-cased names, repeated headers joined by ", ", no secrets."""
        visible: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            if key in self._hidden_headers:
                continue
            visible[key] = f"{visible[key]}, {value}" if key in visible else value
        return visible

    def covering(self, tool_name: str) -> int:
        mask = self._covering.get(tool_name)
        if mask is None:
            mask = sum(self._bit[r] for r in self.rules if r.covers(tool_name))
            self._covering[tool_name] = mask
        return mask


class RequestRules:
    """The rules as decided for one caller: `jwt`-only rules are already evaluated."""

    def __init__(self, rules: Rules, context: cel.Context | None) -> None:
        self._rules = rules
        self._context = context
        self.errors: dict[str, str] = {}  # rule name -> why it failed, for the audit log
        self._deny_mask = 0
        self._allow_mask = 0
        for rule in rules.rules:
            if not rule.per_tool and self._matches(rule, at_list=False):
                if rule.deny:
                    self._deny_mask |= rules._bit[rule]
                else:
                    self._allow_mask |= rules._bit[rule]
        self.closed_by = self._endpoint_decision()

    def _endpoint_decision(self) -> tuple[Rule | None, str] | None:
        """(rule, reason) when the endpoint is closed to this caller, else None.

        Rules without `tools` decide who may connect: a matching deny closes the endpoint,
        and when there are allow rules without `tools`, the caller must match one of them.
        """
        rules = self._rules
        for rule in rules.rules:
            if rule.tools is None and rule.deny and self._deny_mask & rules._bit[rule]:
                return rule, self._why(rule, "deny rule matched")
        if rules._endpoint_allow and not any(self._allow_mask & rules._bit[r] for r in rules._endpoint_allow):
            names = ", ".join(r.name for r in rules._endpoint_allow)
            return None, f"no rule without `tools` allows this caller ({names})"
        return None

    def reason(self, rule: Rule) -> str:
        """Why `rule` decided, for the audit log."""
        if rule is self._rules.default:
            return f"no rule matched: default {'deny' if rule.deny else 'allow'}"
        return self._why(rule, f"{'deny' if rule.deny else 'allow'} rule matched")

    def _why(self, rule: Rule, matched: str) -> str:
        error = self.errors.get(rule.name)
        return f"evaluation failed, fail closed: {error}" if error else matched

    def listable(self, tools: Iterable[Tool]) -> list[Tool]:
        """The tools that `decide(tool, None)` allows, in order; with no rule reading `mcp`, bit tests only."""
        rules = self._rules
        memo, deny, allow, per_tool = rules._covering, self._deny_mask, self._allow_mask, rules._per_tool_mask
        default_allow = not rules.default.deny
        visible = []
        for tool in tools:
            covering = memo.get(tool.name)
            if covering is None:
                covering = rules.covering(tool.name)
            if covering & deny:
                continue
            if covering & per_tool:
                if not self.decide(tool, None).deny:
                    visible.append(tool)
            elif covering & allow or default_allow:
                visible.append(tool)
        return visible

    def decide(self, tool: Tool, arguments: Mapping[str, Any] | None) -> Rule:
        """The rule that decides `tool`: a deny, an allow or the default; of several, the one to report.

        `arguments` is None when listing. Rules reading `mcp` are then evaluated without
        arguments, and a failure leaves the tool visible (deny: not matching, allow:
        matching) because the call is decided again with the arguments. A listed tool
        may still be refused for some arguments; a hidden tool is never callable.
        """
        rules = self._rules
        covering = rules.covering(tool.name)
        per_tool = covering & rules._per_tool_mask
        if per_tool:
            self._set_tool(tool, arguments)
        deny = self._lowest(covering & self._deny_mask, per_tool, True, arguments is None)
        if deny is not None:
            return deny
        allow = self._lowest(covering & self._allow_mask, per_tool, False, arguments is None)
        return rules.default if allow is None else allow

    def _lowest(self, matched: int, per_tool: int, deny: bool, at_list: bool) -> Rule | None:
        """The first rule in report order among the `matched` ones and the per-tool rules of this effect that match.

        Per-tool rules after the first already-matched rule are never evaluated: they could not be reported.
        """
        first = matched & -matched
        for i, rule in enumerate(self._rules.rules):
            bit = 1 << i
            if first and bit >= first:
                break
            if per_tool & bit and rule.deny == deny and self._matches(rule, at_list=at_list):
                return rule
        return self._rules.rules[first.bit_length() - 1] if first else None

    def _matches(self, rule: Rule, *, at_list: bool) -> bool:
        try:
            matched = _run(rule, self._context)
        except EvaluationError as exc:
            self.errors[rule.name] = str(exc)
            # Fail closed: an error denies. While listing, the call re-checks, so an error must not hide.
            return rule.deny != at_list
        self.errors.pop(rule.name, None)  # a per-tool rule may have failed for an earlier tool
        return matched

    def _set_tool(self, tool: Tool, arguments: Mapping[str, Any] | None) -> None:
        if self._context is None:
            return
        described: dict[str, Any] = {
            "name": tool.name,
            "method": tool.method,
            "path": tool.path,
            "upstream": tool.upstream,
            "tags": list(tool.tags),
        }
        if arguments is not None:
            described["arguments"] = arguments
        try:
            self._context.add_variable("mcp", {"tool": described})
        except Exception:  # arguments CEL cannot represent: the rules reading them fail, so fail closed
            del described["arguments"]
            self._context.add_variable("mcp", {"tool": described})


def compile_rules(configs: Sequence[RuleConfig], default: str, hidden_headers: Iterable[str] = ()) -> Rules:
    """Build `Rules` from validated `RuleConfig`s (their expressions already compiled once).

    `hidden_headers`: header names rules must not see besides credentials and cookies (the capability header).
    """
    return Rules(
        [
            Rule(
                name=f"rules[{i}]",
                deny=config.effect == "deny",
                program=compile_expression(config.when),
                tools=None if config.tools is None else tuple(config.tools),
                per_tool=uses_tool(config.when),
                priority=config.priority,
                notes=config.notes,
            )
            for i, config in enumerate(configs)
        ],
        default_allow=default == "allow",
        hidden_headers=hidden_headers,
    )
