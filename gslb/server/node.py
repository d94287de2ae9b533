"""A DNS node: the `Server` that owns the current snapshot and the sockets that read it.

It applies state views (health, overrides, RTT) and configuration versions to the
snapshot, adopts new configurations by rebuilding only what changed, and serves UDP,
TCP and the metrics port. Loading and reloading the configuration is `Loading`'s job
(gslb/server/loading.py); the single-process main is gslb/server/single.py, the
supervisor of workers gslb/server/workers.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

from gslb.config.changes import Version
from gslb.config.filestore import FileStore
from gslb.config.follower import FOLDER, REDIS, Source
from gslb.config.live import LiveConfig, replay
from gslb.config.redisstore import RedisStore
from gslb.config.service import ConfigStore
from gslb.dns.handler import Responder
from gslb.dns.resolver import Zones
from gslb.server import fastpath, probe, rrl
from gslb.server.cookiefile import CookieSecrets
from gslb.server.listen import DNS_BACKLOG, Listener, Slot, bind_listeners, close_listeners
from gslb.server.loading import Loading
from gslb.server.tcp import ConnectionPool, TcpConnection
from gslb.server.telemetry import Telemetry
from gslb.server.udp import NativeUdpLoop, PythonUdpLoop, UdpAnswerer, UdpLoop
from gslb.settings import Settings
from gslb.snapshot import Snapshot
from gslb.state.store import StateView
from gslb.steering.front import with_placeholders

if TYPE_CHECKING:  # a node of workers only (gslb/server/workers.py): imported there
    from gslb.server.control import Outbox
    from gslb.server.served import ServedTable

log = logging.getLogger("gslb.server")
GIL_SWITCH_SECONDS = 0.0002  # sys.setswitchinterval in serving processes (default 0.005)


class Server(Loading):
    """Owns the current snapshot and the sockets that read it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The key makes /ready's own queries known to the responder (gslb/server/probe.py).
        # The cookie secrets are drawn or read before any worker forks: all share them.
        self.cookie_secrets = CookieSecrets(settings.cookie_secret)
        self.responder = Responder(replace(settings.responder_options(), probe_key=probe.KEY,
                                           cookies=self.cookie_secrets.cookies))
        self.native_udp = settings.udp != "python" and fastpath.available()
        # Response rate limiting (None: off). Made here, before any worker forks, so the
        # C limiter's shared buckets are one table for every worker of the node.
        self.limiter = rrl.make_limiter(settings.rrl, self.native_udp)
        self.udp_loops: list[UdpLoop] = []
        self.closers: list[asyncio.AbstractServer] = []
        self.telemetry = Telemetry(settings)
        self.telemetry.attach(self)
        self.snapshot = Snapshot(Zones())
        self.pool = ConnectionPool(settings.tcp_max_connections, settings.tcp_idle_timeout,
                                   settings.tcp_message_timeout, self.telemetry.taps)
        self._reloading = False
        self._reload_again = False
        self._abandoned = threading.Event()  # stopping: a reload still running swaps nothing
        self._swap_lock = threading.RLock()  # snapshot swaps from reloads, state and config
        self._geo_lock = threading.Lock()  # one steering rebuild for a new GeoIP file at a time
        self.geo = None
        if settings.geoip:
            from gslb.load.geoip import open_databases

            self.geo = open_databases(settings.geoip)
        self.state_view = StateView()  # the last state reading applied
        self.state_seeded = False  # the state file was read once at the first load
        # The configuration of record: the zones folder, or Redis once it holds one
        # (gslb/config/follower.py says the rule); `load` and every reload decide.
        self.config_store: ConfigStore = FileStore(settings.zones_dir)
        self.live = LiveConfig(settings.zones_dir)
        # With workers: the table of what each one serves, this worker's slot in it (-1:
        # none, as for the supervisor and the API process, which serve no DNS), and its
        # pipe to the supervisor (gslb/server/workers.py sets them).
        self.served: ServedTable | None = None
        self.slot = -1
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

    def apply_versions(self, versions: tuple[Version, ...] | list[Version],
                       parsed: dict | None = None) -> int | None:
        """Apply configuration versions in order, skipping those already served; the
        version after which one is missing (a gap: ask for it), else None. `parsed`:
        steering texts and records the sender already worked out
        (gslb.config.live.parsed_steering)."""
        with self._swap_lock:
            replayed = replay(self.live, versions, parsed)
            if replayed.failed is not None:
                number, exc = replayed.failed
                log.error("configuration version %d does not apply here (%s); still "
                          "serving version %d", number, exc, replayed.live.version)
            if replayed.live is not self.live:
                self._adopt(replayed.live)
        return replayed.gap

    def await_served(self, number: int, timeout: float) -> list[str]:
        """After a commit here: wait until every worker of this node serves version
        `number`, at most `timeout` seconds; the workers still behind. A single process
        serves what it committed already."""
        if self.served is None:
            return []
        from gslb.server.control import LookNow

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
        if self.served is not None and self.slot >= 0:  # a worker: say what it serves
            self.served.set(self.slot, live.version)
        log.info("configuration version %d: %d zone(s) rebuilt", live.version, len(changed))
        if steered:
            self._records_changed()

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
        from gslb.server.control import ConfigVersions, GeoChanged, StateUpdate

        if isinstance(change, ConfigVersions):
            return self.apply_versions(change.versions, change.parsed)
        if isinstance(change, StateUpdate):
            self.apply_state(change.view)
        elif isinstance(change, GeoChanged):
            # In a thread: the rule maps take a fraction of a second for a City database
            # (in C, without the GIL), and this process goes on answering meanwhile.
            threading.Thread(target=self.follow_geo_file, args=(change.table,), name="geoip",
                             daemon=True).start()
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

    async def start(self, slot: Slot | None = None) -> None:
        """Serve UDP and TCP on every listen address, and the metrics port. `slot`: the
        sockets a worker serves, bound and kept by the supervisor (gslb/server/listen.py);
        without one, this process binds its own.

        The metrics port and dnstap start first, so the first answer is counted and
        tapped; every socket is bound and TCP accepts before the first UDP answer goes
        out, so a client (or a readiness probe) that got one can fall back to TCP."""
        # The UDP loops run in threads of their own; whatever Python work this process
        # does meanwhile (applying a configuration version, a TCP answer) must give the
        # GIL back soon, so a waiting UDP loop answers within a fraction of a millisecond.
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
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
            return NativeUdpLoop(sock, answer, self._udp_table(), shared, self.limiter)
        return PythonUdpLoop(sock, answer, shared, self.limiter)

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
