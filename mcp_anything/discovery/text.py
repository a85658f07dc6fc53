"""Words for search: the same tokenizer for tool fields and for queries.

Identifiers are split on snake_case, kebab-case and camelCase (`getUsersForTeam` -> get users for
team), lower-cased, stopwords dropped and light (Snowball English) stemming applied, so that
"recordings", "recording" and "recorded" meet.
"""

from __future__ import annotations

import re

import Stemmer

# Words that say nothing about which operation is meant, in task wording or in API prose.
_STOPWORDS = """
a about above after again against all am an and any are as at be been before being below between both but by can could
did do does doing down during each few for from further had has have having he her here hers him his how i if in into
is it its itself just me more most my myself no nor not now of off on once only or other our ours out over own same she
should so some such than that the their theirs them then there these they this those through to too under until up very
was we were what when where which while why will with would you your yours please want need like let lets give
us using via json
"""
STOPWORDS = frozenset(_STOPWORDS.split())

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# Longer runs of letters are not words (hashes, base64, a caller's padding): they would only fill caches.
MAX_WORD = 40
# PyStemmer keeps its own bounded cache of stemmed words.
_stemmer = Stemmer.Stemmer("english")


def stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


def words(text: str) -> list[str]:
    """Lower-case words of `text`, identifiers split: `IpAccessControlList_x` -> ip access control list x."""
    return [w.lower() for w in _WORD.findall(text) if len(w) <= MAX_WORD]


def terms(text: str) -> list[str]:
    """The indexed form of `text`: words without stopwords, stemmed."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and len(w) > 1]
