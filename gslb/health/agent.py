"""A health agent: probes every target on its own schedule, with rise/fall and jitter.

The same agent runs embedded in `gslb serve` (no Redis: in the state process of the
supervisor, or in the single process) and as `gslb checker --redis URL --agent NAME`.
It reports after every probe (`Report`: the target's verdict, whether it just changed,
the probe's detail and RTT); what happens to reports is the caller's business (keep
them in process, or write them to Redis).

Warm start: a target has no verdict until its first probe; that first result decides
it at once (up or down), after which `rise` consecutive successes bring it up and
`fall` consecutive failures take it down. Until a target's first probe, readers use the
last known state (from Redis) or count it up (embedded), so a restart never points at a
member it has not checked, nor declares everything down.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping

from gslb.health.probes import Outcome, new_http_client, run_probe
from gslb.steering.model import Probe, SteeredRecord

if TYPE_CHECKING:  # gslb.health.probes imports it once a probe runs
    import httpx

log = logging.getLogger("gslb.health")
logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per probe


@dataclass
class Tracker:
    """Rise/fall for one target: `up` is None until the first result."""

    rise: int
    fall: int
    up: bool | None = None
    streak: int = 0  # consecutive results that disagree with `up`

    def record(self, ok: bool) -> bool:
        """Count one result; True when the verdict changed (including the first one)."""
        if self.up is None:
            self.up, self.streak = ok, 0
            return True
        if ok == self.up:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak >= (self.rise if ok else self.fall):
            self.up, self.streak = ok, 0
            return True
        return False


@dataclass(frozen=True)
class Report:
    key: str  # the probe's health key, check@address
    probe: Probe
    up: bool
    changed: bool
    outcome: Outcome
    at: float  # wall-clock time of the probe


def probes_of(records: Mapping[tuple[str, str], SteeredRecord]) -> dict[str, Probe]:
    """Every distinct probe the steered records name, by health key."""
    return {member.probe.key: member.probe
            for record in records.values() for pool in record.pools.values()
            for member in pool.members if member.probe is not None}


class Agent:
    """Runs one probing task per target; `set_probes` starts, stops and restarts them."""

    def __init__(self, report: Callable[[Report], None], rng: random.Random | None = None) -> None:
        self.report = report
        self.rng = rng or random.Random()
        self.tasks: dict[str, tuple[Probe, asyncio.Task]] = {}
        self.trackers: dict[str, Tracker] = {}
        self.clients: dict[bool, httpx.AsyncClient] = {}

    def set_probes(self, probes: Mapping[str, Probe]) -> None:
        """Probe exactly these: new ones start, gone ones stop, changed definitions
        restart (keeping the verdict so far when only timings changed)."""
        for key in list(self.tasks):
            probe, task = self.tasks[key]
            if probes.get(key) != probe:
                task.cancel()
                del self.tasks[key]
                if key not in probes:
                    self.trackers.pop(key, None)
        for key, probe in probes.items():
            if key not in self.tasks:
                tracker = self.trackers.get(key)
                if tracker is None:
                    tracker = self.trackers[key] = Tracker(probe.check.rise, probe.check.fall)
                tracker.rise, tracker.fall = probe.check.rise, probe.check.fall
                self.tasks[key] = (probe, asyncio.get_running_loop().create_task(self._run(probe)))
        log.info("probing %d targets", len(self.tasks))

    def verdicts(self) -> dict[str, bool]:
        """The current verdict of every target that has one."""
        return {key: t.up for key, t in self.trackers.items() if t.up is not None}

    async def _run(self, probe: Probe) -> None:
        spec = probe.check
        # A first probe soon, spread over a fraction of the interval.
        await asyncio.sleep(self.rng.uniform(0, spec.interval * spec.jitter))
        while True:
            started = time.monotonic()
            client = None
            if spec.kind in ("http", "https"):
                client = self.clients.get(spec.tls_verify)
                if client is None:
                    client = self.clients[spec.tls_verify] = new_http_client(spec.tls_verify)
            outcome = await run_probe(probe, client)
            tracker = self.trackers[probe.key]
            changed = tracker.record(outcome.ok)
            assert tracker.up is not None
            if changed:
                log.info("%s is %s: %s", probe.key, "up" if tracker.up else "DOWN", outcome.detail)
            try:
                self.report(Report(probe.key, probe, tracker.up, changed, outcome, time.time()))
            except Exception:
                log.exception("health report for %s failed", probe.key)
            wait = spec.interval * (1 + spec.jitter * self.rng.uniform(-1, 1))
            await asyncio.sleep(max(0.0, wait - (time.monotonic() - started)))

    async def close(self) -> None:
        for _, task in self.tasks.values():
            task.cancel()
        self.tasks.clear()
        for client in self.clients.values():
            await client.aclose()
