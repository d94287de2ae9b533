"""Fleet heartbeats: each DNS node says, every few seconds, what it serves, in Redis.

Key `gslb:nodes` (a hash): NODE -> JSON {"node", "version", "config", "config_version",
"config_source", "snapshot", "state_epoch", "state_version", "store_up", "zones":
{origin: serial}, "started", "at", "uptime", "qps", "queries", "workers"}.
`config_version` is the configuration version every worker of the node serves, and
`config_source` where it came from ("redis" or "folder"); a node beats at once when that
version changes, so `gslb api --redis` can tell when a write is served everywhere. `at` is the wall-clock time of the beat; `gslb status`
calls a node whose last beat is older than STALE_AFTER of its intervals "stopped reporting", and a
node whose configuration differs from the newest one "lagging".

A node builds its beat from the metrics reports its processes write (see metrics.py), so
the beat agrees with /metrics and costs the query path nothing. It runs in the process
that talks to Redis already: the single process, or the supervisor's state process. A
dead Redis costs a bounded wait per try (the client's timeouts) and a back-off; DNS
answers never wait for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from gslb import __version__
from gslb.observability import metrics
from gslb.state.redis import PREFIX, Backoff, connect, errors, parse_url

NODES = PREFIX + "nodes"
BEAT_SECONDS = 2.0
SERVED_POLL_SECONDS = 0.05  # how often the served configuration version is compared
STALE_AFTER = 5  # beats missed before a node counts as stopped
log = logging.getLogger("gslb.heartbeat")


def node_name(identity: str | None, listen: str) -> str:
    """The name a node reports under: its --identity, else host name and first listen
    address (stable across restarts, distinct for two nodes on one host)."""
    return identity or f"{socket.gethostname()}/{listen}"


def config_digest(zones: dict[str, int]) -> str:
    """A short digest of what a node serves (zones and serials), to compare nodes."""
    text = json.dumps(sorted(zones.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def silent(beat: dict[str, Any], now: float) -> bool:
    """No heartbeat for STALE_AFTER of the node's own intervals."""
    return now - beat["at"] > STALE_AFTER * beat.get("interval", BEAT_SECONDS)


def parse_beats(values: Iterable[str]) -> list[dict[str, Any]]:
    """The beats of `gslb:nodes` (its hash values); one that does not parse is skipped."""
    beats = []
    for raw in values:
        try:
            beats.append(json.loads(raw))
        except ValueError:
            continue
    return beats


def behind(beats: list[dict[str, Any]], number: int, now: float) -> list[str]:
    """The nodes still reporting that serve an older configuration version than
    `number`."""
    return sorted(b["node"] for b in beats
                  if not silent(b, now) and b.get("config_version", 0) < number)


def build_beat(reports: list[metrics.Report], node: str, started: float, now: float,
               previous: tuple[float, int] | None, interval: float,
               served: int | None = None) -> dict[str, Any]:
    """One heartbeat from the processes' reports; `previous` is (time, queries) of the
    last beat, for the rate; `served` the configuration version the node serves (else
    the newest report's)."""
    total: metrics.Report = {}
    for report in reports:
        metrics.merge_counters(total, report)
    queries = sum(total.get("queries", {}).values())
    live = [r for r in reports if metrics.alive(r.get("pid", 0))]
    serving = [r for r in live if r.get("snapshot")]
    snap = metrics.newest_snapshot(serving) if serving else {}
    zones = snap.get("zones", {})
    started = min((r["started"] for r in live if "started" in r), default=started)
    qps = 0.0
    if previous is not None and now > previous[0]:
        qps = max(0, queries - previous[1]) / (now - previous[0])
    return {
        "node": node, "version": __version__, "config": config_digest(zones),
        "config_version": served if served is not None else snap.get("config_version", 0),
        "config_source": snap.get("config_source", "folder"),
        "snapshot": snap.get("version", 0), "state_version": snap.get("state_version", 0),
        "state_epoch": snap.get("epoch", 0), "store_up": snap.get("store_up", False),
        "zones": zones, "started": started, "at": now, "uptime": now - started,
        "qps": round(qps, 1), "queries": queries, "interval": interval,
        "workers": sum(1 for r in live if r.get("serves")),
    }


class Heartbeat:
    """Publishes this node's beat every BEAT_SECONDS until cancelled."""

    def __init__(self, redis_url: str, directory: Path, node: str,
                 interval: float = BEAT_SECONDS, served: Callable[[], int] | None = None) -> None:
        self.target = parse_url(redis_url)
        self.served = served
        self.directory = directory
        self.node = node
        self.interval = interval
        self.started = time.time()
        self.previous: tuple[float, int] | None = None

    def beat(self) -> dict[str, Any]:
        now = time.time()
        beat = build_beat(metrics.read_reports(self.directory), self.node, self.started, now,
                          self.previous, self.interval,
                          self.served() if self.served is not None else None)
        self.previous = (now, beat["queries"])
        return beat

    async def run(self) -> None:
        client = connect(self.target)
        backoff = Backoff()
        try:
            while True:
                beat = await asyncio.get_running_loop().run_in_executor(None, self.beat)
                try:
                    await client.hset(NODES, self.node, json.dumps(beat))
                except errors() as exc:  # the state service logs the outage once
                    log.debug("heartbeat to %s failed: %s", self.target.display(), exc)
                    await asyncio.sleep(backoff.next())
                    continue
                backoff.reset()
                await self._until_due(beat["config_version"])
        finally:
            await client.aclose()

    async def _until_due(self, version: int) -> None:
        """Sleep one interval, or less when the served configuration version changes."""
        deadline = time.monotonic() + self.interval
        while time.monotonic() < deadline:
            await asyncio.sleep(min(SERVED_POLL_SECONDS, self.interval))
            if self.served is not None and self.served() != version:
                return
