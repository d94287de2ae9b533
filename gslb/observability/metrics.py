"""Prometheus metrics for a DNS node: plain counters in each process, merged on scrape.

Counting on the query path must cost next to nothing, so no process touches a
Prometheus object per query: the responder and the socket code bump plain dicts and
lists (gslb.dns.handler.Responder.counts, gslb.observability.taps). Once a second, and
right before it answers a scrape, each process writes what it has counted so far (its
*report*: cumulative, never reset) to one file in the metrics directory, replacing the
previous one atomically. A scrape, in whichever process serves it (any worker on the
`--metrics` port, or the API), reads every report and merges them: counters are summed
over every process that ever reported, so they keep counting across reloads and
replaced workers; gauges come from live processes only. prometheus-client renders the
result in the text exposition format.

Reports are `marshal` files (plain tuples, dicts and numbers: nothing executes on load)
named `<pid>.report`. The supervisor folds the reports of workers it stopped into its
own (`fold_dead`), so the directory does not grow with every reload.
"""

from __future__ import annotations

import marshal
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gslb import __version__
from gslb.observability.taps import SUM, qtype_text, rcode_text

FLUSH_SECONDS = 1.0
SUFFIX = ".report"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FIRST_BUCKET, LAST_BUCKET = 3, 22  # le 8 us .. le 4.19 s, then +Inf
# What is summed across processes (including stopped ones) versus taken from live ones.
COUNTERS = ("queries", "udp_latency", "tcp_latency", "tcp_accepted", "tcp_evicted",
            "reloads_ok", "reloads_failed", "zone_problems", "query_log_lines",
            "dnstap_sent", "dnstap_dropped", "dnstap_reconnects", "native_udp",
            "ready_probes", "rrl")
Report = dict[str, Any]


def write_report(directory: Path, report: Report) -> None:
    """Replace this process's report file in one rename, so readers never see half."""
    path = directory / f"{os.getpid()}{SUFFIX}"
    temporary = directory / f".{os.getpid()}.tmp"
    temporary.write_bytes(marshal.dumps(report))
    os.replace(temporary, path)


def read_reports(directory: Path) -> list[Report]:
    """Every report in the directory; one that vanished while read (folded by the
    supervisor, whose own report now holds it) is skipped and the whole read retried."""
    for _ in range(3):
        reports = []
        try:
            for path in sorted(directory.glob(f"*{SUFFIX}")):
                reports.append(marshal.loads(path.read_bytes()))
            return reports
        except (FileNotFoundError, EOFError, ValueError):
            continue
    return reports


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def merge_counters(into: Report, other: Report) -> None:
    """Add `other`'s counters to `into` (dicts by key, lists by index, numbers)."""
    for name in COUNTERS:
        value = other.get(name)
        if value is None:
            continue
        if isinstance(value, dict):
            target = into.setdefault(name, {})
            for key, count in value.items():
                target[key] = target.get(key, 0) + count
        elif isinstance(value, list):
            target = into.setdefault(name, [0] * len(value))
            for index, count in enumerate(value):
                target[index] += count
        else:
            into[name] = into.get(name, 0) + value


def fold_dead(directory: Path, own: Report, write_own: Callable[[], None]) -> int:
    """Move the counters of reports whose process is gone into `own` (the caller's
    retired totals) and delete those files; how many were folded. `write_own` rewrites
    the caller's report (which includes `own`) before each file goes, so a scrape never
    misses those counts. Run by the one process that owns the directory (the
    supervisor), after it has reaped workers."""
    folded = 0
    for path in directory.glob(f"*{SUFFIX}"):
        try:
            report = marshal.loads(path.read_bytes())
        except (OSError, EOFError, ValueError):
            continue
        pid = report.get("pid", 0)
        if pid == os.getpid() or alive(pid):
            continue
        merge_counters(own, report)
        folded += 1
        write_own()  # first hold the counts, then drop their old file
        path.unlink(missing_ok=True)
    return folded


class ReportWriter:
    """Writes one process's report now and then; `report` builds it from live objects."""

    def __init__(self, directory: Path, report: Callable[[], Report]) -> None:
        self.directory = directory
        self.report = report

    def write(self) -> None:
        try:
            write_report(self.directory, self.report())
        except OSError:
            pass  # a full or removed directory must not stop the DNS service


