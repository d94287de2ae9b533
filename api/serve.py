"""Serving the API beside DNS (`gslb serve --api`), in the server's own event loop.

Each DNS process (the single one, or every forked worker, sharing the port with
SO_REUSEPORT through the sockets the supervisor keeps) serves the API and follows the
configuration store: a version committed by any process is applied by the others within
`FOLLOW_INTERVAL`, incrementally.
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
from api.routes.metrics import node_metrics
from gslb.config.redisstore import RedisStore, RedisTokens, connect
from gslb.config.service import ConfigService
from gslb.config.tokens import TokenStore
from gslb.server.listen import bind_http
from gslb.settings import ListenAddress

log = logging.getLogger("gslb.api")
FOLLOW_INTERVAL = 0.1  # seconds between looks at the store's head (one small file read)


class _Embedded(uvicorn.Server):
    """uvicorn inside a loop that already owns SIGTERM/SIGINT: it must not take them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def follow(service: ConfigService, interval: float = FOLLOW_INTERVAL) -> None:
    """Apply versions committed by other processes, forever (cancel to stop). The store
    is read in a thread: a Redis that hangs delays changes, never DNS answers. A store
    that fails is logged once per outage, and what is served stays as it was."""
    loop = asyncio.get_running_loop()
    failing = False
    while True:
        await asyncio.sleep(interval)
        try:
            applied = await loop.run_in_executor(None, service.catch_up)
            if applied:
                log.info("applied %d configuration version(s), now at %d", applied,
                         service.node.live.version)
            if failing:
                log.info("configuration store reachable again")
            failing = False
        except Exception as exc:
            if not failing:
                log.error("cannot follow the configuration store (still serving version %d): %s",
                          service.node.live.version, exc)
            failing = True


class EmbeddedApi:
    """The API server (when there is an address) and the store follower of one process."""

    def __init__(self, context: Context, address: ListenAddress | None,
                 sock: socket.socket | None = None) -> None:
        """`sock`: the listening socket when a supervisor bound it (a worker's slot);
        else one is bound on `address`, if any."""
        self.context = context
        self.sock = sock if sock is not None or address is None else bind_http(address, False)
        config = uvicorn.Config(create_app(context), log_level="warning", access_log=False,
                                lifespan="off", limit_concurrency=256, timeout_keep_alive=5)
        self.server = _Embedded(config)
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.follower = loop.create_task(follow(self.context.service))
        self.tasks = [self.follower]
        if self.sock is not None:
            self.tasks.append(loop.create_task(self.server.serve(sockets=[self.sock])))

    async def stop(self) -> None:
        self.server.should_exit = True
        self.follower.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.sock is not None:
            self.sock.close()


def embedded_context(server: "object") -> Context:
    """The API's context over a running DNS `Server` (gslb.server.run)."""
    from gslb.server.run import Server

    assert isinstance(server, Server)
    store = server.config_store
    tokens = (TokenStore(RedisTokens(store.client)) if isinstance(store, RedisStore)
              else TokenStore.for_zones(server.settings.zones_dir))
    settings = server.settings
    directory = server.telemetry.directory  # opened for --api: /metrics on its port
    return Context(service=ConfigService(store, server), tokens=tokens,
                   snapshot=server.current, geo=server.geo,
                   state_redis=connect(settings.redis) if settings.redis else None,
                   state_file=settings.state, state=lambda: server.state_view,
                   metrics=node_metrics(directory, server.telemetry.write)
                   if directory is not None else None)
