"""`gslb serve` in one process: load zones, bind every listen address, answer until
told to stop (with `--workers N` > 1 the supervisor in gslb/server/workers.py runs
instead). Also what both share: `run_loop`, the node's configuration follower and the
REST API beside DNS.

Signals: SIGTERM and SIGINT stop cleanly (sockets closed, exit 0); SIGHUP reloads the
zones off the event loop and swaps the snapshot in one assignment. A zone that fails
to load on reload is reported and its last good version keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from typing import Any, Callable, Coroutine

from gslb.config.changes import Version
from gslb.config.follower import Follower
from gslb.server.node import Server
from gslb.settings import Settings
from gslb.state.service import StateService

log = logging.getLogger("gslb.server")


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run `main` to completion on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def serve(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT; the process exit code. (`--api` always runs under a
    supervisor, which gives the API a process of its own: gslb/server/apiproc.py.)"""
    server = Server(settings)
    if not server.load():
        log.error("no zone could be loaded from %s; not starting", settings.zones_dir)
        return 1
    server.telemetry.open_directory()
    try:
        return await _serve(server)
    finally:
        server.telemetry.close_directory()


async def _serve(server: Server) -> int:
    service = StateService(server.settings.state, lambda view: server.apply_state(view),
                           server.settings.store, seed=server.state_view)
    service.set_records(server.steered_records())
    await service.prime()
    loop = asyncio.get_running_loop()

    def records_changed() -> None:  # from any thread: a reload's
        loop.call_soon_threadsafe(lambda: service.set_records(server.steered_records()))

    server.records_changed = records_changed
    try:
        await server.start()
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        await server.stop()
        await service.close()
        return 1
    stopping = asyncio.Event()
    tasks: set[asyncio.Task] = set()

    def background(coroutine: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_hup() -> None:
        background(server.reload())

    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    loop.add_signal_handler(signal.SIGUSR1, server.set_query_log, True)
    loop.add_signal_handler(signal.SIGUSR2, server.set_query_log, False)

    async def watch_geo() -> None:
        while True:
            await asyncio.sleep(server.settings.geoip_check_interval)
            server.cookie_secrets.reload_if_changed()  # in place: nothing to rebuild
            # Then only the steering is rebuilt over it: zones and cached answers stay.
            if await server.geo_check():
                background(server.follow_geo())

    watchers = [loop.create_task(watch_geo()), loop.create_task(service.run())]
    follower = follower_of(server)
    if follower is not None:
        async def switch(reason: str) -> None:
            log.info("%s: loading the configuration from it", reason)
            await server.reload()
            follower.restart(server.source)

        def deliver(versions: list[Version]) -> None:
            gap = server.apply_versions(versions)
            if gap is not None:
                follower.look_now(after=gap)

        watchers.append(loop.create_task(
            follower.run(deliver, lambda reason: background(switch(reason)))))
    log.info("udp: %s", server.udp_path())
    heartbeat = server.telemetry.heartbeat(lambda: server.live.version)
    log.info("ready: serving %d zones", len(server.snapshot.zones))
    await stopping.wait()
    server.abandon_reloads()
    for task in watchers:
        task.cancel()
    if heartbeat is not None:
        heartbeat.cancel()
    log.info("stopping")
    await service.close()
    await server.stop()
    return 0


def follower_of(server: Server) -> Follower | None:
    """The node's follower of the configuration of record, when another process may
    change it (`--api`: the API process; `--redis`: Redis); None otherwise (the folder
    changes by hand, and SIGHUP reloads it). A node keeps serving what it has when Redis
    loses its configuration (DNS answers never stop), until the next import."""
    settings = server.settings
    if not settings.config_follows_store:
        return None
    return Follower(settings.zones_dir, settings.redis, server.source, keep_when_emptied=True)
