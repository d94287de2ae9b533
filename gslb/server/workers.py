"""`gslb serve --workers N`: one supervisor, N forked workers sharing one port.

The supervisor loads the zones once, then forks the workers, so every worker starts
with the same snapshot in copy-on-write memory. The supervisor binds one set of UDP and
TCP sockets per worker slot, with SO_REUSEPORT so the kernel spreads queries across the
slots, and keeps them open for as long as it runs: each worker serves its slot's sockets.

A reload (SIGHUP) is one load in the supervisor followed by a new generation of
workers forked from the new state; the old generation is stopped once the new one is
listening, so no worker ever re-reads files and all of them change together. A new
worker serves the same sockets as the one it replaces, so no socket ever leaves the
SO_REUSEPORT group: a query queued on it when the old worker stops reading is read by the
new one (a closed socket would lose it, and the kernel would route new queries to it
until it closed), and a TCP connection waiting in the accept queue is accepted by the
new worker. A reload
that changes nothing (the load failed, or loaded no zone) forks nothing. A worker that
dies unexpectedly is replaced. SIGTERM/SIGINT stop every worker, then exit 0; workers
also stop by themselves if the supervisor dies (PR_SET_PDEATHSIG).

The supervisor is single-threaded and never runs an event loop: it polls for signals
with sigtimedwait between short selects on its pipes, so forking is always safe.

Live changes reload nothing either. The state process (gslb/server/stateproc.py) is the
node's one follower: it sends each new state view (health, overrides, RTT) and each new
configuration version to the supervisor, which applies it to its own snapshot (so a
worker forked later starts current) and relays it to every worker over its control
channel (gslb/server/control.py); each worker swaps its snapshot within milliseconds and
records the version it serves in the shared table (gslb/server/served.py). Workers
never read a store. A worker whose API committed a version asks the supervisor to have
it followed at once (`LookNow`); one that sees a gap in version numbers asks for what it
missed (`Missed`), which the supervisor resends from the versions it keeps.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import select
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Iterable

from gslb.config.changes import Version
from gslb.config.live import parsed_steering
from gslb.health.agent import probes_of
from gslb.server.control import (ConfigSource, ConfigVersions, GeoChanged, Inbox, LookNow, Missed,
                                 Outbox, StateUpdate, SteeringTargets, channel)
from gslb.server.fork import SUPERVISOR_SIGNALS, become_child
from gslb.server.listen import Slot, bind_http, bind_slot, check_listen
from gslb.server.loading import at_low_priority
from gslb.server.node import Server
from gslb.server.apiproc import ApiFactory, fork_api_process
from gslb.server.single import run_loop
from gslb.server.served import VACANT, ServedTable
from gslb.server.stateproc import StateProcess, fork_state_process
from gslb.state.service import PRIME_SECONDS
from gslb.settings import Settings

log = logging.getLogger("gslb.workers")
SIGNALS = SUPERVISOR_SIGNALS
QUERY_LOG_SIGNALS: dict[int, bool] = {signal.SIGUSR1: True, signal.SIGUSR2: False}
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
STOP_GRACE = 1.0  # longest a stopping worker waits for TCP queries and scrapes in flight
RESPAWN_INTERVAL = 1.0  # at most one replacement round per second
PUMP_SECONDS = 0.05  # longest wait on the pipes between two looks at pending signals
RECENT_VERSIONS = 256  # configuration versions kept to resend to a worker that missed some
# Workers get configuration versions at most this often, in batches: building the next
# snapshot holds a worker's GIL for a few milliseconds, so a stream of writes must not
# make it rebuild for each one (the answers it delays are bounded by this rate, however
# fast the API is driven). A write through the API waits for it (read your writes).
FANOUT_SECONDS = 0.25


@dataclass
class Worker:
    pid: int
    generation: int
    control: Outbox | None = None  # the worker's control channel (None once it is gone)
    slot: int = 0  # which of the supervisor's socket sets it serves
    requests: Inbox | None = None  # what it asks of the supervisor (LookNow, Missed)

    def close(self) -> None:
        if self.control is not None:
            self.control.close()
        if self.requests is not None:
            self.requests.close()
            self.requests = None


def supervise(settings: Settings, api_factory: ApiFactory | None = None) -> int:
    """Run the supervisor until SIGTERM/SIGINT; the process exit code. `api_factory`
    makes the REST API (`--api`; see gslb.server.apiproc.ApiFactory), served by the API
    process (gslb/server/apiproc.py), never by a worker."""
    # A SIGHUP during the first load must not kill us; SIGTERM/SIGINT still may.
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS - {signal.SIGTERM, signal.SIGINT})
    server = Server(settings)
    if not server.load():
        log.error("no zone could be loaded from %s; not starting", settings.zones_dir)
        return 1
    try:
        check_listen(settings)
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        return 1
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    server.telemetry.as_supervisor()
    server.telemetry.open_directory()
    server.served = ServedTable(settings.workers)
    slots: list[Slot] = []
    api_sock = None
    try:
        for _ in range(settings.workers):
            slots.append(bind_slot(settings))
        if settings.api is not None and api_factory is not None:
            api_sock = bind_http(settings.api, reuse_port=False)
    except OSError as exc:
        for slot in slots:
            slot.close()
        log.error("cannot listen: %s", exc)
        return 1
    supervisor = Supervisor(server, slots, api_factory, api_sock)
    try:
        return supervisor.run()
    finally:
        _stop(supervisor.workers)  # empty unless the supervisor itself failed
        supervisor.stop_api()
        supervisor.stop_state()
        server.telemetry.close_directory()
        for slot in slots:
            slot.close()
        if api_sock is not None:
            api_sock.close()


class Supervisor:
    def __init__(self, server: Server, slots: list[Slot],
                 api_factory: ApiFactory | None = None, api_sock: socket.socket | None = None
                 ) -> None:
        self.server = server
        self.api_factory = api_factory
        self.api_sock = api_sock  # the API's listening socket, served by the API process
        self.api: Worker | None = None  # the API process: no slot, fed like a worker
        self.next_api_respawn = 0.0
        self.recent: deque[Version] = deque(maxlen=RECENT_VERSIONS)
        self.unsent: list[Version] = []  # applied here, not yet fanned out
        self.unsent_from = server.live  # the configuration before the first unsent version
        self.next_fanout = 0.0
        self.slots = slots  # one set of listen sockets per worker, for as long as we run
        self.count = len(slots)
        self.generation = 1
        self.geo_checked = time.monotonic()
        self.workers: list[Worker] = []
        self.next_respawn = 0.0
        self.previous = server.snapshot
        # A SIGTERM/SIGINT that a load's signal wait took (a reload can start outside the
        # main loop: switch_source), for the main loop to act on.
        self.stop_requested = False
        self.state: StateProcess | None = None
        self.next_state_respawn = 0.0

    def run(self) -> int:
        self.keep_state_up()
        self.await_first_state()
        self.keep_api_up()  # its socket listens already; it takes connections from now on
        workers = self.spawn(range(self.count), self.generation)
        if workers is None:
            log.error("workers failed to start; not serving")
            return 1
        self.workers = workers
        self.server.telemetry.write()
        log.info("udp: %s", self.server.udp_path())
        log.info("ready: serving %d zones with %d workers",
                 len(self.server.snapshot.zones), len(workers))
        while True:
            self.pump(PUMP_SECONDS)
            info = signal.sigtimedwait(SIGNALS, 0)
            signum = info.si_signo if info else None
            if signum in (signal.SIGTERM, signal.SIGINT) or self.stop_requested:
                return self.stop()
            if signum in QUERY_LOG_SIGNALS:
                self.query_log(signum)
            due = self._files_due()
            if signum == signal.SIGHUP or due == "reload":
                if not self.reload():
                    return self.stop()
            elif due == "geo":
                self.follow_geo()
            self.fan_out()
            if not self.keep_up():
                return 1
            self.keep_state_up()
            self.keep_api_up()

    def await_first_state(self) -> None:
        """Warm start: workers fork from the state process's first view (the shared
        last known state, read before serving), not from an empty one; bounded."""
        deadline = time.monotonic() + PRIME_SECONDS + 1
        while self.state is not None and time.monotonic() < deadline:
            if self.pump(PUMP_SECONDS) or self.state.updates.eof:
                return

    def pump(self, timeout: float) -> int:
        """Wait up to `timeout` for messages from the state process and the workers;
        apply and relay each, and push out whatever the pipes did not take yet. How many
        messages came from the state process."""
        readers = [self.state.updates.fd] if self.state is not None and not self.state.updates.eof else []
        asking = [w for w in self.asking() if w.requests is not None and not w.requests.eof]
        readers += [w.requests.fd for w in asking if w.requests is not None]
        outboxes = [w.control for w in self.asking() if w.control is not None and w.control.wants_write]
        if self.state is not None and self.state.targets.wants_write:
            outboxes.append(self.state.targets)
        try:
            readable, writable, _ = select.select(readers, [o.fd for o in outboxes], [], timeout)
        except InterruptedError:
            return 0
        for outbox in outboxes:
            if outbox.fd in writable:
                outbox.flush()
        for worker in asking:
            if worker.requests is not None and worker.requests.fd in readable:
                for request in worker.requests.receive():
                    self.answer(worker, request)
        state = self.state
        messages = (state.updates.receive()
                    if state is not None and state.updates.fd in readable else [])
        for message in messages:
            if isinstance(message, StateUpdate):
                self.server.apply(message)
                self.broadcast(message)
            elif isinstance(message, ConfigVersions):
                self.apply_versions(message.versions)
            elif isinstance(message, ConfigSource):
                self.switch_source(message.reason)
        return len(messages)

    def apply_versions(self, versions: tuple[Version, ...]) -> None:
        """Configuration versions from the follower: apply them here, keep them for
        resending, fan them out, and have the state process probe what the steered
        records now name."""
        before = self.server.snapshot.steering
        if not self.unsent:
            self.unsent_from = self.server.live
        gap = self.server.apply_versions(versions)
        if gap is not None and self.state is not None:
            self.state.targets.send(LookNow(after=gap))
        applied = tuple(v for v in versions if v.number <= self.server.live.version)
        if not applied:
            return
        self.recent.extend(applied)
        self.unsent.extend(applied)
        self.fan_out()
        after = self.server.snapshot.steering
        if (after.records if after else None) is not (before.records if before else None):
            self._send_targets()

    def fan_out(self) -> None:
        """Send the versions applied here to every worker and the API process, at most
        once per FANOUT_SECONDS, with their steering parsed once, here."""
        now = time.monotonic()
        if not self.unsent or now < self.next_fanout:
            return
        versions, self.unsent = tuple(self.unsent), []
        self.next_fanout = now + FANOUT_SECONDS
        self.broadcast(ConfigVersions(versions, parsed_steering(self.unsent_from, self.server.live,
                                                                versions)))

    def answer(self, worker: Worker, request: object) -> None:
        """A worker's request: follow the store now, or resend versions it missed (a
        worker beyond what we keep is replaced: a fresh fork starts current)."""
        if isinstance(request, LookNow):
            if self.state is not None:
                self.state.targets.send(request)
        elif isinstance(request, Missed):
            versions = tuple(v for v in self.recent if v.number > request.after)
            if versions and versions[0].number == request.after + 1 and worker.control is not None:
                worker.control.send(ConfigVersions(versions))
            elif versions:
                log.error("worker %d missed configuration versions no longer kept; "
                          "replacing it", worker.pid)
                _kill(worker.pid, signal.SIGTERM)

    def switch_source(self, reason: str) -> None:
        """The follower found that the configuration must be loaded whole (Redis got
        one): reload (the load decides the source) and fork a new generation."""
        if self.stop_requested:
            return
        log.info("%s: loading the configuration from it", reason)
        self.reload()
        if self.state is not None:
            self.state.targets.send(ConfigSource(reason, self.server.source))

    def _send_targets(self) -> None:
        if self.state is not None:
            self.state.targets.send(SteeringTargets(self.server.steered_records()))

    def asking(self) -> list[Worker]:
        """Every process that gets control messages: the workers and the API process."""
        return self.workers + ([self.api] if self.api is not None else [])

    def broadcast(self, message: object) -> None:
        """Send one control message to every worker and the API process (see
        gslb/server/control.py)."""
        for worker in self.asking():
            if worker.control is not None:
                worker.control.send(message)

    def parent_fds(self) -> list[int]:
        """The supervisor's ends of every pipe, and the memory file of the GeoIP table it
        shares: a new child closes them all (the file would outlive its next one)."""
        fds = [w.control.fd for w in self.workers if w.control is not None and not w.control.closed]
        fds += [w.requests.fd for w in self.workers if w.requests is not None]
        if self.api is not None and self.api.control is not None and self.api.requests is not None:
            fds += [self.api.control.fd, self.api.requests.fd]
        geo = self.server.geo
        if geo is not None and geo.shared_fd is not None:
            fds.append(geo.shared_fd)
        return fds + (self.state.fds() if self.state is not None else [])

    def listen_fds(self) -> list[int]:
        """Every slot's sockets, which only workers serve, and the API's."""
        api = [self.api_sock.fileno()] if self.api_sock is not None else []
        return [sock.fileno() for slot in self.slots for sock in slot.sockets()] + api

    def spawn(self, slots: Iterable[int], generation: int) -> list[Worker] | None:
        api = [self.api_sock.fileno()] if self.api_sock is not None else []
        return _spawn(self.server, self.slots, list(slots), generation,
                      self.parent_fds() + api)

    def state_needed(self) -> bool:
        """A state process runs only when there is something to watch: checks to probe,
        a state file, a store, or a configuration another process may change (the
        follower runs there)."""
        settings = self.server.settings
        return bool(probes_of(self.server.steered_records()) or settings.state is not None
                    or settings.store.redis is not None or settings.config_follows_store)

    def keep_state_up(self) -> None:
        """Start the state process when it is needed; replace one that died (at most
        once a second), seeded with the last view the supervisor applied."""
        if self.state is not None and _exit_status(self.state.pid) is None:
            return
        if self.state is None and not self.state_needed():
            return
        if time.monotonic() < self.next_state_respawn:
            return
        self.next_state_respawn = time.monotonic() + RESPAWN_INTERVAL
        if self.state is not None:
            log.error("state process %d is gone; starting another", self.state.pid)
            self.state.updates.close()
            self.state.targets.close()
        self.state = None
        self.state = fork_state_process(self.server, self.parent_fds() + self.listen_fds())

    def keep_api_up(self, replace: bool = False) -> None:
        """With --api: start the API process, replace one that died (at most once a
        second), or, with `replace`, one that serves a configuration loaded before a
        reload (the new one forks from the supervisor's current state)."""
        if self.api_sock is None or self.api_factory is None:
            return
        if self.api is not None and not replace:
            if _exit_status(self.api.pid) is None or time.monotonic() < self.next_api_respawn:
                return
            log.error("API process %d is gone; starting another", self.api.pid)
        self.stop_api()
        self.next_api_respawn = time.monotonic() + RESPAWN_INTERVAL
        dns = [sock.fileno() for slot in self.slots for sock in slot.sockets()]
        pid, control, requests = fork_api_process(self.server, self.api_sock, self.api_factory,
                                                  self.parent_fds() + dns)
        self.api = Worker(pid, self.generation, control, -1, requests)

    def stop_api(self) -> None:
        if self.api is not None:
            api, self.api = self.api, None
            _stop([api])

    def stop_state(self) -> None:
        if self.state is not None:
            state, self.state = self.state, None
            _stop([Worker(state.pid, 0)])
            state.updates.close()
            state.targets.close()

    def stop(self) -> int:
        log.info("stopping %d workers", len(self.workers))
        workers, self.workers = self.workers, []
        _stop(workers)
        return 0

    def query_log(self, signum: int) -> None:
        """SIGUSR1/SIGUSR2: switch the query log in every worker, and in the supervisor
        so workers forked later start the same way."""
        self.server.telemetry.set_query_log(QUERY_LOG_SIGNALS[signum])
        for worker in self.workers:
            _kill(worker.pid, signum)

    def _files_due(self) -> str | None:
        """Every --geoip-check-interval: "reload" when the cookie secrets changed (workers take
        new secrets by being forked), "geo" when a GeoIP database changed (and opened
        fine: it is walked here); else None."""
        now = time.monotonic()
        if now - self.geo_checked < self.server.settings.geoip_check_interval:
            return None
        self.geo_checked = now
        if self.server.cookie_secrets.reload_if_changed():
            return "reload"
        # the walk of a changed file, at LOW_NICE: the workers' loops come first
        return "geo" if at_low_priority(self.server.geo_changed) else None

    def follow_geo(self) -> None:
        """A GeoIP database changed and was walked here: every worker and the API
        process re-open it, map the table walked here (one copy for the whole node, in
        a memory file) and rebuild their steering in place, keeping their zones and
        cached answers (a new generation would start with empty caches, and answer
        from Python until they fill); then the supervisor does, for the workers forked
        later."""
        geo = self.server.geo
        shared = at_low_priority(geo.share) if geo is not None else None  # a memory file
        self.broadcast(GeoChanged(shared))
        try:
            at_low_priority(self.server.refresh_geo)
        except Exception:  # the workers serve on; a replacement forks from the old maps
            log.exception("rebuilding the steering over the new GeoIP database failed")

    def reload(self) -> bool:
        """Load in the supervisor, then swap the whole generation of workers; False when
        SIGTERM or SIGINT came during the load (the caller stops at once). A SIGHUP
        during the load starts one more load after it."""
        while True:
            loaded = self._load()
            if loaded is None:
                return False
            again, changed = loaded
            if changed:
                self._new_generation()
            else:
                self.server.telemetry.write()  # the failed reload counts
            if not again:
                return True

    def _load(self) -> tuple[bool, bool] | None:
        """`reload_zones` in a thread while this one keeps reading signals, so a stop
        request is not held up by a large zone. None on SIGTERM/SIGINT, else (another
        SIGHUP came, a new snapshot was made). No fork happens while the thread runs."""
        result: list[bool] = []
        self.previous = self.server.snapshot  # what the workers serve until the swap

        def work() -> None:
            try:
                result.append(self.server.reload_zones())
            except Exception:
                log.exception("reload failed; still serving version %d", self.server.snapshot.version)

        thread = threading.Thread(target=work, name="reload", daemon=True)
        thread.start()
        again = False
        while thread.is_alive():
            info = signal.sigtimedwait(SIGNALS, 0.05)
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                log.info("stop requested during a reload; not waiting for it")
                self.server.abandon_reloads()
                self.stop_requested = True
                return None
            if info is not None and info.si_signo in QUERY_LOG_SIGNALS:
                self.query_log(info.si_signo)
            again = again or (info is not None and info.si_signo == signal.SIGHUP)
        thread.join()
        return again, bool(result and result[0])

    def _new_generation(self) -> None:
        """Fork workers from the supervisor's new snapshot and stop the old ones."""
        previous = self.previous
        fresh = self.spawn(range(self.count), self.generation + 1)
        if fresh is None:
            # Keep the supervisor's snapshot equal to what the workers serve, so that a
            # replacement forked later does not serve a different version.
            self.server.snapshot = previous
            log.error("workers for the reloaded zones failed to start; the previous ones "
                      "keep serving version %d", previous.version)
            return
        old, self.workers = self.workers, fresh
        self.generation += 1
        _stop(old)
        self.server.telemetry.fold_dead()  # writes the supervisor's report too
        self._send_targets()
        self.keep_state_up()
        self.keep_api_up(replace=True)
        log.info("reload done: generation %d (%d workers) serving version %d",
                 self.generation, len(fresh), self.server.snapshot.version)

    def keep_up(self) -> bool:
        """Reap dead workers and start replacements; False when none is left to serve."""
        alive = []
        for worker in self.workers:
            status = _exit_status(worker.pid)
            if status is None:
                alive.append(worker)
            else:
                log.error("worker %d %s; starting a replacement", worker.pid, status)
                worker.close()
                if self.server.served is not None:
                    self.server.served.set(worker.slot, VACANT)
        if len(alive) < len(self.workers):
            self.server.telemetry.fold_dead()
        self.workers = alive
        missing = sorted(set(range(self.count)) - {worker.slot for worker in alive})
        if not missing or time.monotonic() < self.next_respawn:
            return True
        self.next_respawn = time.monotonic() + RESPAWN_INTERVAL
        fresh = self.spawn(missing, self.generation)
        if fresh is not None:
            self.workers.extend(fresh)
            log.info("%d worker(s) replaced; %d serving", len(fresh), len(self.workers))
            return True
        if not self.workers:
            log.error("no worker left and none could be started; exiting")
            return False
        log.error("replacement failed; %d workers serving, will retry", len(self.workers))
        return True


def _spawn(server: Server, slots: list[Slot], which: list[int], generation: int,
           inherited: list[int] | tuple[int, ...] = ()) -> list[Worker] | None:
    """Fork a worker for each slot in `which`, serving that slot's sockets, and wait
    until each listens; None (and none left) on failure.

    Each gets a control channel; `inherited` are the supervisor's other pipe ends, which
    the children close, as they close the other slots' sockets."""
    # Keep the cyclic collector from touching (and so copying) the shared snapshot.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    parent = os.getpid()
    started: list[tuple[Worker, int]] = []
    for slot in which:
        read_fd, write_fd = os.pipe()
        control_in, control_out = channel()
        requests_in, requests_out = channel()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                siblings = [fd for w, ready in started
                            for fd in (ready, w.control.fd if w.control else -1,
                                       w.requests.fd if w.requests else -1)]
                if become_child(parent, [read_fd, control_out.fd, requests_in.fd, *siblings,
                                         *inherited], "gslb-worker"):
                    for other in slots[:slot] + slots[slot + 1:]:
                        other.close()
                    server.slot = slot
                    server.requests = Outbox(requests_out.fd, blocking=True)
                    code = run_loop(_serve_worker(server, slots[slot], write_fd, generation,
                                                  control_in))
            except BaseException:  # never fall back into the supervisor's code in a fork
                log.exception("worker %d crashed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(write_fd)
        control_in.close()
        os.close(requests_out.fd)
        started.append((Worker(pid, generation, control_out, slot, requests_in), read_fd))
    deadline = time.monotonic() + READY_TIMEOUT
    failed = False
    for worker, read_fd in started:
        status = _await_ready(read_fd, deadline)
        if status != "ready":
            log.error("worker %d: %s", worker.pid, status)
            failed = True
    workers = [worker for worker, _ in started]
    if failed:
        _stop(workers)
        return None
    return workers


def _await_ready(read_fd: int, deadline: float) -> str:
    chunks = b""
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            chunks += chunk
            if chunks.startswith(b"R"):
                return "ready"
    finally:
        os.close(read_fd)
    if chunks.startswith(b"E"):
        return chunks[1:].decode(errors="replace")
    if chunks or time.monotonic() < deadline:
        return "exited before it was ready"
    return "did not report ready in time"


async def _serve_worker(server: Server, slot: Slot, ready_fd: int, generation: int,
                        control: Inbox) -> int:
    """Inside the fork: serve until SIGTERM, applying control messages as they come."""
    server.telemetry.serves = True
    try:
        await server.start(slot)
    except Exception as exc:
        _report(ready_fd, b"E" + f"cannot listen: {exc}".encode())
        await server.stop()
        return 1
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    for signum, on in QUERY_LOG_SIGNALS.items():
        loop.add_signal_handler(signum, server.set_query_log, on)

    def on_control() -> None:
        for message in control.receive():
            gap = server.apply(message)
            if gap is not None:
                server.ask(Missed(gap))
        if control.eof:  # the supervisor is gone; PR_SET_PDEATHSIG stops us too
            loop.remove_reader(control.fd)

    loop.add_reader(control.fd, on_control)
    if server.served is not None:
        server.served.set(server.slot, server.live.version)
    _report(ready_fd, b"R")
    log.debug("worker %d serving (generation %d)", os.getpid(), generation)
    await stopping.wait()
    await server.stop(grace=STOP_GRACE)
    return 0


def _report(ready_fd: int, message: bytes) -> None:
    try:
        os.write(ready_fd, message)
    except OSError:  # the supervisor stopped waiting; it will stop us too
        pass
    finally:
        os.close(ready_fd)


def _stop(workers: list[Worker]) -> None:
    """SIGTERM each worker, wait for all, SIGKILL whoever outlives the timeout; their
    control channels are closed."""
    for worker in workers:
        _kill(worker.pid, signal.SIGTERM)
        worker.close()
    deadline = time.monotonic() + STOP_TIMEOUT
    pending = {worker.pid for worker in workers}
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            if _exit_status(pid) is not None:
                pending.discard(pid)
        if pending:
            time.sleep(0.01)
    for pid in pending:
        log.warning("worker %d did not stop; killing it", pid)
        _kill(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _exit_status(pid: int) -> str | None:
    """Reap `pid` if it has exited: how it ended, or None while it runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return "is gone"
    if done != pid:
        return None
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
