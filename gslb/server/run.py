"""`gslb serve`: load zones, bind every listen address, answer until told to stop.

Signals: SIGTERM and SIGINT stop cleanly (sockets closed, exit 0); SIGHUP reloads the
zones off the event loop and swaps the snapshot in one assignment. A zone that fails
to load on reload is reported and its last good version keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
import time
from typing import Any, Callable, Coroutine

import dns.name

from gslb.dns.handler import Responder
from gslb.dns.resolver import Zones
from gslb.server import fastpath
from gslb.server.control import ConfigVersions, LookNow, Outbox, StateUpdate
from gslb.server.served import ServedTable
from gslb.server.listen import DNS_BACKLOG, Listener, Slot, bind_listeners, close_listeners
from gslb.server.tcp import ConnectionPool, TcpConnection
from gslb.server.telemetry import Telemetry
from gslb.server.udp import NativeUdpLoop, PythonUdpLoop, UdpAnswerer, UdpLoop
from gslb.settings import Settings
from gslb.dns.zone import Zone
from gslb.load.geoip import open_databases
from gslb.snapshot import Snapshot
from gslb.state.service import StateService
from gslb.state.store import InProcessStore, StateFileError, StateView
from gslb.config.filestore import FileStore
from gslb.config.changes import Version
from gslb.config.follower import FOLDER, REDIS, Follower, Source, redis_config
from gslb.config.redisstore import RedisStore
from gslb.config.rrsets import Invalid
from gslb.config.service import ConfigStore
from gslb.config.live import LiveConfig
from gslb.state.redis import ERRORS
from gslb.steering.front import Steering, with_placeholders
from gslb.steering.model import SteeredRecord
from gslb.load.steering import geo_warnings, load_steering_files
from gslb.load.settle import settle
from gslb.load.zonefile import LoadReport, load_zones

log = logging.getLogger("gslb.server")
GEO_CHECK_SECONDS = 10.0  # how often the GeoIP files are checked for a new version
RECORDS_CHECK_SECONDS = 0.1  # how often the steered records are compared (a pointer test)


class Server:
    """Owns the current snapshot and the sockets that read it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.responder = Responder(settings.responder_options())
        self.native_udp = settings.udp != "python" and fastpath.available()
        self.udp_loops: list[UdpLoop] = []
        self.closers: list[asyncio.AbstractServer] = []
        self.telemetry = Telemetry(settings)
        self.telemetry.attach(self)
        self.snapshot = Snapshot(Zones())
        self.pool = ConnectionPool(settings.tcp_max_connections, settings.tcp_idle_timeout,
                                   settings.tcp_message_timeout, self.telemetry.taps)
        self._reloading = False
        self._reload_again = False
        self._swap_lock = threading.RLock()  # snapshot swaps from reloads, state and config
        self.geo = open_databases(settings.geoip) if settings.geoip else None
        self.state_view = StateView()  # the last state reading applied
        self.state_seeded = False  # the state file was read once at the first load
        # The configuration of record: the zones folder, or Redis once it holds one
        # (gslb/config/follower.py says the rule); `load` and every reload decide.
        self.config_store: ConfigStore = FileStore(settings.zones_dir)
        self.live = LiveConfig(settings.zones_dir)
        # With workers: the table of what each one serves, this worker's slot in it, and
        # its pipe to the supervisor (gslb/server/workers.py sets them before forking).
        self.served: ServedTable | None = None
        self.slot = 0
        self.requests: Outbox | None = None
        self._requests_lock = threading.Lock()
        # Called (from any thread) after the steered records changed: the state service
        # then probes what they name now.
        self.records_changed: Callable[[], None] | None = None

    @property
    def source(self) -> Source:
        """Where the configuration being served came from, and its version."""
        return Source(REDIS if isinstance(self.config_store, RedisStore) else FOLDER,
                      self.live.version)

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @snapshot.setter
    def snapshot(self, snapshot: Snapshot) -> None:
        """Serve `snapshot` from now on: one reference swap for the Python paths, and
        one for each native UDP loop's table (given to the snapshot's answer cache
        first, so everything rendered for it lands in that table)."""
        store = snapshot.answers.native
        if self.native_udp and store is None:
            fastpath.attach(snapshot, self.responder.options)
        elif isinstance(store, fastpath.TableStore):
            store.follow(snapshot.steering)  # a state change: the same cache, new versions
        self._snapshot = snapshot
        self._give_tables()

    def _udp_table(self) -> Any:
        """The native table the UDP loops answer from: the snapshot's, or None (every
        query through Python) while the query log or dnstap wants to see every query."""
        if self.telemetry.taps.active:
            return None
        return _native_table(self._snapshot)

    def _give_tables(self) -> None:
        table = self._udp_table()
        for loop in self.udp_loops:
            loop.set_table(table)

    def set_query_log(self, on: bool) -> None:
        """SIGUSR1/SIGUSR2: the query log on or off (and the native table with it)."""
        self.telemetry.set_query_log(on)
        self._give_tables()

    def current(self) -> Snapshot:
        return self._snapshot

    def load(self) -> bool:
        """Initial load: serve what is valid, report the rest; False when nothing loaded."""
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
        try:
            return redis_config(self.settings.redis)
        except (*ERRORS, Invalid) as exc:  # redis down, or a reply we cannot read
            log.error("cannot load the configuration from Redis (%s): %s",
                      RedisStore(self.settings.redis).url, exc)
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
        report = load_zones(self.settings.zones_dir)
        _log_problems(report)
        self._serve_loaded(report.zones, [], head)
        self.telemetry.loaded(bool(report.zones), len(report.problems))
        if self.config_store.recover(self.live):
            log.warning("finished configuration version %d, which a crash interrupted",
                        self.config_store.head())
            return self._load_files()
        self._prewarm()
        for zone in report.zones:
            log.info("loaded zone %s serial %d from %s", zone.origin, zone.serial(), zone.source)
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
                if not self._reload_again:
                    break
        finally:
            self._reloading = False

    async def _reload_once(self) -> None:
        """`reload_zones` in a daemon thread: a SIGTERM meanwhile stops the server at once
        (the loop's default executor would make the exit wait for the whole load)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finished() -> None:
            if not done.done():
                done.set_result(None)

        def work() -> None:
            try:
                self.reload_zones()
            except Exception:
                log.exception("reload failed; still serving version %d", self.snapshot.version)
            finally:
                try:
                    loop.call_soon_threadsafe(finished)
                except RuntimeError:  # the loop closed: the server is stopping anyway
                    pass

        threading.Thread(target=work, name="reload", daemon=True).start()
        await done

    def reload_zones(self) -> bool:
        """Re-read every zone; keep the last good version of broken ones.

        Synchronous: the async `reload` and the worker supervisor run it in a thread of
        its own, so a stop request is never held up by it. True when a new snapshot was
        swapped in; False when the load failed or loaded nothing, in which case the
        current snapshot keeps serving.
        """
        if self.geo is not None:
            self.geo.reload_if_changed()  # a SIGHUP also picks up a new GeoIP database
        live = self._redis_config()
        if live is not None:
            return self._serve_redis(live)
        if isinstance(self.config_store, RedisStore):
            log.error("reload: Redis gives no configuration; still serving version %d",
                      self.live.version)
            return False
        try:
            head = self.config_store.written()
            report = load_zones(self.settings.zones_dir)
        except Exception:
            log.exception("reload failed; still serving version %d", self.snapshot.version)
            self.telemetry.loaded(False, 0)
            return False
        return self._swap_in(report, head)

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
        from it, so they all start with it)."""
        if self.settings.prewarm:
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
        log.info("a GeoIP database changed; reloading")
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

    def _swap_built(self, built: Snapshot, view: StateView) -> None:
        """Serve `built`, a snapshot made off the event loop (a reload thread) from the
        state reading `view`. A state change applied while it was built is applied to it
        too, and the swap and `apply` exclude each other, so neither a reload nor a state
        change is ever undone by the other."""
        with self._swap_lock:
            latest = self.state_view
            if latest is not view:
                built = built.with_state(latest.health, latest.rtt, latest.overrides,
                                         latest.version)
            self.snapshot = built

    def adopt(self, live: LiveConfig) -> None:
        """Serve a new configuration that differs from the current one by a few changes:
        only the zones whose data or steered records changed are rebuilt (one owner's
        blob each, see `Zone.with_owner`), the others are reused as they are, and the
        steering is rebuilt only when a steered record changed. The new snapshot starts
        with an empty answer cache, so no answer of the old data survives. A version
        not newer than the one served is ignored (it reached us by another path)."""
        with self._swap_lock:  # read the current snapshot and replace it as one step
            if live.version > self.live.version:
                self._adopt(live)

    def apply_versions(self, versions: tuple[Version, ...] | list[Version]) -> int | None:
        """Apply configuration versions in order, skipping those already served; the
        version after which one is missing (a gap: ask for it), else None."""
        gap = None
        with self._swap_lock:
            live = self.live
            for version in versions:
                if version.number <= live.version:
                    continue
                if version.number != live.version + 1:
                    gap = live.version
                    break
                try:
                    live = live.apply(version.changes, version.number)
                except Invalid as exc:
                    log.error("configuration version %d does not apply here (%s); still "
                              "serving version %d", version.number, exc, live.version)
                    break
            if live is not self.live:
                self._adopt(live)
        return gap

    def await_served(self, number: int, timeout: float) -> list[str]:
        """After a commit here: wait until every worker of this node serves version
        `number`, at most `timeout` seconds; the workers still behind. A single process
        serves what it committed already."""
        if self.served is None:
            return []
        self.ask(LookNow())
        return [f"worker {slot}" for slot in self.served.wait(number, timeout)]

    def ask(self, message: object) -> None:
        """Send a message up to the supervisor (a worker; nothing in a single process)."""
        if self.requests is not None:
            with self._requests_lock:
                self.requests.send(message)

    def _records_changed(self) -> None:
        if self.records_changed is not None:
            self.records_changed()

    def _adopt(self, live: LiveConfig) -> None:
        old = self.live
        origins = set(old.zones) | set(live.zones)
        steered = {o for o in origins if old.records.get(o) is not live.records.get(o)}
        changed = steered | {o for o in origins if old.zones.get(o) is not live.zones.get(o)}
        steering = self.snapshot.steering
        records = live.all_records()
        if steered:
            steering = self._steering(records)
        served = self.snapshot.zones.by_origin
        zones = [z for z in self.snapshot.zones if z.origin not in changed]
        for origin in changed:
            zone = live.zones.get(origin)
            if zone is None:
                continue
            base, keys = live.pending.get(origin, (None, frozenset()))
            if (origin not in steered and base is old.zones.get(origin) and origin in served
                    and not (steering is not None and any(steering.covers(k) for k in keys))):
                # only these owners changed, none of them steered: patch what is served
                zones.append(served[origin].with_records({k: zone.records.get(k) for k in keys}))
            else:
                zones.append(with_placeholders(zone, records) if records else zone)
        live.pending.clear()  # from here on, changes are relative to what is now served
        self.snapshot = Snapshot(Zones(zones), self.snapshot.version + 1,
                                 self.snapshot.answers.capacity, steering,
                                 loaded=tuple(live.zones.values()))
        self.live = live
        if self.served is not None:
            self.served.set(self.slot, live.version)
        log.info("configuration version %d: %d zone(s) rebuilt", live.version, len(changed))
        if steered:
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

    def steered_records(self) -> dict:
        """The steered records being served, (owner, type) -> SteeredRecord: what the
        state service probes."""
        steering = self.snapshot.steering
        return dict(steering.records) if steering is not None else {}

    def apply(self, change: object) -> int | None:
        """Apply one control message (gslb/server/control.py) to this process's state:
        build the next snapshot view from the current one and swap it in. The zones, the
        workers and their connections stay; so do the cached static answers (a state
        update) or those of the zones a configuration version leaves alone. For
        configuration versions: the version after which one is missing, else None."""
        if isinstance(change, ConfigVersions):
            return self.apply_versions(change.versions)
        if isinstance(change, StateUpdate):
            self.apply_state(change.view)
        else:
            log.error("unknown control message %s ignored", type(change).__name__)
        return None

    def apply_state(self, view: StateView) -> None:
        """Serve a new state view (health, overrides, RTT) with the same zones."""
        self.telemetry.state_applied()
        with self._swap_lock:
            self.state_view = view
            current = self.snapshot
            self.snapshot = current.with_state(view.health, view.rtt, view.overrides,
                                               view.version)
        if self.snapshot is not current:
            log.debug("state version %d applied", view.version)

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

    async def start(self, slot: Slot | None = None) -> None:
        """Serve UDP and TCP on every listen address, and the metrics port. `slot`: the
        sockets a worker serves, bound and kept by the supervisor (gslb/server/listen.py);
        without one, this process binds its own.

        The metrics port and dnstap start first, so the first answer is counted and
        tapped; every socket is bound and TCP accepts before the first UDP answer goes
        out, so a client (or a readiness probe) that got one can fall back to TCP."""
        shared = slot is not None
        listeners = slot.dns if slot is not None else bind_listeners(self.settings, False)
        try:
            await self.telemetry.start(self, slot.metrics if slot is not None else None)
            await self._serve_tcp(listeners)
        except BaseException:
            if not shared:
                close_listeners(listeners)
            raise
        for listener in listeners:
            udp = self._udp_loop(listener.udp, shared)
            self.udp_loops.append(udp)
            udp.start()
        for address in self.settings.listen:
            log.info("listening on %s (udp, tcp)", address)

    def _udp_loop(self, sock: socket.socket, shared: bool) -> UdpLoop:
        answer = UdpAnswerer(self.responder.options, self.responder.labels, self.current,
                             self.telemetry.taps, sock.getsockname())
        if self.native_udp:
            return NativeUdpLoop(sock, answer, self._udp_table(), shared)
        return PythonUdpLoop(sock, answer, shared)

    async def _serve_tcp(self, listeners: list[Listener]) -> None:
        loop = asyncio.get_running_loop()
        for listener in listeners:
            server = await loop.create_server(
                lambda: TcpConnection(self.responder, self.current, self.pool),
                sock=listener.tcp, backlog=DNS_BACKLOG,
            )
            self.closers.append(server)

    def udp_path(self) -> str:
        """Which UDP loop serves, for the start-up log."""
        if self.native_udp:
            return "native (C extension: recvmmsg/sendmmsg, cached answers served in C)"
        if self.settings.udp == "python":
            return "python (blocking loop; --udp python)"
        return "python (blocking loop; the native extension is not available)"

    async def stop(self, grace: float = 0.0) -> None:
        """Stop accepting and reading, then close every connection; with `grace`, give
        connections in the middle of a query, and metrics requests, up to that long to
        get their answers (a worker being replaced: see ConnectionPool.settle)."""
        for closer in self.closers:
            closer.close()
        self.telemetry.stop_accepting()
        for udp in self.udp_loops:
            udp.stop()
        self.udp_loops = []
        if grace:
            await asyncio.gather(self.pool.settle(grace), self.telemetry.settle(grace))
        await self.telemetry.stop()
        for conn in list(self.pool.connections):
            conn.close()
        for closer in self.closers:
            await closer.wait_closed()


