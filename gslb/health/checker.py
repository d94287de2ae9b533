"""`gslb checker --redis URL --agent NAME`: a health agent writing verdicts to Redis.

It reads the configuration of record as the DNS nodes do (Redis's, once `gslb api
--redis --import` put one there, else the zones folder's; gslb/config/follower.py),
follows it (a member added through the API with a check is probed from that version
on; SIGHUP re-reads it whole), probes every check the steered members name, and writes each target's verdict after
every probe (`gslb:verdicts`, field `check@address|AGENT`, with the probe time, so nodes
can tell fresh verdicts from stale ones). A flip (up -> down or back) also bumps the
epoch and is announced on `gslb:changes`, so nodes apply it at once; the periodic
refreshes are picked up by the nodes' resync. Probe times become RTT telemetry for the
agent's region and each member's datacenter. A heartbeat goes to `gslb:agents`.

Fail-static on this side too: while Redis is unreachable the agent keeps probing and
keeps only the latest verdict per target; on reconnect it writes them all and
announces, so a change made during the outage reaches the nodes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gslb.config.changes import Version
from gslb.config.follower import FOLDER, Follower, Source, read_config
from gslb.config.live import LiveConfig, replay
from gslb.health.agent import Agent, Report, probes_of
from gslb.state.redis import (AGENTS, CHANGES, EPOCH, VERDICTS, Backoff, Outage, connect,
                              errors, parse_url)
from gslb.state.telemetry import Sample, ingest_async
from gslb.steering.model import SteeredRecord

log = logging.getLogger("gslb.checker")
FLUSH_SECONDS = 0.05  # verdicts are written in small batches
HEARTBEAT_SECONDS = 1.0
VERDICT_INTERVALS = 3  # a verdict expires after this many probe intervals ...
MIN_VERDICT_LIFE = 5.0  # ... and never sooner than this (seconds)


@dataclass
class Pending:
    """What has not reached Redis yet: the latest verdict per field, RTT samples, flips."""

    verdicts: dict[str, str] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    flipped: bool = False


class Checker:
    def __init__(self, zones_dir: Path, redis_url: str, agent: str, region: str,
                 min_samples: int = 5) -> None:
        self.zones_dir = zones_dir
        self.redis_url = redis_url
        self.live = LiveConfig(zones_dir)
        self.follower = Follower(zones_dir, redis_url, Source(FOLDER, 0))  # load() says where
        self.target = parse_url(redis_url)
        self.name = agent
        self.region = region
        self.min_samples = min_samples
        self.pending = Pending()
        self.wake = asyncio.Event()
        self.datacenters: dict[str, set[str]] = {}  # health key -> member datacenters
        self.agent = Agent(self.on_report)
        self.outage = Outage(self.target.display(), log)
        self.probed: set[str] = set()

    def load(self) -> bool:
        """(Re)read the configuration whole; start, stop and restart probes to match."""
        self.live, source, problems = read_config(self.zones_dir, self.redis_url)
        for problem in problems:
            log.error("%s", problem)
        log.info("configuration: %s, version %d", source.kind, source.version)
        self.follower.restart(source)
        return self.probe(self.live.all_records())

    def apply(self, versions: list[Version]) -> None:
        """Versions the follower delivered: probe what the records name from now on."""
        replayed = replay(self.live, versions)
        if replayed.failed is not None:
            log.error("configuration version %d does not apply (%s)", *replayed.failed)
        live = replayed.live
        if live is not self.live:
            self.live = live
            log.info("configuration version %d: probing %d target(s)", live.version,
                     len(probes_of(live.all_records())))
            self.probe(live.all_records())

    def probe(self, records: dict[tuple[str, str], SteeredRecord]) -> bool:
        """Start, stop and restart probes to match `records`; True when any is probed."""
        self.datacenters = _datacenters(records)
        probes = probes_of(records)
        gone = self.probed - set(probes)
        for key in gone:  # nobody should count a verdict on a target we stopped probing
            self.pending.verdicts[f"{key}|{self.name}"] = ""
        self.probed = set(probes)
        self.agent.set_probes(probes)
        return bool(probes)

    def on_report(self, report: Report) -> None:
        # A verdict vouches for its target until a few probe intervals have passed: an
        # agent that stops probing (or dies) stops counting on time.
        expires = report.at + max(VERDICT_INTERVALS * report.probe.check.interval, MIN_VERDICT_LIFE)
        data = {"up": report.up, "at": report.at, "expires": expires,
                "detail": report.outcome.detail, "region": self.region}
        self.pending.verdicts[f"{report.key}|{self.name}"] = json.dumps(data)
        self.pending.flipped = self.pending.flipped or report.changed
        if report.outcome.ok:
            for datacenter in self.datacenters.get(report.key, ()):
                self.pending.samples.append(Sample(self.region, datacenter, report.outcome.rtt_ms))
        self.wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        backoff = Backoff()
        client = connect(self.target)
        beat = 0.0
        try:
            while not stopping.is_set():
                try:
                    await asyncio.wait_for(self.wake.wait(), FLUSH_SECONDS * 4)
                except TimeoutError:
                    pass
                await asyncio.sleep(FLUSH_SECONDS)  # gather what arrives together
                self.wake.clear()
                try:
                    if time.monotonic() - beat >= HEARTBEAT_SECONDS:
                        await self.heartbeat(client)
                        beat = time.monotonic()
                    await self.flush(client)
                    self.outage.succeeded()
                    backoff.reset()
                except errors() as exc:
                    self.outage.failed(exc)
                    self.pending.flipped = True  # announce whatever we write on return
                    await _sleep_or_stop(stopping, backoff.next())
        finally:
            await self.agent.close()
            await client.aclose()

    async def flush(self, client: Any) -> None:
        pending, self.pending = self.pending, Pending()
        try:
            writes = {k: v for k, v in pending.verdicts.items() if v}
            removed = [k for k, v in pending.verdicts.items() if not v]
            if writes or removed:
                async with client.pipeline(transaction=True) as pipe:
                    if writes:
                        pipe.hset(VERDICTS, mapping=writes)
                    if removed:
                        pipe.hdel(VERDICTS, *removed)
                    if pending.flipped or removed:
                        pipe.incr(EPOCH)
                    results = await pipe.execute()
                if pending.flipped or removed:
                    await client.publish(CHANGES, json.dumps({"epoch": results[-1], "kind": "verdict"}))
            if pending.samples:
                await ingest_async(client, pending.samples, min_samples=self.min_samples)
        except BaseException:
            # Keep what was not written (newer verdicts win), for the next attempt.
            pending.verdicts.update(self.pending.verdicts)
            pending.samples = (pending.samples + self.pending.samples)[-1000:]
            pending.flipped = pending.flipped or self.pending.flipped
            self.pending = pending
            raise

    async def heartbeat(self, client: Any) -> None:
        entry = {"region": self.region, "at": time.time(), "probes": len(self.probed)}
        await client.hset(AGENTS, self.name, json.dumps(entry))


def _datacenters(records: dict[tuple[str, str], SteeredRecord]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for record in records.values():
        for pool in record.pools.values():
            for member in pool.members:
                if member.probe is not None and member.datacenter:
                    found.setdefault(member.probe.key, set()).add(member.datacenter)
    return found


async def _sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        pass


async def run_checker(zones_dir: Path, redis_url: str, agent: str, region: str,
                      min_samples: int = 5) -> int:
    checker = Checker(zones_dir, redis_url, agent, region, min_samples)
    if not checker.load():
        log.warning("no steered member names a defined check in %s: nothing to probe yet",
                    zones_dir)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, checker.load)
    log.info("checker %s (region %s) writing to %s", agent, region, checker.target.display())

    def reload(reason: str) -> None:
        log.info("%s: reading the configuration whole", reason)
        checker.load()

    follower = loop.create_task(checker.follower.run(checker.apply, reload))
    try:
        await checker.run(stopping)
    finally:
        follower.cancel()
    log.info("checker %s stopped", agent)
    return 0
