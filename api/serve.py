"""Serving the API beside DNS (`gslb serve --api`), in the API process's event loop.

The CLI wires it in (`embedded_api` is the server's ApiFactory); the DNS server never
imports this package. The API runs in a process of its own (gslb/server/apiproc.py), so
no request, however costly, holds up a DNS answer. A write commits to the configuration
store, is live at once in the API process, and answers once every worker of the node
serves it (gslb/server/served.py). Versions committed elsewhere reach the API process
like the workers, through the node's one follower (gslb/config/follower.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, Iterator

import uvicorn

from api.app import create_app
from api.deps import Context
from api.routes.metrics import node_metrics
from gslb.config.redisstore import RedisStore, RedisTokens, connect
from gslb.config.service import ConfigService
from gslb.config.tokens import TokenStore
from gslb.server.listen import bind_http
from gslb.server.node import Server
from gslb.settings import ListenAddress

WRITE_WAIT = 5.0  # seconds a write waits for the node's other workers before a 202


class _Embedded(uvicorn.Server):
    """uvicorn inside a loop that already owns SIGTERM/SIGINT: it must not take them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedApi:
    """The API server of one process."""

    def __init__(self, context: Context, address: ListenAddress,
                 sock: socket.socket | None = None) -> None:
        """`sock`: the listening socket when a supervisor bound it (a worker's slot);
        else one is bound on `address`."""
        self.context = context
        self.sock = sock if sock is not None else bind_http(address, False)
        config = uvicorn.Config(create_app(context), log_level="warning", access_log=False,
                                lifespan="off", limit_concurrency=256, timeout_keep_alive=5)
        self.server = _Embedded(config)
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.server.serve(sockets=[self.sock]))

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        self.sock.close()


def embedded_api(server: Server, sock: socket.socket | None = None) -> EmbeddedApi:
    """The ApiFactory the CLI gives `gslb serve --api` (gslb.server.apiproc.ApiFactory)."""
    assert server.settings.api is not None
    return EmbeddedApi(embedded_context(server), server.settings.api, sock)


class ServedStore:
    """The configuration store the server serves from now (the folder, or Redis once it
    holds the configuration): the API commits where the node reads."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server.config_store, name)


def embedded_context(server: Server) -> Context:
    """The API's context over a running DNS `Server` (gslb.server.node)."""
    store = server.config_store
    tokens = (TokenStore(RedisTokens(store.client)) if isinstance(store, RedisStore)
              else TokenStore.for_zones(server.settings.zones_dir))
    settings = server.settings
    directory = server.telemetry.directory  # opened for --api: /metrics on its port

    def await_served(number: int, wait: float | None) -> list[str]:
        return server.await_served(number, WRITE_WAIT if wait is None else wait)

    return Context(service=ConfigService(ServedStore(server), server), tokens=tokens,
                   snapshot=server.current, geo=server.geo,
                   state_redis=connect(settings.redis) if settings.redis else None,
                   state_file=settings.state, state=lambda: server.state_view,
                   metrics=node_metrics(directory, server.telemetry.write)
                   if directory is not None else None, await_served=await_served)
