"""The request-body limits: 413 over the size limit, 408 past the read timeout, before the body is parsed.

A plain ASGI middleware, so it holds on every FastAPI and Starlette version the
``service`` extra allows (the newest have a size limit of their own; older ones do not;
none has a read timeout, and neither has uvicorn). The declared ``Content-Length`` is
checked first; the body is then read here, counting what actually arrives (a chunked body
declares no length, and a client may lie), and handed on whole. Parsing needs the whole body
anyway, so buffering it here costs nothing extra and the limit bounds that buffer.

The whole body must arrive within ``read_timeout_s`` seconds of the request's headers: a
client that declares a large body and stops sending (or trickles it a byte at a time) is
answered 408 and its connection closed, instead of holding a connection and a buffer for
as long as it likes. A deadline for the whole body rather than for each read, so that a
trickle cannot reset it.

A refused body is still read to its end, discarded, up to ``DRAIN_FACTOR`` times the limit
and for at most ``DRAIN_SECONDS``: most clients (httpx, requests, curl) send the whole body
before they read the answer, and a connection closed under them while they write shows up
as a broken connection, not as the 413 that says why. Past either bound the connection is
simply closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DRAIN_FACTOR = 4
DRAIN_SECONDS = 10.0
READ_TIMEOUT_S = 30.0


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared == -1:
            await _reply(send, 400, "Content-Length is not a non-negative integer", "content-length")
            return
        if declared is not None and declared > self.max_bytes:
            if declared <= DRAIN_FACTOR * self.max_bytes:
                await _drain(receive, DRAIN_FACTOR * self.max_bytes)
            await _reply(send, 413, self._too_large(f"declares {declared} bytes"), "body")
            return
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - loop.time())
            except asyncio.TimeoutError:
                of = f" of the {declared} declared" if declared is not None else ""
                await _reply(send, 408, f"request body not received within the read timeout of {self.read_timeout_s:g} s "
                                        f"({size} bytes{of} arrived); the connection is closed", "body")
                return
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                chunks.clear()
                if message.get("more_body", False):
                    await _drain(receive, DRAIN_FACTOR * self.max_bytes - size)
                await _reply(send, 413, self._too_large(f"sent more than {self.max_bytes} bytes"), "body")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)

    def _too_large(self, what: str) -> str:
        return f"request body too large: the request {what}; the limit is {self.max_bytes} bytes ({self.max_bytes / 2**20:g} MiB)"


async def _drain(receive: Receive, budget: int) -> None:
    """Read and discard the rest of a refused body, within ``budget`` bytes and ``DRAIN_SECONDS``."""
    async def read() -> None:
        left = budget
        while left > 0:
            message = await receive()
            if message["type"] != "http.request":
                return
            left -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    try:
        await asyncio.wait_for(read(), DRAIN_SECONDS)
    except asyncio.TimeoutError:
        pass  # a slow or endless sender: answer now and close


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent, -1 when it is not a valid number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


async def _reply(send: Send, status: int, message: str, field: str) -> None:
    """An error in the service's JSON shape; the connection is closed, since the rest of the body is not read."""
    kind = {413: "body_too_large", 408: "read_timeout"}.get(status, "bad_request")
    body = json.dumps({"detail": [{"loc": [field], "field": field, "msg": message, "type": kind}]}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
