"""`gslb api --redis URL`: the API alone, the configuration of record in Redis.

Several replicas may run at once: writes take the store's lock in Redis, and each
replica follows the configuration with the same follower a DNS node runs
(gslb/config/follower.py), and reads the health state from Redis per request the way a
node judges it (the quorum of the agents' fresh verdicts), so `/v1/explain` and
`/v1/health` show what the nodes use. A
write answers with the new version number; with `?wait=SECONDS` it answers once every
node that reports heartbeats serves it (202 with those behind). `--import DIR` seeds an
empty Redis from a zones folder (zone files and steering YAML) as version 1.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path
from typing import Any, Callable


from api.deps import ApiSettings, Context
from api.guards import allowed_hosts
from api.serve import _Embedded, uvicorn_config, warn_open_hosts
from gslb.config.changes import STEERING, ZONE, Change
from gslb.config.live import LiveConfig, steering_origin
from gslb.config.redisstore import RedisStore, RedisTokens
from gslb.config.follower import REDIS, Follower, Source
from gslb.config.service import ConfigService, Holder
from gslb.config.tokens import TokenStore
from gslb.dns.resolver import Zones
from gslb.load.geoip import GeoDatabases
from gslb.server.listen import bind_http
from gslb.settings import ListenAddress, StoreSettings
from gslb.observability.heartbeat import NODES, behind, parse_beats
from gslb.state.service import read_state_once
from gslb.state.store import StateView
from gslb.snapshot import Snapshot
from gslb.steering.front import Steering
from gslb.load.steering import STEERING_SUFFIX
from gslb.load.zonefile import ZONE_SUFFIX, origin_for

log = logging.getLogger("gslb.api")


def import_changes(folder: Path) -> list[Change]:
    """A zones folder as changes: each zone file, then each steering file."""
    changes = []
    origins = []
    for path in sorted(folder.glob(f"*{ZONE_SUFFIX}")):
        text = path.read_text(encoding="utf-8")
        origin = origin_for(path, text).to_text()
        origins.append(origin)
        changes.append(Change(ZONE, origin, before=None, after=text))
    for path in sorted(folder.glob(f"*{STEERING_SUFFIX}")):
        origin_name = steering_origin(path)
        if origin_name is not None and origin_name.to_text() in origins:
            changes.append(Change(STEERING, origin_name.to_text(), before=None,
                                  after=path.read_text(encoding="utf-8")))
    return changes


class SnapshotOf:
    """A snapshot of the configuration with the current state (for explain and
    previews), built once per configuration version and state view."""

    def __init__(self, service: ConfigService, geo: GeoDatabases | None,
                 state: Callable[[], StateView]) -> None:
        self.service = service
        self.geo = geo
        self.state = state
        self.built: tuple[int, int, Snapshot] | None = None

    def __call__(self) -> Snapshot:
        live = self.service.current()
        view = self.state()
        if self.built is None or self.built[:2] != (live.version, view.version):
            steering = Steering.with_geo(live.all_records(), view.health, view.rtt,
                                         view.version, self.geo, overrides=view.overrides,
                                         keyed=False)
            snapshot = Snapshot(Zones()).replaced_by(list(live.zones.values()), steering=steering)
            self.built = (live.version, view.version, snapshot)
        return self.built[2]


POLL_SECONDS = 0.05


def fleet_wait(client: Any) -> Callable[[int, float | None], list[str]]:
    """`?wait=SECONDS` for `gslb api`: wait until every node that reports heartbeats
    serves a version; the nodes still behind when the time is up."""

    def wait(number: int, seconds: float | None) -> list[str]:
        if not seconds:
            return []
        deadline = time.monotonic() + seconds
        while True:
            lagging = behind(parse_beats(client.hgetall(NODES).values()), number, time.time())
            if not lagging or time.monotonic() >= deadline:
                return lagging
            time.sleep(POLL_SECONDS)

    return wait


async def serve_api(url: str, listen: ListenAddress, folder: Path | None,
                    geo: GeoDatabases | None, hosts: tuple[str, ...] = (),
                    console: bool = True) -> int:
    store = RedisStore(url)
    node = Holder(store.load())
    service = ConfigService(store, node)
    if folder is not None:
        def plan(live: LiveConfig) -> list[Change]:
            return [] if live.zones or live.version else import_changes(folder)

        outcome = service.commit(plan, author="import", message=f"import {folder}")
        if outcome.version is not None:
            log.info("imported %d zones from %s as version %d", len(outcome.after.zones), folder,
                     outcome.version.number)
    def state() -> StateView:
        return read_state_once(None, StoreSettings(redis=url))

    context = Context(service=service, tokens=TokenStore(RedisTokens(store.client)),
                      settings=ApiSettings(hosts=allowed_hosts(listen.host, hosts), console=console),
                      snapshot=SnapshotOf(service, geo, state), geo=geo,
                      state_redis=store.client, state=state,
                      await_served=fleet_wait(store.client))
    warn_open_hosts(context, listen)
    server = _Embedded(uvicorn_config(context))
    sock = bind_http(listen, reuse_port=False)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    follower = Follower(Path("."), url, Source(REDIS, node.live.version))

    def reload(reason: str) -> None:
        log.info("%s: reading the configuration whole", reason)
        node.adopt(store.load())
        follower.restart(Source(REDIS, node.live.version))

    task = loop.create_task(follower.run(service.apply, reload))
    log.info("ready: api on http://%s, configuration version %d from %s", listen,
             node.live.version, url)
    try:
        await server.serve(sockets=[sock])
    finally:
        task.cancel()
        sock.close()
    return 0
