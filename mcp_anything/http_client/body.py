"""Reading response bodies with a size limit counted in decompressed bytes.

Both transports decompress incrementally and in bounded pieces (aiohttp with back-pressure,
httpx2 in chunks of at most 1 MiB), so a small compressed body that inflates enormously
(a gzip bomb) is refused after `limit` bytes of output, never inflated whole.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import aiohttp


class BodyTooLarge(Exception):
    """The body is longer than the limit the caller set."""


def declared_too_large(content_length: int | None, content_encoding: str | None, limit: int) -> bool:
    """A `Content-Length` over the limit, refused before reading; unless compressed (it is then the wire size)."""
    return content_length is not None and content_length > limit and not content_encoding


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, refusing more than `limit` bytes without ever holding more than that.

    `content.read(n)` returns whatever has arrived, which for a large body is only its beginning, so
    it is called until the end.
    """
    if declared_too_large(response.content_length, response.headers.get("Content-Encoding"), limit):
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


def collect_capped(chunks: Iterator[bytes], limit: int, deadline: float) -> bytes:
    """The synchronous transport's decoded chunks joined; BodyTooLarge past `limit`, TimeoutError past `deadline`."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
        if time.monotonic() > deadline:
            raise TimeoutError
    return bytes(body)
