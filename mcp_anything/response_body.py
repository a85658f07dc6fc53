"""Reading HTTP response bodies from other servers (upstreams, identity providers) with a size limit."""

from __future__ import annotations

import aiohttp


class BodyTooLarge(Exception):
    """The body is longer than the limit the caller set."""


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, refusing more than `limit` bytes without ever holding more than that.

    `content.read(n)` returns whatever has arrived, which for a large body is only its beginning, so
    it is called until the end. A `Content-Length` over the limit is refused before reading, unless the
    body is compressed (the length is then the compressed size).
    """
    if (
        response.content_length is not None
        and response.content_length > limit
        and not response.headers.get("Content-Encoding")
    ):
        raise BodyTooLarge
    content = response.content
    body = await content.read(limit + 1)  # usually the whole body: it arrived with the headers
    if not content.at_eof():
        chunks = [body]
        size = len(body)
        while size <= limit:
            chunk = await content.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        body = b"".join(chunks)
    if len(body) > limit:
        raise BodyTooLarge
    return body
