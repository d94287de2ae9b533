"""The one follower of a node: where the configuration of record is, and its new versions.

Every reader of the configuration (a DNS node, `gslb checker`, `gslb explain`, `gslb
status`, `gslb api`) takes it from the same place by the same rule, `read_config`:

- with `--redis`, Redis is the configuration of record as soon as it holds one (`gslb
  api --redis --import DIR` puts one there); until then the zones folder is;
- otherwise the zones folder, with its version log in `zones/.gslb/`.

A `Follower` watches that source for new versions and hands them over in order: a DNS
node runs exactly one (in its state process, or in its single process), which passes
them to the supervisor, which fans them out to the workers. Redis announces each commit
on `gslb:config:changes`, so a follower reads the head when told and otherwise once per
REDIS_INTERVAL (a message lost in a reconnect costs at most that); the folder's head is
one small local file read every FOLDER_INTERVAL. A follower that serves the folder while
`--redis` is given looks for a configuration in Redis once per REDIS_INTERVAL and reports
the switch when it lands; one whose store went back in numbering (Redis emptied and
imported again) reports that too, so the node loads the store whole.

A DNS node's follower (`keep_when_emptied`) treats a Redis that holds no configuration
any more (FLUSHALL, a new empty Redis at the same address) as a gap, not as a new
configuration: it says so once, the node keeps serving what it has, and the next import
is loaded whole. A switch whose load changed nothing (the store still gives nothing to
serve) is tried again after a growing delay (SWITCH_RETRY), never in a loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gslb.config.changes import Version, oldest_kept
from gslb.config.filestore import FileStore
from gslb.config.live import LiveConfig
from gslb.config.redisstore import CHANNEL, RedisStore
from gslb.state.redis import Backoff, connect, errors, parse_url
from gslb.load.steering import load_steering_files
from gslb.load.settle import settle
from gslb.load.zonefile import load_zones

log = logging.getLogger("gslb.config")
FOLDER = "folder"
REDIS = "redis"
FOLDER_INTERVAL = 0.1  # seconds between reads of the folder's head file
REDIS_INTERVAL = 1.0  # seconds between reads of Redis's head when no announcement came
SWITCH_RETRY = (1.0, 60.0)  # first and longest wait before a switch that loaded nothing again


@dataclass(frozen=True)
class Source:
    """Where a configuration came from, and at which version."""

    kind: str  # FOLDER or REDIS
    version: int


def redis_config(url: str) -> LiveConfig | None:
    """Redis's configuration, or None when it holds none (nothing imported yet). Raises
    what the client raises when Redis cannot be read."""
    store = RedisStore(url)
    if store.head() == 0:
        return None
    return store.load()


def folder_config(zones_dir: Path) -> tuple[LiveConfig, list[str]]:
    """The zones folder's configuration, as `gslb serve` first loads it (a steered
    record with a problem is left out), and every problem as `file:line: message`."""
    report = load_zones(zones_dir)
    load = load_steering_files(zones_dir, report.zones)
    records, _ = settle(load, {}, report.zones)
    live = LiveConfig.from_loaded(zones_dir, report.zones, records,
                                  FileStore(zones_dir).written())
    return live, [str(p) for p in report.problems + load.problems]


def read_config(zones_dir: Path, redis_url: str | None
                ) -> tuple[LiveConfig, Source, list[str]]:
    """The configuration of record as every reader sees it (see the module docstring),
    with the problems found loading it. A Redis that cannot be read is logged and the
    folder stands in for it."""
    if redis_url:
        try:
            live = redis_config(redis_url)
        except errors() as exc:
            log.error("cannot read the configuration from Redis (%s): %s; reading %s instead",
                      parse_url(redis_url).display(), exc, zones_dir)
            live = None
        if live is not None:
            return live, Source(REDIS, live.version), []
    live, problems = folder_config(zones_dir)
    return live, Source(FOLDER, live.version), problems


Deliver = Callable[[list[Version]], object]
Switch = Callable[[str], object]


class Follower:
    """Follows one source from one version on; `run` calls `deliver` with each batch of
    new versions in order, and `switch(reason)` when the node must load the store whole
    (after which `restart` says where it now stands). With `keep_when_emptied`, a Redis
    that lost its configuration is waited out (see the module docstring)."""

    def __init__(self, zones_dir: Path, redis_url: str | None, source: Source,
                 keep_when_emptied: bool = False) -> None:
        self.zones_dir = zones_dir
        self.redis_url = redis_url
        self.source = source.kind
        self.version = source.version
        self.wake = asyncio.Event()
        self.failing = False
        self.folder = FileStore(zones_dir)
        self.redis = RedisStore(redis_url) if redis_url else None
        self.switching = False
        self.keep_when_emptied = keep_when_emptied
        self.emptied = False  # Redis holds no configuration; the node serves its last one
        self.retry = Backoff(*SWITCH_RETRY)
        self.next_switch = 0.0  # monotonic time before which no switch starts again

    @property
    def store(self) -> FileStore | RedisStore:
        return self.redis if self.source == REDIS and self.redis is not None else self.folder

    def look_now(self, after: int | None = None) -> None:
        """Read the store at once; with `after`, deliver again what came after it."""
        if after is not None and after < self.version:
            self.version = after
        self.wake.set()

    def restart(self, source: Source) -> None:
        """The node loaded `source` whole: follow it from there."""
        self.source, self.version, self.switching = source.kind, source.version, False
        self.emptied = False
        self.wake.set()

    async def run(self, deliver: Deliver, switch: Switch) -> None:
        """Forever (cancel to stop). The store is read in a thread: a Redis that hangs
        delays changes, never DNS answers."""
        loop = asyncio.get_running_loop()
        listener = loop.create_task(self._listen()) if self.redis_url else None
        interval = FOLDER_INTERVAL if self.source == FOLDER else REDIS_INTERVAL
        since_redis = 0.0
        try:
            while True:
                woken = await self._sleep(interval)
                since_redis += interval
                look_redis = woken or since_redis >= REDIS_INTERVAL
                if look_redis:
                    since_redis = 0.0
                try:
                    versions, reason = await loop.run_in_executor(None, self._step, look_redis)
                except Exception as exc:  # redis down, an unreadable version file
                    self._failed(exc)
                    continue
                self._recovered()
                if reason is not None and not self.switching:
                    if time.monotonic() >= self.next_switch:
                        # a load that leaves the reason standing is tried again later
                        self.next_switch = time.monotonic() + self.retry.next()
                        self.switching = True
                        switch(reason)
                elif versions:
                    deliver(versions)
                if reason is None and not self.switching:  # in step with the store
                    self.retry.reset()
                    self.next_switch = 0.0
                interval = FOLDER_INTERVAL if self.source == FOLDER else REDIS_INTERVAL
        finally:
            if listener is not None:
                listener.cancel()

    async def _sleep(self, seconds: float) -> bool:
        """Until woken or `seconds` pass; True when woken."""
        try:
            await asyncio.wait_for(self.wake.wait(), seconds)
            woken = True
        except asyncio.TimeoutError:
            woken = False
        self.wake.clear()
        return woken

    def _step(self, look_redis: bool) -> tuple[list[Version], str | None]:
        """(new versions in order, None) or ([], why the store must be loaded whole)."""
        if self.switching:
            return [], None
        if self.source == FOLDER and self.redis is not None and look_redis:
            try:
                if self.redis.head() > 0:
                    return [], "Redis now holds a configuration"
            except errors():
                pass  # the folder goes on serving; the state service reports the outage
        store = self.store
        head = store.head()
        if self.source == REDIS and self.keep_when_emptied and (head == 0 or self.emptied):
            return [], self._emptied(head)
        if head < self.version and self.source == REDIS:
            return [], f"the store's head went back from {self.version} to {head}"
        if head <= self.version:
            return [], None
        if self.version + 1 < oldest_kept(head):
            return [], f"the versions after {self.version} are no longer kept"
        found = []
        for version in store.versions_after(self.version):
            if version.number != self.version + 1:
                break  # a gap: the missing version is being written; look again soon
            found.append(version)
            self.version = version.number
        return found, None

    def _emptied(self, head: int) -> str | None:
        """Redis holds no configuration (head 0), or did at the last look: None while it
        holds none (said once); why to load it whole once it holds one again (its
        numbering started over)."""
        if head > 0:
            return f"Redis {self._redis_name()} holds a configuration again (version {head})"
        if not self.emptied:
            log.warning("Redis %s holds no configuration any more; still serving version %d "
                        "until one is imported", self._redis_name(), self.version)
        self.emptied = True
        return None

    def _redis_name(self) -> str:
        assert self.redis_url is not None
        return parse_url(self.redis_url).display()

    async def _listen(self) -> None:
        """Wake the follower on every announced commit (Redis pub/sub)."""
        assert self.redis_url is not None
        backoff = Backoff()
        while True:
            client = connect(parse_url(self.redis_url))
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(CHANNEL)
                backoff.reset()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=REDIS_INTERVAL)
                    if message is not None:
                        self.wake.set()
            except errors():
                await asyncio.sleep(backoff.next())
            finally:
                await client.aclose()

    def _failed(self, exc: BaseException) -> None:
        if not self.failing:
            log.error("cannot follow the configuration (%s, at version %d): %s",
                      self.source, self.version, exc)
        self.failing = True

    def _recovered(self) -> None:
        if self.failing:
            log.info("configuration store reachable again")
        self.failing = False