def _native_table(snapshot: Snapshot) -> Any:
    store = snapshot.answers.native
    return store.table if isinstance(store, fastpath.TableStore) else None


def _log_problems(report: LoadReport) -> None:
    for warning in report.warnings:
        log.warning("%s", warning)
    for problem in report.problems:
        log.error("%s", problem)


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run `main` to completion on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


ApiFactory = Callable[["Server", "socket.socket | None"], Any]
"""Makes the REST API beside DNS (`--api`): the CLI passes api.serve.EmbeddedApi, so the
server itself never imports the control plane. Called with the server and the API's
listening socket when a supervisor bound it; returns an object with start() and stop()."""


async def serve(settings: Settings, api_factory: ApiFactory | None = None) -> int:
    """Run until SIGTERM or SIGINT; the process exit code."""
    server = Server(settings)
    if not server.load():
        log.error("no zone could be loaded from %s; not starting", settings.zones_dir)
        return 1
    server.telemetry.open_directory()
    try:
        return await _serve(server, api_factory)
    finally:
        server.telemetry.close_directory()


async def _serve(server: Server, api_factory: ApiFactory | None) -> int:
    service = StateService(server.settings.state, lambda view: server.apply_state(view),
                           server.settings.store, seed=server.state_view)
    service.set_records(server.steered_records())
    await service.prime()
    loop = asyncio.get_running_loop()

    def records_changed() -> None:  # from any thread: a reload's, an API request's
        loop.call_soon_threadsafe(lambda: service.set_records(server.steered_records()))

    server.records_changed = records_changed
    api = None
    try:
        # The API's socket listens before DNS answers: once the zones answer SOA (what
        # readiness means), the API takes connections too.
        api = start_api(server, api_factory)
        await server.start()
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        if api is not None:
            await api.stop()
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
            await asyncio.sleep(GEO_CHECK_SECONDS)
            if server.geo_changed():
                on_hup()

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
    for task in watchers:
        task.cancel()
    if heartbeat is not None:
        heartbeat.cancel()
    log.info("stopping")
    if api is not None:
        await api.stop()
    await service.close()
    await server.stop()
    return 0


def follower_of(server: Server) -> Follower | None:
    """The node's follower of the configuration of record, when another process may
    change it (`--api`: the API of any worker; `--redis`: Redis); None otherwise (the
    folder changes by hand, and SIGHUP reloads it)."""
    settings = server.settings
    if not settings.config_follows_store:
        return None
    return Follower(settings.zones_dir, settings.redis, server.source)


def start_api(server: Server, factory: ApiFactory | None,
              sock: socket.socket | None = None) -> Any:
    """The REST API beside DNS when `--api` asks for it (and the CLI gave a factory);
    None otherwise."""
    if server.settings.api is None or factory is None:
        return None
    api = factory(server, sock)
    api.start()
    log.info("api: listening on http://%s", server.settings.api)
    return api
