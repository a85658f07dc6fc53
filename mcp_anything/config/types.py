"""Reusable field types: each check written once as an `Annotated` type, used by every section.

A field typed `HttpUrl` or `HeaderName` fails with the same message wherever it
appears, and the message names the key (the loader adds the location).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from limits import parse as parse_rate
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, SecretStr, StringConstraints

from mcp_anything.config.headers import has_line_break, is_credential, is_token


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo in a security setting must stop the gateway); values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- durations ----------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """`30s`, `100ms`, `2m`, `1h` or a bare number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 100ms or 2m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration such as 30s, 100ms or 2m, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be more than 0")
    return seconds


def _reload_interval(value: Any) -> float:
    """`off` (YAML reads it as false) or 0 turn polling off; otherwise a duration."""
    if value is False or value == "off":
        return 0.0
    return parse_duration(value)


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in the config as `30s`, `100ms`, `2m` or a number."""

PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
"""A `Duration` that must be more than zero (a timeout of 0 would fail every request)."""

Interval = Annotated[float, BeforeValidator(_reload_interval)]
"""A `Duration`, or `off` / 0 to turn the periodic job off."""


# --- rates ------------------------------------------------------------------------


def _rate(text: str) -> str:
    try:
        parse_rate(text)
    except ValueError:
        raise ValueError(f"expected a rate such as 100/minute, 10/second or 1000 per hour, got {text!r}") from None
    return text


Rate = Annotated[str, AfterValidator(_rate)]
"""A rate in `limits` notation: `100/minute`, `10/second`, `1000 per hour`."""


# --- names ------------------------------------------------------------------------

Name = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]+$")]
"""A group or upstream name: letters, digits, `_` and `-`."""


# --- URLs -------------------------------------------------------------------------

_HTTP_URL = re.compile(r"https?://(?:[^/?#@\s]*@)?[^/?#@\s]+(?:[/?#]\S*)?")


def _http_url(url: str) -> str:
    if not _HTTP_URL.fullmatch(url):
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    return url


HttpUrl = Annotated[str, AfterValidator(_http_url)]
"""The one URL rule: `http://` or `https://` (lower case), a non-empty host, no whitespace anywhere.

The value is kept exactly as written (no trailing slash added, no normalisation),
because it is joined with paths and compared with issuers as text.
"""


def is_http_url(text: str) -> bool:
    """Whether `text` follows the `HttpUrl` rule: for keys that hold a URL or something else (a file path)."""
    return _HTTP_URL.fullmatch(text) is not None


# --- headers ----------------------------------------------------------------------


def _header_name(name: str) -> str:
    if not is_token(name):
        raise ValueError(f"not a valid HTTP header name: {name!r}")
    return name


def _header_value(value: str) -> str:
    if has_line_break(value):
        raise ValueError("a header value cannot contain line breaks")
    return value


def _secret_header_value(secret: SecretStr) -> SecretStr:
    _header_value(secret.get_secret_value())
    return secret


def _credential(secret: SecretStr) -> SecretStr:
    """A stray newline from a secret file fails here, at load, not on every call."""
    if not is_credential(secret.get_secret_value()):
        raise ValueError("must be printable ASCII, no line breaks or surrounding spaces (check its ${ENV} variable)")
    return secret


HeaderName = Annotated[str, AfterValidator(_header_name)]
"""An RFC 9110 field name (a `token`)."""

HeaderValue = Annotated[str, AfterValidator(_header_value)]
"""A header value: anything but CR, LF and NUL."""

SecretHeaderValue = Annotated[SecretStr, AfterValidator(_secret_header_value)]
"""A `HeaderValue` that may hold a secret (never shown in errors or logs)."""

Credential = Annotated[SecretStr, AfterValidator(_credential)]
"""A secret sent as (part of) a header value: printable ASCII, no line breaks or surrounding spaces."""


# --- token audiences --------------------------------------------------------------


def _audience(audience: str | list[str]) -> str | list[str]:
    # An empty audience would silently turn the audience check off.
    values = [audience] if isinstance(audience, str) else audience
    if not values or "" in values:
        raise ValueError("audience cannot be empty; leave it out to accept any audience (not recommended)")
    return audience


Audience = Annotated[str | list[str], AfterValidator(_audience)]
"""The `aud` a verified token must carry: one value or a list (any of them matches); never empty."""


# --- signature algorithms -----------------------------------------------------------

_ASYMMETRIC = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}


def _asymmetric_algorithms(algorithms: list[str]) -> list[str]:
    bad = [a for a in algorithms if a not in _ASYMMETRIC]
    if bad:
        raise ValueError(f"unsupported algorithm(s) {bad}; expected some of {sorted(_ASYMMETRIC)}")
    if not algorithms:
        raise ValueError("at least one algorithm is required")
    return algorithms


AsymmetricAlgorithms = Annotated[list[str], AfterValidator(_asymmetric_algorithms)]
"""Signature algorithms for tokens the gateway verifies: never `none`, never a shared secret (HMAC)."""


# --- shared state -------------------------------------------------------------------


def _memory_or_redis(uri: SecretStr) -> SecretStr:
    value = uri.get_secret_value()
    if value != "memory" and value.split("://", 1)[0] not in ("redis", "rediss"):
        raise ValueError("expected `memory` or a redis:// (or rediss://) URL")
    return uri


# Where state shared by replicas lives: `memory` (this process only) or redis://...; a URL may hold a
# password, so a secret.
SharedStore = Annotated[SecretStr, AfterValidator(_memory_or_redis)]
