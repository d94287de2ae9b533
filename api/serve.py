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
import logging
import socket
from typing import Any, Iterator

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.app import create_app
from api.deps import ApiSettings, Context
from api.guards import allowed_hosts
from api.routes.metrics import node_metrics
from gslb.config.redisstore import RedisStore, RedisTokens, connect
from gslb.config.service import ConfigService
from gslb.config.tokens import TokenStore
from gslb.server.listen import bind_http
from gslb.server.node import Server
from gslb.settings import ListenAddress

WRITE_WAIT = 5.0  # seconds a write waits for the node's other workers before a 202
REQUEST_SECONDS = 10.0  # a client sends its whole request (headers and body) in this time
KEEP_ALIVE_SECONDS = 5  # an idle connection is closed after this
log = logging.getLogger("gslb.api")


class TimedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline on reading each request: a client
    that trickles its headers or body (slowloris) is disconnected REQUEST_SECONDS after
    it connected, or after the previous response, so slow clients cannot hold the API.
    The time the API takes to answer is not limited here."""

    deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = self.loop.call_later(REQUEST_SECONDS, self._too_slow)

    def _too_slow(self) -> None:
        """The request is not in yet: close (a complete request is being answered)."""
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            if self.conn.their_state is h11.SEND_BODY or self.conn.trailing_data[0]:
                log.info("closing an API connection from %s: its request took over %g s",
                         self.client, REQUEST_SECONDS)
            self.transport.close()


def uvicorn_config(context: Context) -> uvicorn.Config:
    """How both API servers (beside DNS and `gslb api`) run uvicorn: requests in flight
    are limited by the request guard (api/guards.py), not per connection, so idle or slow
    connections never make a legitimate request wait or fail.

    The OpenAPI document is made here, before the first request: it costs 0.2 s of CPU,
    and the API process runs at SCHED_IDLE, so on a node whose cores are busy the first
    GET /openapi.json (or /docs) that made it took over 10 s."""
    app = create_app(context)
    app.openapi()
    return uvicorn.Config(app, http=TimedH11, log_level="warning", access_log=False, log_config=None,
                          lifespan="off", limit_concurrency=None,
                          timeout_keep_alive=KEEP_ALIVE_SECONDS)


def warn_open_hosts(context: Context, address: object) -> None:
    if context.settings.hosts is None:
        log.warning("the API listens on %s, beyond loopback, and answers any Host name: give "
                    "the names it is reached by with --api-host (and put TLS and a firewall "
                    "in front of it)", address)


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
        self.server = _Embedded(uvicorn_config(context))
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
    context = embedded_context(server)
    warn_open_hosts(context, server.settings.api)
    return EmbeddedApi(context, server.settings.api, sock)


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

    listen = settings.api.host if settings.api is not None else "127.0.0.1"
    return Context(service=ConfigService(ServedStore(server), server), tokens=tokens,
                   settings=ApiSettings(hosts=allowed_hosts(listen, settings.api_hosts),
                                        console=settings.console),
                   snapshot=server.current, geo=server.geo,
                   state_redis=connect(settings.redis) if settings.redis else None,
                   state_file=settings.state, state=lambda: server.state_view,
                   metrics=node_metrics(directory, server.telemetry.write)
                   if directory is not None else None, await_served=await_served)
