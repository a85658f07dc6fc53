"""What a task's verbs say about the HTTP method of the operation that serves it.

"remove Bob from the project" leans to DELETE, "who is on the team" to GET. The lean is a
boost, not a filter: many APIs create with PUT or delete with POST (`removeMembers`).
Words that are as often nouns as verbs ("book", "call", "log", "set") are left out.
"""

from __future__ import annotations

from mcp_anything.discovery.text import STOPWORDS, stem

_VERBS: dict[str, str] = {
    "POST": "send add create new post make start submit upload generate register invite reserve buy purchase "
    "begin launch initiate dial pay approve reject assign attach subscribe duplicate copy",
    "DELETE": "delete remove revoke kick cancel destroy drop erase purge release unsubscribe unlink detach",
    "GET": "list show find get who what which when where how search look view fetch read retrieve see display "
    "check count browse download lookup",
    "PUT PATCH": "update edit change rename modify move mark replace adjust archive mute enable disable",
}


def _method_words() -> dict[str, frozenset[str]]:
    table: dict[str, frozenset[str]] = {}
    for methods, verbs in _VERBS.items():
        for verb in verbs.split():
            table[stem(verb)] = frozenset(methods.split())
    return table


METHOD_WORDS = _method_words()


def intended_methods(words: list[str]) -> frozenset[str]:
    """The methods the first verb-like word of a query leans to (empty when none does)."""
    for word in words:
        methods = METHOD_WORDS.get(stem(word))
        if methods:
            return methods
    return frozenset()


# Words that ask for many things or for one thing, beyond a plural or singular noun.
_MANY = frozenset(["all", "every", "list", "lists", "many", "each"])
_ONE = frozenset(["one", "single", "particular", "specific", "detail", "details", "id", "uid"])


def _plural(word: str) -> bool:
    """A plural noun (recordings, bookings), not a word that merely ends in s (status, access, sms)."""
    if word in STOPWORDS or stem(word) in METHOD_WORDS or len(word) < 4:
        return False
    return word.endswith("s") and not word.endswith(("ss", "us", "is")) and stem(word) != word


def wanted_cardinality(words: list[str]) -> str | None:
    """ "many" when a query asks for a collection (all recordings), "one" for a single item, else None.

    An explicit word decides; otherwise a plural noun asks for many.
    """
    if _ONE.intersection(words):
        return "one"
    if _MANY.intersection(words) or any(_plural(word) for word in words):
        return "many"
    return None
