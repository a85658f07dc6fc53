"""Claim rules: CEL expressions over the caller's verified claims, compiled once at startup.

A rule's `when` sees `jwt` (the verified claims) and, for calls, `mcp.tool.name` and
`mcp.tool.arguments`. Any matching deny wins, otherwise any matching allow, otherwise
the group's `default`. An expression that fails at run time (a missing claim, a type
mismatch) counts as matching for deny rules and as not matching for allow rules.

Cost model: rules that read only `jwt` are evaluated once per request (`Rules.evaluate`);
which rules apply to which tool is worked out once per tool name and remembered, so
filtering a list is two bit tests per tool. Only rules that read `mcp` run per tool.
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

    def covers(self, tool_name: str) -> bool:
        return self.tools is None or any(fnmatchcase(tool_name, pattern) for pattern in self.tools)


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

    def __init__(self, rules: Sequence[Rule], default_allow: bool) -> None:
        self.rules = tuple(rules)
        self.default = Rule(name="default", deny=not default_allow)
        self._bit = {rule: 1 << i for i, rule in enumerate(self.rules)}
        self._endpoint_allow = [r for r in self.rules if r.tools is None and not r.deny]
        self._per_tool_mask = sum(self._bit[r] for r in self.rules if r.per_tool)
        # tool name -> bit mask of the rules that cover it; bounded by the number of tools served.
        self._covering: dict[str, int] = {}

    def evaluate(self, claims: Mapping[str, Any]) -> RequestRules:
        try:
            context: cel.Context | None = cel.Context(variables={"jwt": claims})
        except Exception:  # a claim value CEL cannot represent: every rule errors, so fail closed
            context = None
        return RequestRules(self, context)

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

    def _endpoint_decision(self) -> tuple[str | None, str] | None:
        """(rule, reason) when the endpoint is closed to this caller, else None.

        Rules without `tools` decide who may connect: a matching deny closes the endpoint,
        and when there are allow rules without `tools`, the caller must match one of them.
        """
        rules = self._rules
        for rule in rules.rules:
            if rule.tools is None and rule.deny and self._deny_mask & rules._bit[rule]:
                return rule.name, self._why(rule, "deny rule matched")
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
        """The rule that decides `tool`: a deny, an allow or the default.

        `arguments` is None when listing. Rules reading `mcp` are then evaluated without
        arguments, and a failure leaves the tool visible (deny: not matching, allow:
        matching) because the call is decided again with the arguments. A listed tool
        may still be refused for some arguments; a hidden tool is never callable.
        """
        rules = self._rules
        covering = rules.covering(tool.name)
        if covering & self._deny_mask:
            return self._first(covering & self._deny_mask)
        per_tool = covering & rules._per_tool_mask
        if per_tool:
            self._set_tool(tool, arguments)
            for rule in self._in_order(per_tool):
                if rule.deny and self._matches(rule, at_list=arguments is None):
                    return rule
        if covering & self._allow_mask:
            return self._first(covering & self._allow_mask)
        if per_tool:
            for rule in self._in_order(per_tool):
                if not rule.deny and self._matches(rule, at_list=arguments is None):
                    return rule
        return rules.default

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
        described: dict[str, Any] = {"name": tool.name}
        if arguments is not None:
            described["arguments"] = arguments
        try:
            self._context.add_variable("mcp", {"tool": described})
        except Exception:  # arguments CEL cannot represent: the rules reading them fail, so fail closed
            self._context.add_variable("mcp", {"tool": {"name": tool.name}})

    def _first(self, mask: int) -> Rule:
        return self._rules.rules[(mask & -mask).bit_length() - 1]

    def _in_order(self, mask: int) -> list[Rule]:
        return [rule for i, rule in enumerate(self._rules.rules) if mask >> i & 1]


def compile_rules(configs: Sequence[RuleConfig], default: str) -> Rules:
    """Build `Rules` from validated `RuleConfig`s (their expressions already compiled once)."""
    return Rules(
        [
            Rule(
                name=f"rules[{i}]",
                deny=config.effect == "deny",
                program=compile_expression(config.when),
                tools=None if config.tools is None else tuple(config.tools),
                per_tool=uses_tool(config.when),
            )
            for i, config in enumerate(configs)
        ],
        default_allow=default == "allow",
    )
