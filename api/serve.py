"""Serving the API beside DNS (`gslb serve --api`), in the server's own event loop.

Each DNS process (the single one, or every forked worker, sharing the port with
SO_REUSEPORT through the sockets the supervisor keeps) serves the API and follows the
configuration store: a version committed by any process is applied by the others within
`FOLLOW_INTERVAL` (gslb/config/service.py), incrementally.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Iterator

import uvicorn

from api.app import create_app
from api.deps import Context
from api.routes.metrics import node_metrics
from gslb.config.redisstore import RedisStore, RedisTokens, connect
from gslb.config.service import ConfigService, follow
from gslb.config.tokens import TokenStore
from gslb.server.listen import bind_http
from gslb.settings import ListenAddress


class _Embedded(uvicorn.Server):
    """uvicorn inside a loop that already owns SIGTERM/SIGINT: it must not take them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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
