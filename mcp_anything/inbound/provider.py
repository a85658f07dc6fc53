"""Reading the identity provider's JSON answers (discovery, JWKS, introspection)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$)", re.IGNORECASE)


def json_object(raw: bytes | bytearray | None) -> dict[str, Any] | None:
    """`raw` parsed as a JSON object, or None when it is not one."""
    try:
        value = json.loads(raw or b"")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def max_age(headers: Mapping[str, str]) -> float | None:
    """Seconds a response may be reused by its `Cache-Control` (RFC 9111): max-age, 0 for no-cache/no-store."""
    value = headers.get("Cache-Control")
    if not value:
        return None
    if _NO_CACHE.search(value):
        return 0.0
    match = _MAX_AGE.search(value)
    return float(match.group(1)) if match else None
