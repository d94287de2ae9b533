"""A DNS node's telemetry: what each process reports for the metrics, the `--metrics`
endpoint (/metrics, /ready, /live), the query-log switch and the dnstap feed.

Owned by `Server`. Each serving process (the single process, or every worker) counts
queries in its responder and taps, writes its report once a second and serves the
metrics port; the supervisor of workers counts reloads and writes its report after
each. The query log is switched at run time with SIGUSR1 (on) and SIGUSR2 (off),
which the supervisor passes on to its workers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from gslb import __version__
from gslb.observability import metrics
from gslb.observability.taps import QueryLog, Taps
from gslb.server import fastpath, probe, udp
from gslb.server.listen import bind_http
from gslb.config.follower import Source
from gslb.dns.handler import Responder
from gslb.server.tcp import ConnectionPool
from gslb.settings import Settings
from gslb.snapshot import Snapshot
from gslb.state.store import StateView

if TYPE_CHECKING:  # dnstap, the metrics port and the heartbeat are imported when asked for
    from gslb.observability.dnstap import Dnstap
    from gslb.observability.http import HttpServer, Reply


class Node(Protocol):
    """What telemetry reads of the node that owns it (gslb.server.node.Server), so this
    module does not import the node, which imports it."""

    @property
    def responder(self) -> Responder: ...

    @property
    def pool(self) -> ConnectionPool: ...

    @property
    def snapshot(self) -> Snapshot: ...

    @property
    def state_view(self) -> StateView: ...

    @property
    def source(self) -> Source: ...

    @property
    def limiter(self) -> Any: ...

log = logging.getLogger("gslb.telemetry")
PROBE_BATCH = 256  # /ready asks this many zones for their SOA at once


class Telemetry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.taps = Taps(QueryLog(settings.query_log_every), None, settings.query_log,
                         settings.latency_sample)
        self.reloads_ok = 0
        self.reloads_failed = 0
        self.zone_problems = 0
        self.built_at = time.time()  # when the snapshot being served was built
        self.state_read_at = time.time()
        self.serves = True  # False in a supervisor of workers, which answers nothing
        self.directory: Path | None = None
        self.owns_directory = False
        self.writer: metrics.ReportWriter | None = None
        self.http: HttpServer | None = None
        self.dnstap: Dnstap | None = None  # the feed `taps` sends to, to close
        self.flusher: asyncio.Task | None = None
        self.retired: metrics.Report = {}  # counters of stopped workers (supervisor)
        self.server: Node | None = None
        self.owner_pid = os.getpid()  # the process that counts reloads: the first one
        self.started = time.time()  # the node's start (workers inherit it)
        self.ready_probes = {"ok": 0, "failed": 0}  # the SOA queries /ready sent, by result

    # -- the metrics directory and reports ---------------------------------------------

    def open_directory(self) -> None:
        """Create (or take) the directory the processes report into; only when metrics
        are served, so a node without them writes nothing."""
        if (self.settings.metrics is None and self.settings.metrics_dir is None
                and self.settings.api is None  # `--api` serves /metrics on its port
                and self.settings.store.redis is None):  # heartbeats read the reports too
            return
        if self.settings.metrics_dir is not None:
            self.directory = self.settings.metrics_dir
            self.directory.mkdir(parents=True, exist_ok=True)
            for stale in self.directory.glob(f"*{metrics.SUFFIX}"):
                stale.unlink()  # a previous run's counters are not this run's
        else:
            self.directory = Path(tempfile.mkdtemp(prefix="gslb-metrics-"))
            self.owns_directory = True
        self.writer = metrics.ReportWriter(self.directory, self._report_now)

    def close_directory(self) -> None:
        if self.directory is not None and self.owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def as_supervisor(self) -> None:
        self.serves = False

    def loaded(self, ok: bool, problems: int) -> None:
        """A load or reload finished: count it, and note when the new snapshot was built."""
        if ok:
            self.reloads_ok += 1
            self.built_at = self.state_read_at = time.time()
        else:
            self.reloads_failed += 1
        self.zone_problems += problems

    def write(self) -> None:
        if self.writer is not None:
            self.writer.write()

    def fold_dead(self) -> None:
        """Supervisor: keep the counts of stopped workers, drop their report files."""
        if self.directory is not None:
            metrics.fold_dead(self.directory, self.retired, self.write)

    def _report_now(self) -> metrics.Report:
        assert self.server is not None
        return self.report(self.server)

    def attach(self, server: Node) -> None:
        self.server = server

    def report(self, server: Node) -> metrics.Report:
        report: metrics.Report = {"pid": os.getpid(), "serves": self.serves,
                                  "written": time.time(), "started": self.started}
        metrics.merge_counters(report, self.retired)
        if self.serves:
            taps, pool = self.taps, server.pool
            report["queries"] = server.responder.labels.snapshot()
            report["udp_latency"] = list(taps.udp_latency)
            fastpath.add_native_counts(report["queries"], report["udp_latency"])
            report["tcp_latency"] = list(taps.tcp_latency)
            report["tcp_accepted"] = pool.accepted
            report["tcp_evicted"] = pool.evicted
            report["tcp_open"] = len(pool.connections)
            report["query_log_lines"] = taps.query_log.lines if taps.query_log else 0
            if server.limiter is not None:
                report["rrl"] = server.limiter.counts()
            native = getattr(udp, "counters", None)  # the C fast path's, when it exists
            if native is not None:
                report["native_udp"] = dict(native())
            feed = taps.dnstap
            if feed is not None:
                report["dnstap_sent"], report["dnstap_dropped"], report["dnstap_reconnects"] = (
                    feed.sent, feed.dropped, feed.reconnects)
        report["ready_probes"] = dict(self.ready_probes)
        if os.getpid() == self.owner_pid:  # workers inherit these but do not count them
            report["reloads_ok"] = self.reloads_ok
            report["reloads_failed"] = self.reloads_failed
            report["zone_problems"] = self.zone_problems
        report["snapshot"] = self._snapshot_report(server)
        return report

    def _snapshot_report(self, server: Node) -> metrics.Report:
        snapshot = server.snapshot
        steering = snapshot.steering
        view = server.state_view
        health: dict[str, tuple] = {}
        members = []
        if steering is not None:
            for key, verdict in steering.health.items():
                since = self.state_read_at - (verdict.age or 0.0)
                health[key] = (verdict.up, verdict.source, since, "")
            for record in steering.records.values():
                for pool in record.pools.values():
                    for member in pool.members:
                        key = member.health_key or ""
                        if key not in health and member.check in health:
                            key = member.check or ""
                        members.append((record.owner, record.rdtype, pool.name, member.value,
                                        key))
        store = view.store
        source = server.source
        return {
            "version": snapshot.version,
            "config_version": source.version,
            "config_source": source.kind,
            "built": self.built_at,
            "zones": {zone.origin.to_text(): zone.serial() for zone in snapshot.zones},
            "state_version": steering.version if steering is not None else 0,
            "state_read": self.state_read_at,
            "store": store.source if store is not None else (
                "file" if self.settings.state is not None else "in-process"),
            "store_up": store.connected if store is not None else True,
            "epoch": store.epoch if store is not None else 0,
            "health": health,
            "members": members,
            "agents": {(key, verdict.agent): verdict.up
                       for key, verdicts in view.verdicts.items() for verdict in verdicts},
        }

    def state_applied(self) -> None:
        self.state_read_at = time.time()

    # -- in a serving process's event loop -------------------------------------------

    async def start(self, server: Node, sock: socket.socket | None = None) -> None:
        """Serve the metrics port and write reports once a second, and start the dnstap
        feed (serving processes: a worker starts its own after the fork). `sock`: the
        metrics port's socket when the supervisor bound it (a worker's slot)."""
        self.attach(server)
        if self.settings.dnstap is not None:
            from gslb.observability.dnstap import Dnstap

            self.dnstap = self.taps.dnstap = Dnstap(
                self.settings.dnstap, self.settings.identity or socket.gethostname(),
                f"gslb {__version__}", self.settings.dnstap_every,
                self.settings.dnstap_queue).start()
            self.taps.set_query_log(self.taps.query_log_on)  # recomputes `active`
        if self.writer is None:
            return
        self.write()
        self.flusher = asyncio.get_running_loop().create_task(self._flush_forever())
        address = self.settings.metrics
        if address is not None:
            from gslb.observability.http import HttpServer

            routes = {"/metrics": self._metrics, "/ready": self._ready, "/live": self._live}
            self.http = await HttpServer(routes).start(
                sock if sock is not None else bind_http(address, reuse_port=False))
            log.info("metrics on http://%s/metrics", address)

    async def stop(self) -> None:
        feed = self.dnstap
        if feed is not None:
            await asyncio.get_running_loop().run_in_executor(None, feed.close)
        if self.flusher is not None:
            self.flusher.cancel()
        self.stop_accepting()
        self.write()  # the last counts of this process outlive it

    def stop_accepting(self) -> None:
        """Close the metrics port (requests already accepted are still answered)."""
        if self.http is not None:
            self.http.close()

    async def settle(self, grace: float) -> None:
        """Up to `grace` seconds for the metrics requests in flight."""
        if self.http is not None:
            await self.http.settle(grace)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(metrics.FLUSH_SECONDS)
            self.write()

    async def _metrics(self) -> Reply:
        self.write()  # this process's counts are exact; the others' at most a second old
        assert self.directory is not None
        body = await asyncio.get_running_loop().run_in_executor(None, metrics.render,
                                                                self.directory)
        return 200, metrics.CONTENT_TYPE, body

    async def _live(self) -> Reply:
        return 200, "text/plain", b"alive\n"

    async def _ready(self) -> Reply:
        """200 when every served zone answers SOA, authoritatively, on the DNS port (the
        probe queries are counted apart from client queries: gslb/server/probe.py)."""
        assert self.server is not None
        zones = [zone.origin for zone in self.server.snapshot.zones]
        if not zones:
            return 503, "text/plain", b"no zone loaded\n"
        failing = []
        address = self.settings.listen[0]
        # Zones are asked at once, PROBE_BATCH at a time: with a hung DNS port the reply
        # comes within about one probe timeout per batch, not one per zone (a readiness
        # check has its own timeout, and a node may serve thousands of zones).
        for start in range(0, len(zones), PROBE_BATCH):
            batch = zones[start:start + PROBE_BATCH]
            answered = await asyncio.gather(*(probe.answers_soa(address, origin)
                                              for origin in batch))
            for origin, ok in zip(batch, answered):
                self.ready_probes["ok" if ok else "failed"] += 1
                if not ok:
                    failing.append(origin.to_text())
        if failing:
            return 503, "text/plain", f"not answering SOA: {' '.join(failing)}\n".encode()
        return 200, "text/plain", f"ready: {len(zones)} zones answer SOA\n".encode()

    def heartbeat(self, served: Callable[[], int] | None = None) -> "asyncio.Task | None":
        """With Redis, publish this node's heartbeat (run by the process that talks to
        Redis: the single process, or the supervisor's state process). `served`: the
        configuration version every worker serves (gslb/server/served.py), beaten at
        once when it changes."""
        if self.settings.store.redis is None or self.directory is None:
            return None
        from gslb.observability.heartbeat import Heartbeat, node_name

        node = node_name(self.settings.identity, str(self.settings.listen[0]))
        beat = Heartbeat(self.settings.store.redis, self.directory, node,
                         self.settings.heartbeat, served)
        return asyncio.get_running_loop().create_task(beat.run())

    def set_query_log(self, on: bool) -> None:
        self.taps.set_query_log(on)
        every = self.taps.query_log.every if self.taps.query_log else 0
        log.info("query log %s (one query in %d)", "on" if on else "off", every)