def render(directory: Path) -> bytes:
    """The merged metrics of every process reporting into `directory`, as Prometheus text."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(directory))
    return generate_latest(registry)


class NodeCollector(Collector):
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        reports = read_reports(self.directory)
        total: Report = {}
        for report in reports:
            merge_counters(total, report)
        live = [r for r in reports if alive(r.get("pid", 0))]
        yield from _query_metrics(total)
        yield from _server_counters(total)
        yield from _node_gauges(live, time.time())


def _query_metrics(total: Report) -> Iterator[Metric]:
    queries = CounterMetricFamily(
        "gslb_queries", "DNS queries answered, by zone, type, rcode, transport and steering",
        labels=["zone", "qtype", "rcode", "transport", "steered"])
    hits = CounterMetricFamily("gslb_answer_cache_hits", "answers served from the answer cache",
                               labels=["zone"])
    misses = CounterMetricFamily("gslb_answer_cache_misses",
                                 "answers resolved and rendered (answer cache misses)",
                                 labels=["zone"])
    steering = CounterMetricFamily(
        "gslb_steering_answers", "steered answers, per record, pool and member given",
        labels=["record", "type", "pool", "member"])
    by_query: dict[tuple, int] = {}
    by_cache: dict[tuple[str, bool], int] = {}
    by_member: dict[tuple, int] = {}
    for ((zone, qtype, rcode, tcp, decisions), cache), count in total.get("queries", {}).items():
        key = (zone, qtype_text(qtype) if qtype else "-", rcode_text(rcode), "tcp" if tcp else "udp",
               "true" if decisions else "false")
        by_query[key] = by_query.get(key, 0) + count
        if cache is not None:
            by_cache[(zone, cache)] = by_cache.get((zone, cache), 0) + count
        for owner, rdtype, pool, values in decisions:
            for member in values or ("-",):
                member_key = (owner, rdtype, pool or "-", member)
                by_member[member_key] = by_member.get(member_key, 0) + count
    for labels, count in sorted(by_query.items()):
        queries.add_metric(list(labels), count)
    for (zone, cache), count in sorted(by_cache.items()):
        (hits if cache else misses).add_metric([zone], count)
    for labels, count in sorted(by_member.items()):
        steering.add_metric(list(labels), count)
    yield from (queries, hits, misses, steering)
    latency = HistogramMetricFamily("gslb_answer_duration_seconds",
                                    "time from a query's arrival to its answer being sent",
                                    labels=["transport"])
    for transport in ("udp", "tcp"):
        slots = total.get(f"{transport}_latency") or [0] * (SUM + 1)
        latency.add_metric([transport], _buckets(slots), slots[SUM] / 1e9)
    yield latency


def _buckets(slots: list[int]) -> list[tuple[str, float]]:
    """Cumulative Prometheus buckets from per-power-of-two slots (slot i: < 2**i us)."""
    buckets = []
    running = sum(slots[:FIRST_BUCKET + 1])
    for index in range(FIRST_BUCKET, LAST_BUCKET + 1):
        if index > FIRST_BUCKET:
            running += slots[index]
        buckets.append((repr((1 << index) / 1e6), float(running)))
    buckets.append(("+Inf", float(sum(slots[:SUM]))))
    return buckets


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _by_result(name: str, doc: str, counts: dict[str, float]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["result"])
    for result, count in counts.items():
        family.add_metric([result], count)
    return family


def _server_counters(total: Report) -> Iterator[Metric]:
    yield _counter("gslb_tcp_connections_accepted", "TCP connections accepted",
                   total.get("tcp_accepted", 0))
    yield _counter("gslb_tcp_connections_evicted",
                   "TCP connections closed to make room under --tcp-max-connections",
                   total.get("tcp_evicted", 0))
    yield _by_result("gslb_reloads", "zone reloads (SIGHUP, GeoIP change), by result",
                     {"ok": total.get("reloads_ok", 0), "failed": total.get("reloads_failed", 0)})
    yield _counter("gslb_zone_load_problems",
                   "problems found loading zones and steering files (each logged as file:line)",
                   total.get("zone_problems", 0))
    yield _counter("gslb_query_log_lines", "query log lines written",
                   total.get("query_log_lines", 0))
    yield _by_result("gslb_dnstap_frames", "dnstap frames, by what became of them",
                     {"sent": total.get("dnstap_sent", 0),
                      "dropped": total.get("dnstap_dropped", 0)})
    yield _counter("gslb_dnstap_reconnects", "connections made to the dnstap collector",
                   total.get("dnstap_reconnects", 0))
    yield _by_result("gslb_ready_probes", "SOA queries /ready sent to the node's own DNS port "
                     "(one per zone), by result; not in gslb_queries_total",
                     {"ok": 0, "failed": 0, **total.get("ready_probes", {})})
    native = CounterMetricFamily(
        "gslb_native_udp", "the C UDP fast path's own counters (its answers are also in "
        "gslb_queries_total, its answers to /ready's probes are not)", labels=["event"])
    for event, count in sorted(total.get("native_udp", {}).items()):
        native.add_metric([event], count)
    yield native
    limited = CounterMetricFamily(
        "gslb_rrl_limited", "UDP replies held back by response rate limiting, by what "
        "became of them (dropped; slipped: sent truncated) and the reply's class",
        labels=["action", "class"])
    for (action, cls), count in sorted(total.get("rrl", {}).items()):
        limited.add_metric([action, cls], count)
    yield limited


def _gauge(name: str, doc: str, value: float | None = None,
           labels: Sequence[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value, labels=labels)


def newest_snapshot(reports: list[Report]) -> Report:
    """The snapshot of the newest version, from the report written last: workers write
    theirs every second, the supervisor only after a reload, so its state part may be old."""
    return max(reports, key=lambda r: (r["snapshot"]["version"], r.get("written", 0)))["snapshot"]


def _node_gauges(live: list[Report], now: float) -> Iterator[Metric]:
    """Gauges from the live processes: the newest snapshot any of them serves."""
    info = _gauge("gslb_build_info", "the running version", labels=["version"])
    info.add_metric([__version__], 1)
    yield info
    yield _gauge("gslb_workers", "processes answering queries",
                 sum(1 for r in live if r.get("serves")))
    if live:
        yield _gauge("gslb_start_time_seconds", "when the node started (Unix time)",
                     min(r.get("started", now) for r in live))
    yield _gauge("gslb_tcp_connections", "TCP connections open now",
                 sum(r.get("tcp_open", 0) for r in live))
    serving = [r for r in live if r.get("snapshot")]
    if not serving:
        return
    snap = newest_snapshot(serving)
    yield _gauge("gslb_snapshot_version", "version of the snapshot being served",
                 snap["version"])
    yield _gauge("gslb_snapshot_age_seconds", "seconds since that snapshot was built",
                 max(0.0, now - snap["built"]))
    config = _gauge("gslb_config_version", "configuration version served (the oldest any "
                    "worker serves), by where it came from (folder or redis)",
                    labels=["source"])
    config.add_metric([str(snap.get("config_source", "folder"))],
                      min(int(r["snapshot"].get("config_version", 0)) for r in serving))
    yield config
    serials = _gauge("gslb_zone_serial", "SOA serial of each zone served", labels=["zone"])
    for zone, serial in sorted(snap["zones"].items()):
        serials.add_metric([zone], serial)
    yield serials
    yield _gauge("gslb_state_version", "version of the health and latency state",
                 snap["state_version"])
    yield _gauge("gslb_state_age_seconds", "seconds since the state was last read",
                 max(0.0, now - snap["state_read"]))
    store = _gauge("gslb_state_store_up", "1 when the state store answers, else 0",
                   labels=["store"])
    store.add_metric([snap["store"]], 1 if snap["store_up"] else 0)
    yield store
    yield _gauge("gslb_state_epoch", "the state store's epoch (Redis), 0 in process",
                 snap.get("epoch", 0))
    yield from _health_gauges(snap, now)


def _health_gauges(snap: Report, now: float) -> Iterator[Metric]:
    members = _gauge("gslb_member_up",
                     "1 when a member's check is up (or it has none), 0 when down, -1 when no "
                     "verdict is known yet (steering then treats it as up)",
                     labels=["record", "type", "pool", "member", "check"])
    health = snap.get("health", {})
    for record, rdtype, pool, member, check in snap.get("members", ()):
        up = health.get(check, (None, "", 0.0, ""))[0] if check else True
        members.add_metric([record, rdtype, pool, member, check or "-"],
                           -1 if up is None else int(up))
    yield members
    checks = _gauge("gslb_check_up", "1 when a health check is up, by check and source",
                    labels=["check", "source"])
    ages = _gauge("gslb_check_age_seconds", "seconds since a health check's verdict changed",
                  labels=["check"])
    agents = _gauge("gslb_agent_verdict_up", "1 when an agent sees a check up, by agent",
                    labels=["check", "agent"])
    for check, (up, source, since, _) in sorted(health.items()):
        checks.add_metric([check, source], int(up))
        ages.add_metric([check], max(0.0, now - since))
    for (check, agent), up in sorted(snap.get("agents", {}).items()):
        agents.add_metric([check, agent], int(up))
    yield from (checks, ages, agents)
