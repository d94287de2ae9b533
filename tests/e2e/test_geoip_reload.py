"""`--geoip` files are checked on SIGHUP and every `--geoip-check-interval` seconds: a new
database renamed over the old one steers the next queries, at once after SIGHUP (well
before the default 10-second check would have seen it), and within the interval without."""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import urllib.request

import dns.edns
import dns.message
import maxminddb
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import GslbProcess, free_port, wait_until
from tests.unit.load.test_geoip import city, write

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import mmdbgen  # noqa: E402

ZONE = """\
$ORIGIN geo.test.
$TTL 3600
@     IN SOA ns1.geo.test. hostmaster.geo.test. 1 7200 3600 1209600 300
      IN NS  ns1.geo.test.
ns1   IN A   192.0.2.53
"""
STEERING = """\
records:
  where:
    type: A
    pools:
      fr: {members: [192.0.2.2]}
      de: {members: [192.0.2.3]}
    rules:
      - {geos: [FR], pool: fr}
      - pool: de
"""


def test_sighup_rereads_a_replaced_geoip_database(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "geo.test.zone").write_text(ZONE)
    (zones / "geo.test.gslb.yaml").write_text(STEERING)
    database = write(tmp_path / "City.mmdb", "GeoLite2-City",
                     {"198.51.100.0/24": city("EU", "FR", None, 48.86, 2.35)})
    server = GslbProcess(zones, ["--geoip", str(database), "--workers", "1"])
    server.start(["geo.test."])

    def answer() -> str:
        reply = server.query("where.geo.test.", "A", use_edns=0,
                             options=[dns.edns.ECSOption("198.51.100.0", 24)])
        return reply.answer[0][0].address

    try:
        assert answer() == "192.0.2.2"
        # The network moves to Germany: a new file renamed over the old (as geoipupdate does).
        replacement = write(tmp_path / "City.mmdb.new", "GeoLite2-City",
                            {"198.51.100.0/24": city("EU", "DE", None, 52.52, 13.40)})
        os.replace(replacement, database)
        started = time.monotonic()
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: answer() == "192.0.2.3", timeout=8, step=0.1), server.log()
        assert time.monotonic() - started < 8
    finally:
        server.stop()


# --- a database replaced while queries flow (issue 18) ---------------------------------------

# The same `where` record, and a `closest` one beside it.
NEAR_STEERING = """\
datacenters:
  paris: {latitude: 48.86, longitude: 2.35}
  berlin: {latitude: 52.52, longitude: 13.40}
""" + STEERING + """\
  near:
    type: A
    pools:
      all:
        members:
          - {value: 192.0.2.20, datacenter: paris}
          - {value: 192.0.2.21, datacenter: berlin}
    rules: [{pool: all}]
    policies: [closest]
"""
PARIS, BERLIN = city("EU", "FR", None, 48.86, 2.35), city("EU", "DE", None, 52.52, 13.40)
STAYING = {f"198.51.{n}.0/24": PARIS if n % 2 else BERLIN for n in range(10, 30)}
MOVING = "203.0.113.0/24"  # from Paris to Berlin in the replacement


