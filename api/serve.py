"""Serving the API beside DNS (`gslb serve --api`), in the server's own event loop.

Each DNS process (the single one, or every forked worker, sharing the port with
SO_REUSEPORT) serves the API and follows the configuration store: a version committed
by any process is applied by the others within `FOLLOW_INTERVAL`, incrementally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Iterator

import uvicorn

from api.app import create_app
from api.deps import Context
from gslb.config.service import ConfigService
from gslb.config.tokens import TokenStore
from gslb.settings import ListenAddress

log = logging.getLogger("gslb.api")
FOLLOW_INTERVAL = 0.1  # seconds between looks at the store's head (one small file read)


class _Embedded(uvicorn.Server):
    """uvicorn inside a loop that already owns SIGTERM/SIGINT: it must not take them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(address: ListenAddress, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((address.host or "0.0.0.0", address.port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def follow(service: ConfigService, interval: float = FOLLOW_INTERVAL) -> None:
    """Apply versions committed by other processes, forever (cancel to stop)."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        try:
            if service.store.head() > service.node.live.version:
                applied = await loop.run_in_executor(None, service.catch_up)
                log.debug("applied %d configuration version(s)", applied)
        except Exception:
            # A version that cannot apply here is a bug; keep serving what we have.
            log.exception("cannot apply configuration version %d", service.store.head())


class EmbeddedApi:
    """The API server and the store follower of one DNS process."""

    def __init__(self, context: Context, address: ListenAddress, reuse_port: bool) -> None:
        self.context = context
        self.sock = bind(address, reuse_port)
        config = uvicorn.Config(create_app(context), log_level="warning", access_log=False,
                                lifespan="off", limit_concurrency=256, timeout_keep_alive=5)
        self.server = _Embedded(config)
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self.server.serve(sockets=[self.sock])),
                      loop.create_task(follow(self.context.service))]

    async def stop(self) -> None:
        self.server.should_exit = True
        self.tasks[1].cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.sock.close()


def embedded_context(server: "object") -> Context:
    """The API's context over a running DNS `Server` (gslb.server.run)."""
    from gslb.server.run import Server

    assert isinstance(server, Server)
    return Context(service=ConfigService(server.config_store, server),
                   tokens=TokenStore.for_zones(server.settings.zones_dir),
                   snapshot=server.current, geo=server.geo)
