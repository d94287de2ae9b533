"""The Prometheus text of a node's metrics: the reports of gslb.observability.metrics,
merged, as prometheus-client renders them. Imported by the first scrape only."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gslb import __version__
from gslb.observability.metrics import (FIRST_BUCKET, LAST_BUCKET, Report, alive,
                                        merge_counters, newest_snapshot, read_reports)
from gslb.observability.taps import SUM, qtype_text, rcode_text


def render_text(directory: Path) -> bytes:
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
