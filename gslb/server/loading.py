"""Loading a node's configuration: the first load and every reload, from the zones
folder or from Redis when it holds the configuration of record, the steered records of
the steering files, and the state file's first reading.

`Loading` is the half of `Server` (gslb/server/node.py) that reads files and stores:
it builds the next snapshot off the query path and hands it to `Server._swap_built`.
A zone that fails to load on reload is reported and its last good version keeps serving.
A reload runs in a daemon thread so that a stop never waits for it; a stop abandons it
(`abandon_reloads`): it swaps nothing in and logs nothing once its current read ends, and
the process's exit ends it if it is still reading.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

import dns.name

from gslb.config.follower import redis_config
from gslb.config.live import LiveConfig
from gslb.config.redisstore import RedisStore
from gslb.config.rrsets import Invalid
from gslb.config.service import ConfigStore
from gslb.dns.handler import Responder
from gslb.dns.zone import Zone
from gslb.load.settle import settle
from gslb.load.steering import geo_warnings, load_steering_files
from gslb.load.zonefile import LoadReport, load_zones
from gslb.server import fastpath
from gslb.server.cookiefile import CookieSecrets
from gslb.server.telemetry import Telemetry
from gslb.settings import Settings
from gslb.snapshot import Snapshot
from gslb.state.redis import errors, parse_url
from gslb.state.store import InProcessStore, StateFileError, StateView
from gslb.steering import _geomap  # type: ignore[attr-defined]
from gslb.steering.front import Steering, geo_table, rule_maps_of
from gslb.steering.model import SteeredRecord

if TYPE_CHECKING:  # only with --geoip (gslb/server/node.py opens them)
    from gslb.load.geoip import GeoDatabases, SharedTable

log = logging.getLogger("gslb.server")
LOW_NICE = 10  # a GeoIP rebuild's Python threads (its C walk runs at SCHED_IDLE)

T = TypeVar("T")


def lower_this_thread() -> None:
    """This thread (on Linux a thread has its own niceness) at LOW_NICE, for a rebuild
    that runs beside the answering: at the default niceness a GeoIP rebuild held a UDP
    loop up to 2 ms (perf sched showed).

    Not SCHED_IDLE, as the C walk's own threads are, although that would serve the
    answers better on an idle machine: a task that wakes behind a nice-10 thread can
    still wait out the kernel's next tick (4 ms here), and at SCHED_IDLE the rebuild's
    p99 at 10,000 qps fell from 1.6 ms to 0.13-0.74 ms (bench/RESULTS.md). But this
    thread holds the GIL, and SCHED_IDLE gets almost no CPU while other work keeps the
    CPUs busy: with two CPU-bound processes beside the server, a TCP answer waited up to
    808 ms for the GIL during a rebuild, against 11 ms at nice 10 (so would the health
    checks and the metrics of that process). Never raises the priority; best effort (no
    per-thread niceness: nothing changes)."""
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < LOW_NICE:
            os.setpriority(os.PRIO_PROCESS, tid, LOW_NICE)
    except (AttributeError, OSError):
        pass


def at_low_priority(job: Callable[[], T]) -> T:
    """`job` run in a thread of its own at LOW_NICE, this one waiting for it: what it
    returns, or what it raised. For a process that does the work in its main thread
    and must not lower that thread for good (a supervisor: its children inherit it)."""
    outcome: list = []

    def work() -> None:
        lower_this_thread()
        try:
            outcome.append((True, job()))
        except BaseException as exc:  # handed to the caller, as if it ran there
            outcome.append((False, exc))

    thread = threading.Thread(target=work, name="low", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


class Loading:
    """Loads and reloads the configuration a `Server` serves (mixed into it)."""

    # Set by Server.__init__.
    settings: Settings
    responder: Responder
    telemetry: Telemetry
    geo: GeoDatabases | None
    cookie_secrets: CookieSecrets
    native_udp: bool  # the C loop answers UDP (Server's)
    config_store: ConfigStore
    live: LiveConfig
    state_view: StateView
    state_seeded: bool
    _reloading: bool
    _reload_again: bool
    _abandoned: threading.Event
    _swap_lock: threading.RLock
    _geo_lock: threading.Lock

    if TYPE_CHECKING:  # Server's: the snapshot served, and how a built one goes in
        @property
        def snapshot(self) -> Snapshot: ...

        @snapshot.setter
        def snapshot(self, snapshot: Snapshot) -> None: ...

        def _swap_built(self, built: Snapshot, view: StateView) -> None: ...

        def _records_changed(self) -> None: ...

    def load(self) -> bool:
        """Initial load: serve what is valid, report the rest; False when nothing loaded.
        What the load freed (the files' text, the parse's scratch) goes back to the
        system, not kept by the heap for the process's whole life.

        The cyclic collector is off meanwhile: the load leaves no cycles behind, and
        collecting while thousands of zones' objects pile up only walks them again and
        again."""
        fastpath.map_large_blocks()
        gc.disable()
        try:
            loaded = self._first_load()
        finally:
            gc.enable()
        _geomap.release_memory()
        return loaded

    def _first_load(self) -> bool:
        live = self._redis_config()
        if live is not None and self._serve_redis(live):
            return True
        if self.settings.redis:
            log.info("configuration source: the zones folder %s (Redis holds none yet; this "
                     "node switches to Redis when `gslb api --redis --import` puts one there)",
                     self.settings.zones_dir)
        return self._load_files()

    def _redis_config(self) -> LiveConfig | None:
        """Redis's configuration when `--redis` is given and Redis holds one; None
        otherwise, and when Redis cannot be read (logged)."""
        if not self.settings.redis:
            return None
        # Redis down, or a reply we cannot read
        failures: tuple[type[Exception], ...] = (*errors(), Invalid)
        try:
            return redis_config(self.settings.redis)
        except failures as exc:
            log.error("cannot load the configuration from Redis (%s): %s",
                      parse_url(self.settings.redis).display(), exc)
            return None

    def _serve_redis(self, live: LiveConfig) -> bool:
        """Serve Redis's configuration from now on; False when it holds no zone."""
        if not live.zones:
            return False
        assert self.settings.redis is not None
        switched = not isinstance(self.config_store, RedisStore)
        self.config_store = RedisStore(self.settings.redis)
        records = live.all_records()
        view = self.state_view
        self._swap_built(self.snapshot.replaced_by(list(live.zones.values()),
                                                   steering=self._steering(records)), view)
        self.live = live
        self._prewarm()
        self.telemetry.loaded(True, 0)
        log.info("configuration source: Redis%s, %d zones at version %d",
                 " (until now: the zones folder)" if switched and self.live.zones else "",
                 len(live.zones), live.version)
        self._records_changed()
        return True

    def _load_files(self) -> bool:
        head = self.config_store.written()
        # the first load: nothing else runs yet, so a forked process may load half
        report = load_zones(self.settings.zones_dir, parallel=True)
        _log_problems(report)
        self._serve_loaded(report.zones, [], head)
        self.telemetry.loaded(bool(report.zones), len(report.problems))
        if self.config_store.recover(self.live):
            log.warning("finished configuration version %d, which a crash interrupted",
                        self.config_store.head())
            return self._load_files()
        self._prewarm()
        _log_loaded(report.zones, self.settings.zones_dir)
        return bool(report.zones)

    async def reload(self) -> None:
        """Re-read every zone in a worker thread; keep the last good version of broken ones.

        A SIGHUP that arrives while a reload runs is not lost: one more reload follows,
        so an edit made after the running reload read its file is still picked up.
        """
        if self._reloading:
            self._reload_again = True
            log.info("reload already in progress; another will follow it")
            return
        self._reloading = True
        try:
            while True:
                self._reload_again = False
                await self._reload_once()
                if not self._reload_again or self._abandoned.is_set():
                    break
        finally:
            self._reloading = False

    async def follow_geo(self) -> None:
        """A GeoIP database changed (`geo_changed` walked it): `refresh_geo` in a daemon
        thread. Never beside a reload, which could swap in a steering it built over the
        old database after this one: while one runs, one more reload follows it (and
        builds over the new database); a reload asked for meanwhile runs after this."""
        if self._reloading:
            self._reload_again = True
            log.info("reload in progress; another will follow it for the new GeoIP database")
            return
        self._reloading = True
        self._reload_again = False
        try:
            await self._in_thread(self.refresh_geo, low=True)
        finally:
            self._reloading = False
        if self._reload_again and not self._abandoned.is_set():
            await self.reload()

    async def _reload_once(self) -> None:
        await self._in_thread(self.reload_zones)

    async def _in_thread(self, job: Callable[[], T], low: bool = False) -> T | None:
        """`job` (a reload) in a daemon thread, and what it returned (None when it
        failed): a SIGTERM meanwhile stops the server at once (the loop's default
        executor would make the exit wait for the whole load). `low`: the thread runs
        at LOW_NICE (`lower_this_thread`)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T | None] = loop.create_future()

        def finished(result: T | None) -> None:
            if not done.done():
                done.set_result(result)

        def work() -> None:
            result = None
            if low:
                lower_this_thread()
            try:
                result = job()
            except Exception:
                if not self._abandoned.is_set():
                    log.exception("reload failed; still serving version %d", self.snapshot.version)
            finally:
                try:
                    loop.call_soon_threadsafe(finished, result)
                except RuntimeError:  # the loop closed: the server is stopping anyway
                    pass

        threading.Thread(target=work, name="reload", daemon=True).start()
        return await done

    async def geo_check(self) -> bool:
        """`geo_changed` (a changed database in use is walked: about a second for a City
        database) in a thread at LOW_NICE, while the loop goes on answering."""
        return bool(await self._in_thread(self.geo_changed, low=True))

    def reload_zones(self) -> bool:
        """Re-read every zone; keep the last good version of broken ones.

        Synchronous: the async `reload` and the worker supervisor run it in a thread of
        its own, so a stop request is never held up by it. True when a new snapshot was
        swapped in; False when the load failed or loaded nothing, in which case the
        current snapshot keeps serving, or when the node stopped meanwhile. Like the
        first load, it hands the memory it freed back to the system.
        """
        swapped = self._reload_zones()
        _geomap.release_memory()
        return swapped

    def _reload_zones(self) -> bool:
        if self.geo is not None:
            self.geo.reload_if_changed()  # a SIGHUP also picks up a new GeoIP database
        self.cookie_secrets.reload_if_changed()  # and new cookie secrets
        live = self._redis_config()
        if self._abandoned.is_set():
            return False
        if live is not None:
            return self._serve_redis(live)
        if isinstance(self.config_store, RedisStore):
            assert self.settings.redis is not None
            log.error("reload: Redis %s holds no configuration; still serving version %d",
                      parse_url(self.settings.redis).display(), self.live.version)
            return False
        try:
            head = self.config_store.written()
            report = load_zones(self.settings.zones_dir)
        except Exception:
            log.exception("reload failed; still serving version %d", self.snapshot.version)
            self.telemetry.loaded(False, 0)
            return False
        if self._abandoned.is_set():
            return False
        return self._swap_in(report, head)

    def abandon_reloads(self) -> None:
        """The node is stopping: a reload under way in its thread ends at its next step
        without swapping in or logging anything (it neither delays the stop nor acts
        after it)."""
        self._abandoned.set()

    def _swap_in(self, report: LoadReport, head: int) -> bool:
        """The next snapshot from a load: its zones, the last good version of the zones
        whose file failed, the steering of both."""
        _log_problems(report)
        current = self.snapshot
        if not report.zones and report.problems:
            self.telemetry.loaded(False, len(report.problems))
            log.error(
                "reload loaded no zone from %s; still serving all %d zones of version %d",
                self.settings.zones_dir, len(current.zones), current.version,
            )
            return False
        broken = {p.file for p in report.problems}
        loaded = {z.origin for z in report.zones}
        kept = [z for z in current.loaded if z.source in broken and z.origin not in loaded]
        self._serve_loaded(report.zones, kept, head)
        self.telemetry.loaded(True, len(report.problems))
        self._prewarm()
        for zone in kept:
            log.warning("zone %s: keeping last good version (serial %d) and its steering as it was "
                        "(its steering file is read again once the zone loads)",
                        zone.origin, zone.serial())
        log.info(
            "reloaded: %d zones (%d kept from before), version %d",
            len(self.snapshot.zones), len(kept), self.snapshot.version,
        )
        return True

    def _prewarm(self) -> None:
        """Fill the new snapshot's answer cache before it serves (and before workers fork
        from it, so they all start with it). Not when the native loop answers UDP: C
        builds any answer from the zone data the first time it is asked (render.c), as
        fast as a cached one, so prewarming would only delay readiness."""
        if self.settings.prewarm and not self.native_udp:
            started = time.monotonic()
            # A responder of its own: prewarm queries are not traffic to count, and a
            # reload prewarms in a thread while the loop counts real queries.
            prewarming = Responder(self.responder.options, self.responder.labels,
                                   counting=False)
            count = prewarming.prewarm(self.snapshot, self.settings.prewarm)
            log.info("prewarmed %d answers in %.2f s", count, time.monotonic() - started)

    def geo_changed(self) -> bool:
        """A GeoIP database file changed and opened fine: time to rebuild the steering
        (a file that fails to open keeps the previous reader and reports no change)."""
        if self.geo is None or not self.geo.reload_if_changed():
            return False
        log.info("a GeoIP database changed; rebuilding the steering over it")
        return True

    def follow_geo_file(self, shared: SharedTable | None) -> None:
        """A worker or the API process told that a GeoIP database changed: re-open it
        here with the supervisor's table of it (`shared`; walked here when that cannot
        be mapped), then rebuild the steering over it (`refresh_geo`). In a thread of
        its own, at LOW_NICE."""
        lower_this_thread()
        try:
            changed = self.geo is not None and shared is not None and self.geo.follow(shared)
            if changed:
                log.info("a GeoIP database changed; rebuilding the steering over it")
            if (changed or self.geo_changed()) and not self._abandoned.is_set():
                self.refresh_geo()
        except Exception:
            log.exception("rebuilding the steering over the new GeoIP database failed")

    def refresh_geo(self) -> bool:
        """Serve the steering over the GeoIP databases as they are now, with everything
        else as it was: the zones, the records, and every answer cached so far, in
        Python and in the native table (a steered key holds the matching rule and its
        scope, not the client's network, so it means the same answer under any
        database: `Steering.with_rule_maps`), but those of `closest` and `latency`
        records, whose location classes are numbered afresh over the new location map
        (a new version each). The rule maps and the location map are built here, in the
        caller's thread (their walks in C, without the GIL), and swapped in under the
        swap lock: queries are answered all along, and none meets an empty cache. True
        when a new steering serves; False when nothing steers or it is built over them
        already."""
        steering = self.snapshot.steering
        if self.geo is None or steering is None:
            return False
        with self._geo_lock:  # one rebuild at a time (a worker's come from messages)
            generation = self.geo.generation  # before the table, as Steering.with_geo
            if steering.geo_generation == generation:
                return False
            started = time.monotonic()
            maps = rule_maps_of(steering.records, geo_table(steering.records, self.geo))
            locations = self.geo.locations() if steering.locations is not None else None
            with self._swap_lock:
                current = self.snapshot.steering
                if current is None or current.geo_generation >= generation:
                    return False  # a reload or a configuration version built it meanwhile
                if current.records is not steering.records:  # changed meanwhile (rare)
                    maps = rule_maps_of(current.records, geo_table(current.records, self.geo))
                    locations = self.geo.locations() if current.locations is not None else None
                steering = current.with_rule_maps(maps, generation, locations)
                self.snapshot = self.snapshot.with_steering(steering)
            del current, steering  # the old maps go with the old snapshot, here
            _geomap.release_memory()
        log.info("geoip: steering of %d records serves the new database (rule maps%s built "
                 "in %.2f s; cached answers kept%s)", len(maps),
                 " and location map" if locations is not None else "",
                 time.monotonic() - started,
                 " but closest/latency ones" if locations is not None else "")
        return True

    def _serve_loaded(self, zones: list[Zone], kept: list[Zone], head: int) -> None:
        """A snapshot of freshly loaded (and kept) zones with their steering; `head` is
        the configuration version the files held when the load began."""
        every = [*zones, *kept]
        view = self.state_view
        records = self._records(every, [z.origin for z in kept])
        built = self.snapshot.replaced_by(zones, kept, steering=self._steering(records))
        self._swap_built(built, view)
        self.live = LiveConfig.from_loaded(self.settings.zones_dir, every, records, head)
        self._records_changed()

    def _records(self, zones: list[Zone], kept: list[dns.name.Name] | None = None
                 ) -> dict[tuple[str, str], SteeredRecord]:
        """The steered records of these zones' steering files.

        Problems are logged. A record left out for a problem keeps its last good version
        (or answers SERVFAIL when it has none); the zones in `kept` (their file failed)
        keep exactly the steering they had, and their steering files are not read."""
        load = load_steering_files(self.settings.zones_dir, zones, skip=kept or ())
        for problem in load.problems:
            log.error("%s", problem)
        previous = self.snapshot.steering.records if self.snapshot.steering else {}
        records, notes = settle(load, previous, zones, kept or ())
        for note in notes:
            log.warning("%s", note)
        for warning in geo_warnings(records, self.geo.types if self.geo else []):
            log.warning("%s", warning)
        return records

    def _steering(self, records: dict[tuple[str, str], SteeredRecord]) -> Steering | None:
        """Steering for these records with the state file and the geo databases."""
        if not records:
            return None
        view = self.state_view
        if self.settings.state is not None and not self.state_seeded:
            # Only the first load reads the file here: from then on the state service
            # watches it (and the checker and the store) and sends views to `apply`.
            self.state_seeded = True
            view = self._seed_state()
        log.info("steering %d records (state version %d)", len(records), view.version)
        return Steering.with_geo(records, view.health, view.rtt, view.version, self.geo,
                                 previous=self.snapshot.steering, overrides=view.overrides)

    def _seed_state(self) -> StateView:
        """The state file's first reading, so the first answers already know it. A broken
        file leaves no state (every member counts as up) until it is fixed; the state
        service, which reads it next, reports the problem and what it names."""
        assert self.settings.state is not None
        try:
            self.state_view = InProcessStore.from_file(self.settings.state).view()
        except StateFileError:
            pass
        return self.state_view


ZONE_LINES = 20  # up to this many zones, the first load logs a line per zone at INFO


def _log_loaded(zones: list[Zone], folder: Path) -> None:
    """A line per zone loaded (zone, serial, file), at INFO for a few zones. With
    thousands, one INFO line says how many, and each zone's goes to DEBUG: the Python
    logging of 5,000 lines took a tenth of the start, and the serials are also in the
    `gslb_zone_serial` metric and `gslb status`."""
    level = logging.INFO if len(zones) <= ZONE_LINES else logging.DEBUG
    if level == logging.DEBUG:
        log.info("loaded %d zones from %s (each zone's line at DEBUG)", len(zones), folder)
    if log.isEnabledFor(level):
        for zone in zones:
            log.log(level, "loaded zone %s serial %d from %s", zone.origin, zone.serial(),
                    zone.source)


def _log_problems(report: LoadReport) -> None:
    for warning in report.warnings:
        log.warning("%s", warning)
    for problem in report.problems:
        log.error("%s", problem)
