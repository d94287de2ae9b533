"""The state service: turns probes, the state file and the shared store into views.

One service runs per DNS node, off the query path: in the single process's event loop,
or (with `--workers N`) in a *state process* the supervisor forks, whose views the
supervisor fans out to every worker over the control channel (gslb/server/control.py).

Sources, merged in this order (later ones win):
1. verdicts: the embedded checker's (no Redis), or the quorum of the agents' verdicts in
   Redis (`--redis URL`, gslb/state/redis.py) with their RTT figures;
2. the state file (`--state FILE`), watched: it pins health keys and RTTs and carries
   overrides (`gslb override --state FILE` writes them);
3. overrides (from the file, or from Redis), dropped when they expire.

A view is published when what decisions read changed (its content version), when the
store's reachability changed, and at each override expiry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Callable, Mapping, Protocol

from gslb.health.agent import Agent, Report, probes_of
from gslb.settings import StoreSettings
from gslb.state.shared import RedisVerdicts
from gslb.state.store import (AgentVerdict, InProcessStore, StateFileError, StateView,
                              StoreStatus, content_version, format_time)
from gslb.steering.model import Health, Override, SteeredRecord

log = logging.getLogger("gslb.state")
FILE_POLL_SECONDS = 0.2  # how often the state file is looked at (a stat call)
PRIME_SECONDS = 3.0  # longest wait for the store before serving anyway (fail-static)
LOCAL_AGENT = "local"


class Verdicts(Protocol):
    """A source of health verdicts (the embedded checker, or the Redis store)."""

    def health(self, now: float) -> tuple[dict[str, Health], dict[str, tuple[AgentVerdict, ...]]]: ...
    def rtt(self) -> dict[tuple[str, str], float]: ...
    def overrides(self, now: float) -> dict[str, tuple[str, float]]: ...
    def status(self) -> StoreStatus: ...
    def set_records(self, records: Mapping[tuple[str, str], SteeredRecord]) -> None: ...
    async def run(self) -> None: ...
    async def close(self) -> None: ...


class EmbeddedVerdicts:
    """The embedded default: this node's own checker, state in process."""

    def __init__(self, changed: Callable[[], None], seed: StateView | None = None) -> None:
        self.changed = changed
        self.latest: dict[str, AgentVerdict] = {}
        if seed is not None:  # warm start: the last verdicts until the first probes
            for key, verdicts in seed.verdicts.items():
                for verdict in verdicts:
                    if verdict.agent == LOCAL_AGENT:
                        self.latest[key] = verdict
        self.agent = Agent(self.on_report)
        self.started = time.time()

    def on_report(self, report: Report) -> None:
        self.latest[report.key] = AgentVerdict(LOCAL_AGENT, report.up, report.at,
                                               report.outcome.detail)
        if report.changed:
            self.changed()

    def set_records(self, records: Mapping[tuple[str, str], SteeredRecord]) -> None:
        probes = probes_of(records)
        self.agent.set_probes(probes)
        for key in set(self.latest) - set(probes):
            del self.latest[key]

    def health(self, now: float) -> tuple[dict[str, Health], dict[str, tuple[AgentVerdict, ...]]]:
        health = {key: Health(up=v.up, source=f"checker: {v.detail}", age=max(0.0, now - v.at))
                  for key, v in self.latest.items()}
        return health, {key: (v,) for key, v in self.latest.items()}

    def rtt(self) -> dict[tuple[str, str], float]:
        return {}

    def overrides(self, now: float) -> dict[str, tuple[str, float]]:
        return {}

    def status(self) -> StoreStatus:
        return StoreStatus("in-process", True, self.started)

    async def run(self) -> None:
        """The agent's tasks run by themselves."""

    async def close(self) -> None:
        await self.agent.close()


