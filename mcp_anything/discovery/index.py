"""A BM25 index over a set of tools, built once per load and searched per request.

Each field (see `fields.py`) has its own bm25s index, and a tool's score is the weighted sum of
its field scores, so a word in the tool's name counts more than the same word in an argument's
description without long descriptions drowning short names. A query whose verb leans to an HTTP
method (`intent.py`) boosts the tools with that method, or whose name contains the verb. A query word
also matches its synonyms (`synonyms.py`) at a lower weight, and a coordination factor favours tools
that match more of the query's words.

Per-caller filtering happens after scoring, on the ranked candidates only, so one index serves every
caller and nothing is rebuilt per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass

import bm25s
import numpy as np

from mcp_anything.discovery.fields import FIELDS, tool_fields
from mcp_anything.discovery.intent import METHOD_WORDS, intended_methods, wanted_cardinality
from mcp_anything.discovery.synonyms import SYNONYMS, rewrite_phrases
from mcp_anything.discovery.text import stem, terms, words
from mcp_anything.tools import Tool

WEIGHTS = {"name": 1.5, "summary": 1.0, "description": 1.0, "arguments": 0.5}
METHOD_BOOST = 0.35  # share added to a tool's score when its method (or name verb) matches the query's verb
COORDINATION = 1.0  # exponent of the share of the query's words a tool matches
CARDINALITY_BOOST = 0.5  # share added to a GET tool that reads a collection (or one item) as the query asks
NAME_COVERAGE_BOOST = 0.1  # share added to a tool whose name's words the query all says
SYNONYM_WEIGHT = 0.4  # a synonym (remove -> delete) counts this much of the query's own word

# A path whose last segment is a parameter (`/calls/{sid}`, `/calls/{sid}.json`) reads one item; else a collection.
_PATH_SEGMENT_PARAM = re.compile(r"\{[^}]*\}(\.\w+)?$")

_MIN_PART = 3  # shortest part of a compound word split in two

# Words of a query that count: bounds the work one request can ask for.
MAX_QUERY_TERMS = 32

Allowed = Callable[[str], bool] | Container[str] | None


@dataclass(frozen=True, slots=True)
class _Field:
    weight: float
    bm25: bm25s.BM25 | None  # None: no tool has a word in this field
    vocabulary: frozenset[str]


class SearchIndex:
    """Immutable once built; safe to share between concurrent requests."""

    def __init__(
        self,
        names: list[str],
        methods: list[str],
        paths: list[str],
        name_terms: list[list[str]],
        fields: list[_Field],
        own_name_terms: list[list[str]],
    ):
        self._names = names
        self._methods = np.array(methods)
        reads = self._methods == "GET"
        many = np.array(
            [not _PATH_SEGMENT_PARAM.match(path.rstrip("/").rpartition("/")[2]) for path in paths], dtype=bool
        )
        self._cardinality = {"many": reads & many, "one": reads & ~many}
        # For each method-leaning verb: which tools have it in their name (`removeMembers` is a POST that removes).
        self._named_verb: dict[str, np.ndarray] = {}
        for i, doc in enumerate(name_terms):
            for verb in METHOD_WORDS.keys() & set(doc):
                self._named_verb.setdefault(verb, np.zeros(len(names), dtype=bool))[i] = True
        self._fields = fields
        # For each word of tool names other than a method verb: the tools whose name has it, and per tool
        # how many such words its name has (`get_user_task_list` has user, task, list).
        self._name_nouns: dict[str, np.ndarray] = {}
        own_nouns = [set(doc) - METHOD_WORDS.keys() for doc in own_name_terms]
        for noun in set().union(*own_nouns):
            self._name_nouns[noun] = np.array([i for i, nouns in enumerate(own_nouns) if noun in nouns], dtype=np.int32)
        self._name_sizes = np.array([max(len(nouns), 1) for nouns in own_nouns], dtype=np.float32)
        self._vocabulary = frozenset().union(*(field.vocabulary for field in fields))

    @classmethod
    def build(cls, tools: Sequence[Tool]) -> SearchIndex:
        per_tool = tool_fields(tools)
        fields = [_field([doc[name] for doc in per_tool], WEIGHTS[name]) for name in FIELDS]
        return cls(
            [tool.name for tool in tools],
            [tool.method for tool in tools],
            [tool.path for tool in tools],
            [doc["name"] for doc in per_tool],
            fields,
            [terms(f"{tool.base_name} {tool.operation_id or ''}") for tool in tools],
        )

    def __len__(self) -> int:
        return len(self._names)

    def search(self, query: str, *, allowed: Allowed = None, limit: int = 10) -> list[tuple[str, float]]:
        """The best `limit` tools for `query` among those `allowed`, best first, with their scores.

        Tools that share no word with the query are never returned, so garbage finds nothing. Only the
        first MAX_QUERY_TERMS distinct words of the query count.
        """
        query_words = self._compounds(words(rewrite_phrases(query))[: 2 * MAX_QUERY_TERMS])
        query_terms = list(dict.fromkeys(terms(" ".join(query_words))))[:MAX_QUERY_TERMS]
        if not query_terms or limit <= 0 or not self._names:
            return []
        scores = np.zeros(len(self._names), dtype=np.float32)
        matched = np.zeros(len(self._names), dtype=np.float32)
        # Verbs such as get, show, remove mostly say how, not what: a tool is not required to match them,
        # but one that does counts them as matched words.
        verbs = [t for t in query_terms if t in METHOD_WORDS]
        required = max(len(query_terms) - len(verbs), 1)
        matched_verbs = np.zeros(len(self._names), dtype=np.float32)
        for term in query_terms:
            term_scores = self._scores([term])
            synonyms = [t for t in SYNONYMS.get(term, ()) if t not in query_terms]
            if synonyms:
                term_scores += SYNONYM_WEIGHT * self._scores(synonyms)
            scores += term_scores
            matched += term_scores > 0
            if term in verbs:
                matched_verbs += term_scores > 0
        # Lucene's coordination factor: a tool that matches more of the query's words beats one that
        # matches a single word in every field.
        scores *= (matched / (required + matched_verbs)) ** COORDINATION
        candidates = np.flatnonzero(scores > 0)
        if candidates.size == 0:
            return []
        scores *= 1 + NAME_COVERAGE_BOOST * self._name_coverage(query_terms)
        methods = intended_methods(query_words)
        if methods:
            scores[candidates] *= 1 + METHOD_BOOST * self._leaning(candidates, methods, query_words)
        cardinality = wanted_cardinality(query_words)
        if cardinality and methods == {"GET"}:
            scores[candidates] *= 1 + CARDINALITY_BOOST * self._cardinality[cardinality][candidates]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        permitted = _permission(allowed)
        found: list[tuple[str, float]] = []
        for i in order:
            name = self._names[i]
            if permitted(name):
                found.append((name, float(scores[i])))
                if len(found) == limit:
                    break
        return found

    def _name_coverage(self, query_terms: list[str]) -> np.ndarray:
        """Per tool, the share of its name's words (method verbs aside) that the query or their synonyms say."""
        covered = np.zeros(len(self._names), dtype=np.float32)
        said = set(query_terms).union(*(SYNONYMS.get(t, ()) for t in query_terms))
        for noun in said:
            tools = self._name_nouns.get(noun)
            if tools is not None:
                covered[tools] += 1
        return np.minimum(covered / self._name_sizes, 1.0)

    def _compounds(self, query_words: list[str]) -> list[str]:
        """The query's words with compounds spelled as the tools spell them: "web hook" -> webhook when
        the tools say webhook, "subaccount" -> sub account when they only say sub and account."""
        out: list[str] = []
        for word in query_words:
            if out and stem(out[-1] + word) in self._vocabulary and stem(word) not in self._vocabulary:
                out[-1] += word
            elif len(word) >= 2 * _MIN_PART and stem(word) not in self._vocabulary:
                out += self._split(word)
            else:
                out.append(word)
        return out

    def _split(self, word: str) -> list[str]:
        for i in range(_MIN_PART, len(word) - _MIN_PART + 1):
            left, right = word[:i], word[i:]
            if stem(left) in self._vocabulary and stem(right) in self._vocabulary:
                return [left, right]
        return [word]

    def _scores(self, query_terms: list[str]) -> np.ndarray:
        """The weighted sum of the fields' BM25 scores of `query_terms`, per tool."""
        scores = np.zeros(len(self._names), dtype=np.float32)
        for field in self._fields:
            known = [t for t in query_terms if t in field.vocabulary]
            if field.bm25 is not None and known:
                scores += field.weight * field.bm25.get_scores(known)
        return scores

    def _leaning(self, candidates: np.ndarray, methods: frozenset[str], query_words: list[str]) -> np.ndarray:
        """1.0 for candidates whose method or name verb matches the query's verb, else 0.0."""
        leaning = np.isin(self._methods[candidates], list(methods))
        for word in query_words:
            named = self._named_verb.get(stem(word))
            if named is not None:
                leaning |= named[candidates]
        return leaning.astype(np.float32)


def _field(documents: list[list[str]], weight: float) -> _Field:
    vocabulary = frozenset(t for doc in documents for t in doc)
    if not vocabulary:
        return _Field(weight, None, vocabulary)
    bm25 = bm25s.BM25()
    bm25.index(documents, show_progress=False)
    return _Field(weight, bm25, vocabulary)


def _permission(allowed: Allowed) -> Callable[[str], bool]:
    if allowed is None:
        return lambda _name: True
    if callable(allowed):
        return allowed
    return allowed.__contains__
