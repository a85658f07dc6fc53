"""A real upstream HTTP API for tests: records every request it receives and echoes it back.

Served by uvicorn (see servers.ServerThread). Besides echoing, a few paths
misbehave on purpose: `/status/{code}`, `/slow`, `/text`, `/binary`,
`/numbers`, `/problem`, `/big`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import Receive, Scope, Send


@dataclass
class Recorded:
    method: str
    path: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class RecordingUpstream:
    requests: list[Recorded] = field(default_factory=list)

    def clear(self) -> None:
        self.requests.clear()

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query_string = scope["query_string"].decode()
        recorded = Recorded(
            method=scope["method"],
            path=scope["path"],
            raw_path=scope.get("raw_path", scope["path"].encode()).decode(),
            query=parse_qsl(query_string, keep_blank_values=True),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
        )
        self.requests.append(recorded)
        if recorded.path == "/big":
            await self._stream_big(recorded, send)
            return
        status, content_type, payload = await self._respond(recorded)
        headers = [(b"content-type", content_type.encode())] if content_type else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    @staticmethod
    async def _stream_big(request: Recorded, send: Send) -> None:
        """`/big?bytes=N[&chunked=1]`: N bytes of text, with Content-Length or chunked in 64 KiB pieces."""
        query = dict(request.query)
        size = int(query.get("bytes", "0"))
        headers = [(b"content-type", b"text/plain")]
        if query.get("chunked") != "1":
            headers.append((b"content-length", str(size).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        piece = 64 * 1024
        for offset in range(0, size, piece):
            await send({"type": "http.response.body", "body": b"x" * min(piece, size - offset), "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _respond(self, request: Recorded) -> tuple[int, str, bytes]:
        parts = request.path.strip("/").split("/")
        query = dict(request.query)
        if parts[0] == "status":
            return int(parts[1]), "text/plain", f"status {parts[1]} as requested".encode()
        if parts[0] == "slow":
            await asyncio.sleep(float(query.get("seconds", "5")))
            return 200, "application/json", b'{"slow": true}'
        if parts[0] == "text":
            return 200, "text/plain; charset=utf-8", "plain text \u00e9".encode()
        if parts[0] == "binary":
            return 200, "image/png", b"\x89PNG\r\n\x1a\n\x00\x01binary"
        if parts[0] == "numbers":
            return 200, "application/json", b"[1, 2, 3]"
        if parts[0] == "problem":
            problem = {"type": "https://example.com/out-of-stock", "title": "Out of stock", "detail": "No pets left"}
            return 409, "application/problem+json", orjson.dumps(problem)
        if request.method == "DELETE":
            return 204, "", b""
        return 200, "application/json", orjson.dumps(self._echo(request))

    @staticmethod
    def _echo(request: Recorded) -> dict[str, Any]:
        try:
            body: Any = orjson.loads(request.body) if request.body else None
        except orjson.JSONDecodeError:
            body = request.body.decode("utf-8", "replace")
        return {
            "method": request.method,
            "path": request.path,
            "raw_path": request.raw_path,
            "query": request.query,
            "headers": request.headers,
            "body": body,
        }