class StateService:
    def __init__(self, state_file: Path | None, publish: Callable[[StateView], None],
                 store: StoreSettings | None = None, seed: StateView | None = None) -> None:
        self.state_file = state_file
        self.publish = publish
        self.dirty = asyncio.Event()
        self.source: Verdicts
        if store is not None and store.redis:
            self.source = RedisVerdicts(store, self.dirty.set)
        else:
            self.source = EmbeddedVerdicts(self.dirty.set, seed)
        self.file: InProcessStore | None = None
        self.records: Mapping[tuple[str, str], SteeredRecord] = {}
        self.file_stamp: tuple[int, int, int] | None = None
        self.published: tuple[int, bool] | None = None
        self.next_expiry: float | None = None

    def set_records(self, records: Mapping[tuple[str, str], SteeredRecord]) -> None:
        """The steered records changed (start, reload): probe what they name now."""
        self.records = records
        self.source.set_records(records)
        if not self.read_file() and self.file is not None:
            self._warn_unknown_checks()
        self.dirty.set()

    def _warn_unknown_checks(self) -> None:
        """A check id in the file that no member names is most likely a typo."""
        assert self.file is not None
        for warning in self.file.unknown_checks(self.records):
            log.warning("%s", warning)

    def read_file(self) -> bool:
        """Re-read the state file if it changed; True when a new reading loaded. A
        broken file keeps the previous reading (logged once per change)."""
        if self.state_file is None:
            return False
        try:
            info = self.state_file.stat()
            stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            stamp = (0, 0, 0)
        if stamp == self.file_stamp:
            return False
        self.file_stamp = stamp
        try:
            self.file = InProcessStore.from_file(self.state_file)
        except StateFileError as exc:
            if self.file is not None:
                log.error("%s; the previous health and latency state keeps serving", exc)
            else:
                log.error("%s; no health or latency state from it until it is fixed", exc)
            return False
        log.info("state file %s read", self.state_file)
        self._warn_unknown_checks()
        return True

    def view(self) -> StateView:
        """Everything merged, as decisions will read it."""
        wall = time.time()
        health, verdicts = self.source.health(wall)
        rtt = self.source.rtt()
        raw = dict(self.source.overrides(wall))
        if self.file is not None:
            pinned = self.file.view()
            health.update(pinned.health)
            rtt.update(pinned.rtt)
            raw.update(self.file.overrides)
        active = {v: (mode, until) for v, (mode, until) in raw.items() if until > wall}
        self.next_expiry = min((until for _, until in active.values()), default=None)
        overrides = {v: Override(mode, f"until {format_time(until)}") for v, (mode, until) in active.items()}
        return StateView(content_version(health, rtt, overrides), health, rtt, overrides,
                         verdicts, self.source.status())

    async def prime(self, timeout: float = PRIME_SECONDS) -> None:
        """Before serving: one read of the store (bounded), so a node that restarts
        answers from the shared last known state, not from an empty one; then publish."""
        if isinstance(self.source, RedisVerdicts):
            try:
                await asyncio.wait_for(self.source.sync_once(), timeout)
            except TimeoutError:
                pass
        self.read_file()
        self.publish_if_changed()

    def publish_if_changed(self) -> None:
        view = self.view()
        status = view.store
        key = (view.version, status.connected if status is not None else True)
        if key != self.published:
            self.published = key
            self.publish(view)

    async def run(self) -> None:
        """Publish views until cancelled."""
        source = asyncio.get_running_loop().create_task(self.source.run())
        try:
            await self._publish_loop()
        finally:
            source.cancel()

    async def _publish_loop(self) -> None:
        while True:
            timeout = FILE_POLL_SECONDS
            if self.next_expiry is not None:
                timeout = min(timeout, max(0.0, self.next_expiry - time.time()) + 0.001)
            try:
                await asyncio.wait_for(self.dirty.wait(), timeout)
            except TimeoutError:
                pass
            self.dirty.clear()
            self.read_file()
            try:
                self.publish_if_changed()
            except Exception:
                log.exception("publishing the state failed")

    async def close(self) -> None:
        await self.source.close()


def read_state_once(state_file: Path | None, store: StoreSettings | None) -> StateView:
    """One view built the way a node builds it, for `gslb explain`: the state file, and
    one full read of Redis when there is one (an unreachable Redis is reported in the
    view's `store` status, not raised). StateFileError for a broken state file."""
    if state_file is not None:
        InProcessStore.from_file(state_file)  # the error, with file and field, for the caller

    async def read() -> StateView:
        service = StateService(state_file, lambda view: None, store)
        service.read_file()
        if isinstance(service.source, RedisVerdicts):
            await service.source.sync_once()
        return service.view()

    return asyncio.run(read())
