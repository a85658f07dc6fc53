"""Reading the identity provider's JSON answers (discovery, JWKS, introspection) with a size limit."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from mcp_anything.response_body import BodyTooLarge, read_capped


def json_object(raw: bytes | bytearray | None) -> dict[str, Any] | None:
    """`raw` parsed as a JSON object, or None when it is not one."""
    try:
        value = json.loads(raw or b"")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def read_json_object(response: aiohttp.ClientResponse, limit: int) -> dict[str, Any] | None:
    """The response body as a JSON object; None when it is not one or is longer than `limit` bytes."""
    try:
        return json_object(await read_capped(response, limit))
    except BodyTooLarge:
        return None
