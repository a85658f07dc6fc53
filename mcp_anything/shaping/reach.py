"""Which dotted paths a path regex can still match below a given path, decided once per path.

A filter walks only the parts of a result where some operation can still change something; the
rest is dropped or shared whole. Most path regexes are anchored literals with alternatives
(`^orders\\.(orderId|status)$`), whose matches are a small known set of strings or of prefixes.
Anything the analysis does not understand counts as "may match anywhere", which only costs time.
"""

from __future__ import annotations

import re
import re._constants as sre  # the stdlib's own parser, so the analysis reads regexes exactly as `re` does
import re._parser as sre_parse
from typing import Any

# More alternatives than this and the analysis gives up (the answer stays "may match").
_MAX_STRINGS = 256


class PathRegex:
    """A compiled path regex that can also say whether a path's descendants may match it."""

    __slots__ = ("closed", "regex", "strings")

    def __init__(self, pattern: str) -> None:
        self.regex = re.compile(pattern)
        analysed = _analyse(pattern)
        # strings None: unknown. closed: the regex matches exactly these; open: strings starting with one of them.
        self.strings: frozenset[str] | None = analysed[0] if analysed else None
        self.closed = analysed[1] if analysed else False

    def search(self, path: str) -> bool:
        return self.regex.search(path) is not None

    def may_match_below(self, path: str) -> bool:
        """May the path of some descendant of `path` (the root: "") match?"""
        if self.strings is None or not path:
            return True
        below = path + "."
        if self.closed:
            return any(string.startswith(below) for string in self.strings)
        return any(string.startswith(below) or below.startswith(string) for string in self.strings)

    def may_match_here_or_below(self, path: str) -> bool:
        return self.search(path) or self.may_match_below(path)


def _analyse(pattern: str) -> tuple[frozenset[str], bool] | None:
    try:
        parsed = sre_parse.parse(pattern)
    except Exception:  # an internal parser: any surprise means "unknown", never an error
        return None
    if parsed.state.flags & ~sre.SRE_FLAG_UNICODE:
        return None
    items = list(parsed)
    if not items or items[0] != (sre.AT, sre.AT_BEGINNING):
        return None
    prefixes = {""}
    for position, (op, argument) in enumerate(items[1:], start=1):
        if op is sre.AT and argument is sre.AT_END and position == len(items) - 1:
            return frozenset(prefixes), True
        options = _finite(op, argument)
        if options is None or len(prefixes) * len(options) > _MAX_STRINGS:
            return frozenset(prefixes), False
        prefixes = {prefix + option for prefix in prefixes for option in options}
    return frozenset(prefixes), False


def _finite(op: Any, argument: Any) -> set[str] | None:
    """The strings one regex item matches, when they are few and fixed."""
    if op is sre.LITERAL:
        return {chr(argument)}
    if op is sre.IN:
        if all(inner_op is sre.LITERAL for inner_op, _ in argument):
            return {chr(code) for _, code in argument}
        return None
    if op is sre.SUBPATTERN:
        _, add_flags, del_flags, inner = argument
        return None if add_flags or del_flags else _sequence(list(inner))
    if op is sre.BRANCH:
        found: set[str] = set()
        for alternative in argument[1]:
            strings = _sequence(list(alternative))
            if strings is None:
                return None
            found |= strings
        return found
    return None


def _sequence(items: list[Any]) -> set[str] | None:
    strings = {""}
    for op, argument in items:
        options = _finite(op, argument)
        if options is None or len(strings) * len(options) > _MAX_STRINGS:
            return None
        strings = {string + option for string in strings for option in options}
    return strings
