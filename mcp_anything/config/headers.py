"""HTTP header syntax (RFC 9110 §5): field names, field values and credentials.

One place for the checks that keep a caller, a script or a config file from
smuggling a second header or request through a name or value. It imports
nothing from the project, so the config contract and the request builders
reject exactly the same text.
"""

from __future__ import annotations

import re

# RFC 9110 §5.6.2 `token`: field names and method names.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# What would end a header line early, or truncate it in a C-based server.
_LINE_BREAK = re.compile(r"[\r\n\0]")
# Control characters (all but HTAB), which a field value may not hold (RFC 9110 §5.5) and some servers mishandle.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# A credential: printable ASCII with no surrounding spaces, so a stray newline from a secret file shows up.
_CREDENTIAL = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
# Visible ASCII only, no spaces at all (an access token, RFC 6750 b64token and the like).
_VISIBLE = re.compile(r"[\x21-\x7e]+")


def is_token(text: str) -> bool:
    """An RFC 9110 token: a valid header field name or method name."""
    return _TOKEN.fullmatch(text) is not None


def has_line_break(text: str) -> bool:
    """Whether `text` holds CR, LF or NUL, which no header value (or multipart part header) may hold."""
    return _LINE_BREAK.search(text) is not None


def has_control(text: str) -> bool:
    """Whether `text` holds a control character other than HTAB: not a valid header field value."""
    return _CONTROL.search(text) is not None


def is_credential(text: str) -> bool:
    """Printable ASCII without line breaks or surrounding spaces: safe as (part of) a header value."""
    return _CREDENTIAL.fullmatch(text) is not None


def is_visible(text: str) -> bool:
    """Visible ASCII, no spaces: a token a server handed us, safe to send back after `Bearer `."""
    return _VISIBLE.fullmatch(text) is not None
