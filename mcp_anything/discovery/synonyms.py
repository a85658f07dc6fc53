"""Words that task wording and API wording use for the same thing.

A user removes what the API deletes, looks at pictures the API calls media and asks "who" for
users or members. Each group holds
general API and task vocabulary, not the words of one API: what is special to one API belongs in its
operations' `x-mcp-keywords`. A query word also matches its group's other words, at a lower weight.
"""

from __future__ import annotations

import re

from mcp_anything.discovery.text import terms

_GROUPS = """
delete remove erase destroy cancel revoke discard
create add new make insert
get fetch retrieve read show view detail
list all browse enumerate multiple
update edit change modify patch
search find query lookup filter
user person people member who whom
picture image photo media
file attachment document upload
message sms mms text
reservation booking reserve book
comment note reply discussion
notification alert notify
webhook callback hook
price cost charge fee
balance credit funds
team group
invite add
copy duplicate clone
job role position opening vacancy hiring
tag label
stop end terminate hang
start begin initiate launch
password credential secret
key token
log history audit
count total number
goal objective target
follower watcher subscriber follow watch
dependency blocker block depend
subtask child
customer client contact
organization org company
doc document documentation
app application
auth authentication authorization
config configuration settings
repo repository
info information
spec specification
login signin logon
logout signout logoff
register signup enroll
account profile
order purchase buy
payment pay
event activity
schedule calendar
address location
workspace organization
export download dump
import upload
email mail
phone telephone
disable deactivate suspend
enable activate
archive hide
owner assignee
due deadline
""".strip().splitlines()

# Phrasal verbs a query may use for one verb: said before its words are split, "in" and "up" being stopwords.
PHRASES = {
    "get rid of": "delete",
    "take off": "remove",
    "sign in": "login",
    "log in": "login",
    "sign out": "logout",
    "log out": "logout",
    "sign up": "register",
    "set up": "create",
    "turn off": "disable",
    "turn on": "enable",
    "hang up": "end",
    "check out": "order",
}
_PHRASE = re.compile(r"\b(" + "|".join(re.escape(p) for p in PHRASES) + r")\b", re.IGNORECASE)


def rewrite_phrases(query: str) -> str:
    """`query` with each phrasal verb replaced by its one-word verb: "get rid of a tag" -> "delete a tag"."""
    return _PHRASE.sub(lambda m: PHRASES[m.group(1).lower()], query)


def _synonyms() -> dict[str, tuple[str, ...]]:
    table: dict[str, set[str]] = {}
    for line in _GROUPS:
        group = dict.fromkeys(terms(line))
        for term in group:
            table.setdefault(term, set()).update(t for t in group if t != term)
    return {term: tuple(sorted(others)) for term, others in table.items()}


SYNONYMS = _synonyms()
