"""A real upstream HTTP API for tests: records every request it receives and echoes it back.

Served by uvicorn (see servers.ServerThread). Besides echoing, a few paths
misbehave on purpose: `/status/{code}`, `/slow`, `/text`, `/binary`,
`/numbers`, `/problem`, `/big`, and the faults of tests/specs/faults.yaml:
`/garbage` (invalid JSON labelled JSON), `/truncated` (shorter than its
Content-Length), `/reset` (connection dropped mid-body), `/endless` (chunks
until the client goes away), `/flaky?key=K&fail=N` (503 for the first N
requests with that key). Setting `outage` to a status answers every request
with it; `documents` serves fixed files (specs) by path.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import Receive, Scope, Send

from tests.support.servers import read_body


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


class Abort(Exception):
    """Raised by the app after a partial response: uvicorn drops the connection."""


@dataclass
class RecordingUpstream:
    requests: list[Recorded] = field(default_factory=list)
    outage: int | None = None  # answer every request with this status
    documents: dict[str, bytes] = field(default_factory=dict)  # path -> body, served as YAML
    endless_stopped: threading.Event = field(default_factory=threading.Event)  # /endless saw the client go
    peak_in_flight: int = 0  # the most requests it was answering at once
    in_flight: int = 0
    _flaky: dict[str, int] = field(default_factory=dict)

    def clear(self) -> None:
        self.requests.clear()
        self.outage = None
        self.documents.clear()
        self._flaky.clear()
        self.peak_in_flight = 0
        self.endless_stopped.clear()

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
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
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await self._answer(recorded, receive, send)
        finally:
            self.in_flight -= 1

    async def _answer(self, recorded: Recorded, receive: Receive, send: Send) -> None:
        if self.outage is not None:
            await _send(send, self.outage, "text/plain", b"outage")
            return
        if recorded.path in self.documents:
            await _send(send, 200, "application/yaml", self.documents[recorded.path])
            return
        if recorded.path == "/big":
            await self._stream_big(recorded, send)
            return
        if await self._misbehave(recorded, receive, send):
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

    async def _misbehave(self, request: Recorded, receive: Receive, send: Send) -> bool:
        """Answer the fault paths; False for every other path."""
        query = dict(request.query)
        path = request.path.strip("/")
        if path == "garbage":
            await _send(send, 200, "application/json", b'{"truncated": [1, 2,')
        elif path == "truncated":
            start = {"type": "http.response.start", "status": 200}
            await send({**start, "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]})
            await send({"type": "http.response.body", "body": b'{"partial": ', "more_body": True})
            raise Abort
        elif path == "reset":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
            raise Abort
        elif path == "endless":
            await self._endless(receive, send)
        elif path == "flaky":
            key = query.get("key", "")
            self._flaky[key] = self._flaky.get(key, 0) + 1
            if self._flaky[key] <= int(query.get("fail", "1")):
                await _send(send, 503, "text/plain", b"try again")
            else:
                await _send(send, 200, "application/json", orjson.dumps({"attempt": self._flaky[key]}))
        else:
            return False
        return True

    async def _endless(self, receive: Receive, send: Send) -> None:
        """64 KiB chunks until the client disconnects (or 1 GiB, so a broken test still ends)."""
        gone = asyncio.ensure_future(_wait_disconnect(receive))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        chunk = b"e" * 65536
        for _ in range(16384):
            if gone.done():
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0)
        gone.cancel()
        self.endless_stopped.set()
        raise Abort

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


async def _send(send: Send, status: int, content_type: str, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type.encode())]})
    await send({"type": "http.response.body", "body": body})


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
