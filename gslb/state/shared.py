"""A DNS node's view of the shared state in Redis (key layout: gslb/state/redis.py).

The node keeps a complete copy in memory: every agent's verdicts, the overrides, the
RTT figures and the epoch. It reads everything at connect, subscribes to `gslb:changes`
and reads everything again on each message and every `resync` seconds, which heals any
message lost while disconnected. Decisions never wait on Redis: the state service asks
this copy (quorum over the fresh verdicts, `gslb/health/quorum.py`) whenever it builds a
view.

Fail-static: when Redis is unreachable, the copy stays as it was, the outage is logged
once, reconnects back off (0.1 s doubling to 5 s), and the view's `store` status says
so (shown by `gslb explain --redis`). After `max_age` seconds without a successful read
the `stale` policy applies: `keep` the last known state, or count every member `up`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from gslb.health.quorum import QuorumRule, judge
from gslb.settings import StoreSettings
from gslb.state.redis import (CHANGES, EPOCH, OVERRIDES, RTT, VERDICTS, Backoff, Outage,
                              RedisTarget, connect, errors, parse_url)
from gslb.state.store import AgentVerdict, StoreStatus
from gslb.steering.model import Health

log = logging.getLogger("gslb.state")


@dataclass
class Copy:
    """Everything read from Redis at the last successful sync."""

    epoch: int = 0
    verdicts: dict[str, list[AgentVerdict]] = field(default_factory=dict)
    overrides: dict[str, tuple[str, float]] = field(default_factory=dict)
    rtt: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)  # (ms, samples)


def parse_copy(epoch: Any, verdicts: dict[str, str], overrides: dict[str, str],
               rtt: dict[str, str]) -> tuple[Copy, int]:
    """The copy from raw hashes, and how many entries were malformed (skipped)."""
    copy = Copy(epoch=int(epoch or 0))
    bad = 0
    for field_name, raw in verdicts.items():
        try:
            key, _, agent = field_name.rpartition("|")
            data = json.loads(raw)
            expires = data.get("expires")
            verdict = AgentVerdict(agent, bool(data["up"]), float(data["at"]), str(data.get("detail", "")),
                                   expires=float(expires) if expires is not None else None)
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        copy.verdicts.setdefault(key, []).append(verdict)
    for value, raw in overrides.items():
        try:
            data = json.loads(raw)
            if data["mode"] not in ("up", "down", "drain"):
                raise ValueError(data["mode"])
            copy.overrides[value] = (data["mode"], float(data["until"]))
        except (ValueError, KeyError, TypeError):
            bad += 1
    for field_name, raw in rtt.items():
        try:
            client, _, datacenter = field_name.rpartition("|")
            data = json.loads(raw)
            copy.rtt[(client, datacenter)] = (float(data["ms"]), int(data["n"]))
        except (ValueError, KeyError, TypeError):
            bad += 1
    return copy, bad


async def read_copy(client: Any) -> tuple[Copy, int]:
    """One consistent read of everything (a MULTI/EXEC transaction)."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.get(EPOCH).hgetall(VERDICTS).hgetall(OVERRIDES).hgetall(RTT)
        epoch, verdicts, overrides, rtt = await pipe.execute()
    return parse_copy(epoch, verdicts, overrides, rtt)


class RedisVerdicts:
    """The `Verdicts` source of the state service (gslb/state/service.py) for `--redis`."""

    def __init__(self, settings: StoreSettings, changed: Callable[[], None]) -> None:
        assert settings.redis is not None
        self.settings = settings
        self.target: RedisTarget = parse_url(settings.redis)
        self.changed = changed
        self.rule = QuorumRule(settings.verdict_expiry, settings.quorum)
        self.copy = Copy()
        self.previous: dict[str, Health] = {}
        self.outage = Outage(self.target.display(), log)
        self.last_sync = 0.0  # monotonic time of the last successful read
        self.bad_reported = 0

    async def run(self) -> None:
        """Stay in sync until cancelled, whatever Redis does."""
        backoff = Backoff()
        while True:
            client = connect(self.target)
            try:
                await self._follow(client, backoff)
            except errors() as exc:
                self.outage.failed(exc)
                self.changed()
            finally:
                try:
                    await client.aclose()
                except errors():
                    pass
            await asyncio.sleep(backoff.next())

    async def _follow(self, client: Any, backoff: Backoff) -> None:
        await self.sync(client)
        backoff.reset()
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(CHANGES)
            due = time.monotonic() + self.settings.resync
            while True:
                wait = max(0.0, due - time.monotonic())
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
                if message is not None or time.monotonic() >= due:
                    await self.sync(client)
                if time.monotonic() >= due:
                    due = time.monotonic() + self.settings.resync
        finally:
            await pubsub.aclose()

    async def sync(self, client: Any) -> None:
        copy, bad = await read_copy(client)
        self.copy = copy
        self.last_sync = time.monotonic()
        self.outage.succeeded()
        if bad and bad != self.bad_reported:
            log.error("%d malformed entries in %s skipped", bad, self.target.display())
        self.bad_reported = bad
        self.changed()

    async def sync_once(self) -> None:
        """One read, for a one-shot reader (`gslb explain`); failures are recorded."""
        client = connect(self.target)
        try:
            await self.sync(client)
        except errors() as exc:
            self.outage.failed(exc, quiet=True)
        finally:
            try:
                await client.aclose()
            except errors():
                pass

    def set_records(self, records: object) -> None:
        """Nodes probe nothing with Redis: the agents (`gslb checker`) do."""

    def stale(self) -> bool:
        max_age = self.settings.max_age
        return (not self.outage.connected and max_age > 0
                and time.monotonic() - self.last_sync > max_age)

    def health(self, now: float) -> tuple[dict[str, Health], dict[str, tuple[AgentVerdict, ...]]]:
        if self.stale() and self.settings.stale == "up":
            return {}, {}
        health: dict[str, Health] = {}
        shown: dict[str, tuple[AgentVerdict, ...]] = {}
        for key, verdicts in self.copy.verdicts.items():
            judged, marked = judge(verdicts, now, self.rule, self.previous.get(key))
            shown[key] = marked
            if judged is None:
                continue
            health[key] = judged
            if any(v.fresh for v in marked):
                self.previous[key] = judged
        for key, known in self.previous.items():
            if key not in health:  # gone from the store (a Redis that restarted empty)
                health[key] = Health(known.up, "last known (no verdict in the store)", known.age)
        return health, shown

    def rtt(self) -> dict[tuple[str, str], float]:
        minimum = self.settings.rtt_min_samples
        return {key: float(round(ms)) for key, (ms, count) in self.copy.rtt.items() if count >= minimum}

    def overrides(self, now: float) -> dict[str, tuple[str, float]]:
        return dict(self.copy.overrides)

    def status(self) -> StoreStatus:
        return StoreStatus(self.target.display(), self.outage.connected, self.outage.since,
                           self.outage.error, self.copy.epoch, self.stale())

    async def close(self) -> None:
        pass
