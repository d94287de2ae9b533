"""`gslb api --redis URL`: the API alone, the configuration of record in Redis.

Several replicas may run at once: writes take the store's lock in Redis, and each
replica follows the head like a DNS node does. `--import DIR` seeds an empty Redis from
a zones folder (zone files and steering YAML) as version 1.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import uvicorn

from api.app import create_app
from api.deps import Context
from api.serve import _Embedded
from gslb.config.changes import STEERING, ZONE, Change
from gslb.config.live import LiveConfig, steering_origin
from gslb.config.redisstore import RedisStore, RedisTokens
from gslb.config.service import ConfigService, Holder, follow
from gslb.config.tokens import TokenStore
from gslb.dns.resolver import Zones
from gslb.load.geoip import GeoDatabases
from gslb.server.listen import bind_http
from gslb.settings import ListenAddress, StoreSettings
from gslb.state.service import read_state_once
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
    """A snapshot built from the configuration (for explain), once per version."""

    def __init__(self, node: Holder, geo: GeoDatabases | None) -> None:
        self.node = node
        self.geo = geo
        self.built: tuple[int, Snapshot] | None = None

    def __call__(self) -> Snapshot:
        live = self.node.live
        if self.built is None or self.built[0] != live.version:
            zones = list(live.zones.values())
            steering = Steering.with_geo(live.all_records(), {}, {}, 0, self.geo)
            self.built = (live.version, Snapshot(Zones()).replaced_by(zones, steering=steering))
        return self.built[1]


async def serve_api(url: str, listen: ListenAddress, folder: Path | None,
                    geo: GeoDatabases | None) -> int:
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
    context = Context(service=service, tokens=TokenStore(RedisTokens(store.client)),
                      snapshot=SnapshotOf(node, geo), geo=geo, state_redis=store.client,
                      state=lambda: read_state_once(None, StoreSettings(redis=url)))
    config = uvicorn.Config(create_app(context), log_level="warning", access_log=False,
                            lifespan="off", limit_concurrency=256)
    server = _Embedded(config)
    sock = bind_http(listen, reuse_port=False)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    follower = loop.create_task(follow(service))
    log.info("ready: api on http://%s, configuration version %d from %s", listen,
             node.live.version, url)
    try:
        await server.serve(sockets=[sock])
    finally:
        follower.cancel()
        sock.close()
    return 0