def _metrics(port: int) -> dict[str, float]:
    """Every counter summed over its labels, once every process reported what it
    answered (reports are written about once a second: two scrapes that agree)."""
    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        return totals

    previous = scrape()
    for _ in range(20):
        time.sleep(1.2)
        current = scrape()
        if current.get("gslb_queries_total") == previous.get("gslb_queries_total"):
            return current
        previous = current
    raise AssertionError("query counts never settled")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_replaced_database_keeps_every_cached_answer(tmp_path: Path, workers: str) -> None:
    """The periodic check (every second here) finds a new file: answers follow it, and
    every answer cached before still serves (the steering's rule maps are rebuilt, not
    the answer cache), save those of `closest`, which decide by the client's location."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "geo.test.zone").write_text(ZONE)
    (zones / "geo.test.gslb.yaml").write_text(NEAR_STEERING)
    database = write(tmp_path / "City.mmdb", "GeoLite2-City", {**STAYING, MOVING: PARIS})
    metrics_port = free_port()
    server = GslbProcess(zones, ["--geoip", str(database), "--workers", workers,
                                 "--geoip-check-interval", "1",
                                 "--metrics", f"127.0.0.1:{metrics_port}"])
    server.start(["geo.test."])

    def answer(name: str, network: str) -> str:
        address, length = network.split("/")
        reply = server.query(f"{name}.geo.test.", "A", use_edns=0,
                             options=[dns.edns.ECSOption(address, int(length))])
        return reply.answer[0][0].address

    def ask_all(name: str) -> list[str]:
        # each network a few times: with workers, each of them gets some
        return [answer(name, network) for network in STAYING for _ in range(int(workers) * 4)]

    try:
        assert (answer("where", MOVING), answer("near", MOVING)) == ("192.0.2.2", "192.0.2.20")
        expected = ["192.0.2.2" if STAYING[network] is PARIS else "192.0.2.3"
                    for network in STAYING for _ in range(int(workers) * 4)]
        assert ask_all("where") == expected
        asked = int(workers) * 4  # every worker caches `near`'s answer for the network
        assert [answer("near", MOVING) for _ in range(asked)] == ["192.0.2.20"] * asked
        os.replace(write(tmp_path / "City.mmdb.new", "GeoLite2-City", {**STAYING, MOVING: BERLIN}),
                   database)
        # within a few seconds: the default check, 10 s after the start, would come later
        assert wait_until(lambda: answer("where", MOVING) == "192.0.2.3", timeout=5, step=0.1), \
            server.log()
        # every serving process has rebuilt (workers one after another; the supervisor too)
        assert wait_until(lambda: server.log().count("serves the new database")
                          == (1 if workers == "1" else int(workers) + 1), timeout=15), server.log()
        # `near` decides by the client's location: its cached answer went with the old file
        assert [answer("near", MOVING) for _ in range(asked)] == ["192.0.2.21"] * asked
        assert ask_all("near") == ["192.0.2.20" if STAYING[network] is PARIS else "192.0.2.21"
                                   for network in STAYING for _ in range(int(workers) * 4)]
        before = _metrics(metrics_port)
        assert ask_all("where") == expected
        after = _metrics(metrics_port)
        assert (after["gslb_answer_cache_misses_total"]
                == before["gslb_answer_cache_misses_total"]), "the cache was dropped"
        assert (after["gslb_answer_cache_hits_total"] - before["gslb_answer_cache_hits_total"]
                == len(expected))
    finally:
        server.stop()


CONTINENT_STEERING = """\
records:
  steered:
    type: A
    pools:
      eu: {members: [192.0.2.1]}
      na: {members: [192.0.2.2]}
      as: {members: [192.0.2.3]}
      world: {members: [192.0.2.9]}
    rules:
      - {geos: [EU], pool: eu}
      - {geos: [NA], pool: na}
      - {geos: [AS], pool: as}
      - pool: world
