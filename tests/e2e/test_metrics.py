"""/metrics end to end: a known set of queries moves the counters by exactly that set,
in one process and across two forked workers; /ready and /live; reloads are counted and
counts survive a reload's new generation of workers."""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
from collections import Counter

import dns.edns
import dns.message
import dns.query
import dns.rcode
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DEMO_ZONE_NAMES
from tests.servers import DEMO_ZONES, GslbProcess, free_port, wait_until

Samples = dict[tuple[str, frozenset], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def delta(after: Samples, before: Samples, name: str) -> Counter:
    """How much each labelled series of `name` moved (zero moves left out)."""
    moved: Counter = Counter()
    for (sample, labels), value in after.items():
        if sample == name:
            change = value - before.get((sample, labels), 0.0)
            if change:
                moved[labels] = change
    return moved


def labels(**items: str) -> frozenset:
    return frozenset(items.items())


def query(server: GslbProcess, name: str, rdtype: str = "A", tcp: bool = False,
          **kw) -> dns.message.Message:
    message = dns.message.make_query(name, rdtype, **kw)
    message.flags = 0
    send = dns.query.tcp if tcp else dns.query.udp
    return send(message, "127.0.0.1", port=server.port, timeout=3)


def known_set(server: GslbProcess) -> tuple[Counter, Counter]:
    """Send a fixed mix; the expected query counts by label set, and the steered
    members the replies carried."""
    expected: Counter = Counter()
    members: Counter = Counter()

    def count(zone: str, qtype: str, rcode: str, transport: str, steered: str, n: int = 1):
        expected[labels(zone=zone, qtype=qtype, rcode=rcode, transport=transport,
                        steered=steered)] += n

    for _ in range(7):
        assert query(server, "www.example.com").rcode() == dns.rcode.NOERROR
    count("example.com.", "A", "NOERROR", "udp", "false", 7)
    for _ in range(3):
        assert query(server, "www.example.com", "AAAA", tcp=True).rcode() == dns.rcode.NOERROR
    count("example.com.", "AAAA", "NOERROR", "tcp", "false", 3)
    for index in range(4):
        assert query(server, f"nope{index}.example.net", "MX").rcode() == dns.rcode.NXDOMAIN
    count("example.net.", "MX", "NXDOMAIN", "udp", "false", 4)
    for _ in range(2):
        assert query(server, "example.org", "SOA").rcode() == dns.rcode.REFUSED
    count("none", "SOA", "REFUSED", "udp", "false", 2)
    for _ in range(5):
        reply = query(server, "www2.example.com")
        assert reply.rcode() == dns.rcode.NOERROR
        for rrset in reply.answer:
            for rdata in rrset:
                members[rdata.to_text()] += 1
    count("example.com.", "A", "NOERROR", "udp", "true", 5)
    return expected, members


def quiet_scrape(port: int) -> Samples:
    """A scrape once every process's report holds all it answered (reports are written
    once a second): two scrapes a flush period apart that agree."""
    previous = scrape(port)
    for _ in range(20):
        time.sleep(1.2)
        current = scrape(port)
        if not delta(current, previous, "gslb_queries_total"):
            return current
        previous = current
    raise AssertionError("query counts never settled")


def check_exact(server: GslbProcess, metrics_port: int) -> None:
    before = quiet_scrape(metrics_port)
    expected, members = known_set(server)
    total = sum(expected.values())

    def settled() -> bool:
        moved = delta(scrape(metrics_port), before, "gslb_queries_total")
        return sum(moved.values()) >= total

    assert wait_until(settled, timeout=10, step=0.2)
    after = quiet_scrape(metrics_port)  # and nothing more than what was sent
    assert delta(after, before, "gslb_queries_total") == expected
    steering = delta(after, before, "gslb_steering_answers_total")
    assert steering == Counter({labels(record="www2.example.com.", type="A", pool="web",
                                       member=member): n for member, n in members.items()})
    udp = sum(n for key, n in expected.items() if ("transport", "udp") in key)
    tcp = total - udp
    durations = delta(after, before, "gslb_answer_duration_seconds_count")
    assert durations == Counter({labels(transport="udp"): udp, labels(transport="tcp"): tcp})
    inf = delta(after, before, "gslb_answer_duration_seconds_bucket")
    assert inf[labels(transport="udp", le="+Inf")] == udp
    cached = (sum(delta(after, before, "gslb_answer_cache_hits_total").values())
              + sum(delta(after, before, "gslb_answer_cache_misses_total").values()))
    assert cached == total  # every IN query is a cache hit or a miss, REFUSED ones too
    assert delta(after, before, "gslb_tcp_connections_accepted_total")[frozenset()] == 3


@pytest.mark.parametrize("workers", [1, 2])
def test_counters_move_by_exactly_the_queries_sent(workers: int) -> None:
    metrics_port = free_port()
    server = GslbProcess(DEMO_ZONES, ["--workers", str(workers), "--latency-sample", "1",
                                      "--metrics", f"127.0.0.1:{metrics_port}"])
    server.start(DEMO_ZONE_NAMES)
    try:
        assert wait_until(lambda: _get(metrics_port, "/live")[0] == 200)
        # ready means one worker answers SOA; the supervisor counts each as it listens
        assert wait_until(lambda: scrape(metrics_port).get(("gslb_workers", frozenset()))
                          == workers, timeout=10)
        samples = scrape(metrics_port)
        assert samples[("gslb_zone_serial", labels(zone="example.com."))] > 0
        assert samples[("gslb_snapshot_version", frozenset())] >= 1
        check_exact(server, metrics_port)
    finally:
        assert server.stop() == 0


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def test_ready_live_and_reloads_across_worker_generations(tmp_path) -> None:
    metrics_port = free_port()
    server = GslbProcess(DEMO_ZONES, ["--workers", "2", "--metrics", f"127.0.0.1:{metrics_port}"])
    server.start(DEMO_ZONE_NAMES)
    try:
        status, body = _get(metrics_port, "/ready")
        assert (status, body) == (200, "ready: 3 zones answer SOA\n")
        assert _get(metrics_port, "/live")[0] == 200
        assert _get(metrics_port, "/nothing")[0] == 404
        before = scrape(metrics_port)
        for _ in range(10):
            query(server, "www.example.com")
        server.signal(signal.SIGHUP)
        reloaded = lambda: delta(scrape(metrics_port), before,  # noqa: E731
                                 "gslb_reloads_total")[labels(result="ok")] == 1
        assert wait_until(reloaded, timeout=15, step=0.2)
        assert wait_until(lambda: scrape(metrics_port)[("gslb_snapshot_version", frozenset())]
                          > before[("gslb_snapshot_version", frozenset())], timeout=10)
        for _ in range(5):
            query(server, "www.example.com")
        key = labels(zone="example.com.", qtype="A", rcode="NOERROR", transport="udp",
                     steered="false")
        # The ten answered by the first generation are still counted after it stopped.
        assert wait_until(lambda: delta(scrape(metrics_port), before,
                                        "gslb_queries_total")[key] == 15, timeout=10, step=0.2)
    finally:
        assert server.stop() == 0


def test_metrics_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = GslbProcess(DEMO_ZONES, ["--workers", "2", "--metrics", f"127.0.0.1:{port}"])
        with pytest.raises(RuntimeError, match="--metrics 127.0.0.1:.*Address already in use"):
            server.start(DEMO_ZONE_NAMES, timeout=10)
        server.stop()


PROBE_OPTION = 65301  # gslb.dns.edns.OPTION_PROBE; the key is the node's secret


def _total(samples: Samples, name: str = "gslb_queries_total") -> float:
    return sum(value for (sample, _), value in samples.items() if sample == name)


def test_ready_probes_are_not_client_traffic(udp_path: str) -> None:
    """/ready asks the DNS port for every zone's SOA, over the real socket and answering
    code (the C fast path included, which answers repeated probes from its table), but
    those queries are not client traffic: no query count, latency sample or query log
    line, only gslb_ready_probes_total. A client that sends the probe's option without
    the node's key is counted and logged like any other."""
    metrics_port = free_port()
    server = GslbProcess(DEMO_ZONES, ["--workers", "2", "--latency-sample", "1",
                                      "--log-format", "json",
                                      "--metrics", f"127.0.0.1:{metrics_port}"])
    server.start(DEMO_ZONE_NAMES)
    zones = len(DEMO_ZONE_NAMES)
    try:
        assert wait_until(lambda: _get(metrics_port, "/ready")[0] == 200, timeout=10)
        before = quiet_scrape(metrics_port)
        for _ in range(10):
            assert _get(metrics_port, "/ready") == (200, f"ready: {zones} zones answer SOA\n")
        after = quiet_scrape(metrics_port)
        for name in ("gslb_queries_total", "gslb_answer_duration_seconds_count",
                     "gslb_answer_cache_hits_total", "gslb_answer_cache_misses_total"):
            assert not delta(after, before, name), name
        assert delta(after, before, "gslb_ready_probes_total") == {labels(result="ok"): 10 * zones}
        native = delta(after, before, "gslb_native_udp_total")
        assert native[labels(event="answered")] == 0
        if udp_path == "native":  # the C loop answered the repeats from its table
            assert native[labels(event="probes")] >= 10 * zones - 2 * zones

        server.signal(signal.SIGUSR1)  # the query log on: every query through Python
        assert wait_until(lambda: server.log().count('"query log on') >= 3)
        for _ in range(5):
            assert _get(metrics_port, "/ready")[0] == 200
        wrong_key = dns.edns.GenericOption(PROBE_OPTION, bytes(16))
        assert query(server, "example.com", "SOA", use_edns=0,
                     options=[wrong_key]).rcode() == dns.rcode.NOERROR
        assert wait_until(lambda: _total(scrape(metrics_port)) > _total(after), step=0.2)
        assert _total(quiet_scrape(metrics_port)) == _total(after) + 1
    finally:
        assert server.stop() == 0
    lines = [line for line in server.log().splitlines() if '"logger": "gslb.query"' in line]
    assert len(lines) == 1 and '"name": "example.com."' in lines[0], lines
