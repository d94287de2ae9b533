"""A very small HTTP/1.1 server for `--metrics HOST:PORT`: GET-only, one request per
connection, routes mapped to async handlers.

It runs on the DNS process's own event loop (in every worker, which share the port with
SO_REUSEPORT), so it must never hold the loop: requests are bounded (8 KiB of
head, 5 s to send it) and handlers push file reading to a thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Awaitable, Callable, Mapping

log = logging.getLogger("gslb.http")
Reply = tuple[int, str, bytes]  # status, content type, body
Handler = Callable[[], Awaitable[Reply]]
MAX_HEAD = 8192
HEAD_TIMEOUT = 5.0
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request",
           503: "Service Unavailable"}


async def _handle(routes: Mapping[str, Handler], reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, target, _ = (request_line.split(" ") + ["", ""])[:3]
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            reply: Reply = (405, "text/plain", b"only GET\n")
        elif path not in routes:
            reply = (404, "text/plain", f"no route {path}; try {', '.join(routes)}\n".encode())
        else:
            reply = await routes[path]()
        status, content_type, body = reply
        writer.write(
            f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + (body if method != "HEAD" else b""))
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
            ConnectionError):
        pass
    except Exception:
        log.exception("http request failed")
    finally:
        writer.close()


class HttpServer:
    """`routes` served on a listening socket (gslb/server/listen.py binds it); knows
    its requests in flight, so a stopping worker can let them finish."""

    def __init__(self, routes: Mapping[str, Handler]) -> None:
        self.routes = routes
        self.active: set[asyncio.Task] = set()
        self.server: asyncio.AbstractServer | None = None

    async def start(self, sock: socket.socket) -> "HttpServer":
        self.server = await asyncio.start_server(self._connection, sock=sock, limit=MAX_HEAD)
        return self

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.active.add(task)
        try:
            await _handle(self.routes, reader, writer)
        finally:
            self.active.discard(task)

    def close(self) -> None:
        """Stop accepting; requests already accepted go on."""
        if self.server is not None:
            self.server.close()

    async def settle(self, grace: float) -> None:
        """Wait up to `grace` seconds for the requests in flight."""
        await asyncio.sleep(0)  # a connection accepted just now starts its handler
        if self.active:
            await asyncio.wait(set(self.active), timeout=grace)