"""
POOLS = {"EU": "192.0.2.1", "NA": "192.0.2.2", "AS": "192.0.2.3"}
LONGEST_WAIT = 0.5  # seconds: generous on a busy machine; a second is a lost query to dnsperf


def _continent_answer(reader: maxminddb.Reader, network: ipaddress.IPv4Network) -> str:
    record = reader.get(network.network_address)
    continent = record.get("continent") if isinstance(record, dict) else None
    return POOLS.get((continent or {}).get("code"), "192.0.2.9")


class SteadyClient:
    """Queries from many client networks (ECS), one after another about every
    millisecond, each waited for up to a second: when each was sent, and how long its
    answer took (None: none came)."""

    def __init__(self, port: int, networks: list[ipaddress.IPv4Network]) -> None:
        self.wires = []
        for network in networks:
            query = dns.message.make_query("steered.geo.test.", "A", use_edns=0, options=[
                dns.edns.ECSOption(str(network.network_address), 24)])
            query.flags = 0
            self.wires.append(query.to_wire())
        self.port = port
        self.sent: list[tuple[float, float | None]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("127.0.0.1", self.port))
            sock.settimeout(1.0)
            while not self.stopping.is_set():
                for number, wire in enumerate(self.wires):
                    ident = number.to_bytes(2, "big")
                    sent = time.monotonic()
                    sock.send(ident + wire[2:])
                    took: float | None = None
                    try:
                        while took is None:
                            if sock.recv(4096)[:2] == ident:  # not a late answer to another
                                took = time.monotonic() - sent
                    except socket.timeout:
                        pass
                    self.sent.append((sent, took))
                    time.sleep(max(0.0, sent + 0.001 - time.monotonic()))
                    if self.stopping.is_set():
                        return


@dataclass(frozen=True)
class LargeDatabases:
    """Two City databases of a million networks each, the client networks of the steady
    stream, and one of them (`probe`) whose continent differs between the two files."""

    first: Path
    second: Path
    networks: list[ipaddress.IPv4Network]
    probe: ipaddress.IPv4Network
    before: str  # the probe's answer under the first file
    after: str  # and under the second


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> LargeDatabases:
    """Built once for the module's four cases (two seconds each database)."""
    folder = tmp_path_factory.mktemp("large-geoip")
    first, second = folder / "first.mmdb", folder / "second.mmdb"
    mmdbgen.build(first, "city", 1_000_000, seed=1, cities=5_000)
    mmdbgen.build(second, "city", 1_000_000, seed=2, cities=5_000)
    rng = random.Random(3)
    networks = [ipaddress.IPv4Network((rng.getrandbits(24) << 8, 24)) for _ in range(2_000)]
    with maxminddb.open_database(str(first)) as old, maxminddb.open_database(str(second)) as new:
        probe = next(n for n in networks if _continent_answer(old, n) != _continent_answer(new, n))
        return LargeDatabases(first, second, networks, probe,
                              _continent_answer(old, probe), _continent_answer(new, probe))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_answers_keep_flowing_while_a_large_database_is_replaced(tmp_path: Path, workers: str,
                                                                 large: LargeDatabases) -> None:
    """Issue 18: a database of a million networks renamed over the served one is walked
    and swapped in while a steady stream of steered queries goes on: none is lost, none
    waits long, and the answers follow the new file."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "geo.test.zone").write_text(ZONE)
    (zones / "geo.test.gslb.yaml").write_text(CONTINENT_STEERING)
    database, staged = tmp_path / "City.mmdb", tmp_path / "City.mmdb.next"
    shutil.copyfile(large.first, database)
    shutil.copyfile(large.second, staged)
    server = GslbProcess(zones, ["--geoip", str(database), "--workers", workers,
                                 "--geoip-check-interval", "1"])
    # Walking a million networks at start: under two busy loops, more than the default 15 s.
    server.start(["geo.test."], timeout=60)

    def answer() -> str:
        reply = server.query("steered.geo.test.", "A", use_edns=0,
                             options=[dns.edns.ECSOption(str(large.probe.network_address), 24)])
        return reply.answer[0][0].address

    client = SteadyClient(server.port, large.networks)
    try:
        assert answer() == large.before
        client.thread.start()
        time.sleep(1.0)
        os.replace(staged, database)
        replaced = time.monotonic()
        serving = 1 if workers == "1" else int(workers) + 1  # with the supervisor
        assert wait_until(lambda: server.log().count("serves the new database") == serving,
                          timeout=30, step=0.1), server.log()
        swapped = time.monotonic()
        time.sleep(1.0)
        client.stopping.set()
        client.thread.join(timeout=5)
        assert answer() == large.after
    finally:
        server.stop()
    lost = [sent for sent, took in client.sent if took is None]
    longest = max(took for _, took in client.sent if took is not None)
    # The stream ran through the walk and the swap (from the replace to the last process
    # serving the new file: under a second here, a few hundred queries).
    during = [sent for sent, _ in client.sent if replaced <= sent <= swapped]
    assert client.sent[0][0] < replaced and client.sent[-1][0] > swapped
    assert len(during) > 100, f"{len(during)} queries in {swapped - replaced:.2f} s"
    assert not lost, f"{len(lost)} of {len(client.sent)} queries unanswered"
    assert longest < LONGEST_WAIT, f"an answer took {longest:.3f} s"
