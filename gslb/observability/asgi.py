"""`/metrics` as a plain ASGI application, for the REST API's port (`gslb serve --api`
mounts it beside its routes): the node's merged metrics, as on `--metrics`.

Plain ASGI, so it needs nothing of the web framework and the API needs nothing of the
metrics; rendering (reading every process's report) runs in a thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Awaitable, Callable

from gslb.observability import metrics

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class MetricsApp:
    """GET (or HEAD) anything under the mount: 200 with the Prometheus text; `flush`
    writes this process's report first, so its own counts are exact."""

    def __init__(self, directory: Path, flush: Callable[[], None] = lambda: None) -> None:
        self.directory = directory
        self.flush = flush

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _reply(send, 405, b"text/plain", b"only GET\n")
            return
        self.flush()
        body = await asyncio.get_running_loop().run_in_executor(None, metrics.render,
                                                                self.directory)
        await _reply(send, 200, metrics.CONTENT_TYPE.encode(),
                     body if scope["method"] == "GET" else b"", len(body))


async def _reply(send: Send, status: int, content_type: bytes, body: bytes,
                 length: int | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body) if length is None
                                                    else length).encode())]})
    await send({"type": "http.response.body", "body": body})
