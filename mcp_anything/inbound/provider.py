"""Reading the identity provider's JSON answers (discovery, JWKS, introspection) with a size limit."""

from __future__ import annotations

import json
from typing import Any

import aiohttp


def json_object(raw: bytes | bytearray | None) -> dict[str, Any] | None:
    """`raw` parsed as a JSON object, or None when it is not one."""
    try:
        value = json.loads(raw or b"")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def read_json_object(response: aiohttp.ClientResponse, limit: int) -> dict[str, Any] | None:
    """The response body as a JSON object; None when it is not one or is longer than `limit` bytes.

    Read chunk by chunk: `content.read(n)` returns whatever has arrived, which
    for a large body is only its beginning.
    """
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    return json_object(body)
