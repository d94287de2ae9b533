"""`--geoip` files are checked on SIGHUP (and every 10 s): a new database renamed over the
old one steers the next queries, well before the 10-second check would have seen it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import urllib.request

import dns.edns
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import GslbProcess, free_port, wait_until
from tests.unit.load.test_geoip import city, write

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

NEAR_STEERING = """\
datacenters:
  paris: {latitude: 48.86, longitude: 2.35}
  berlin: {latitude: 52.52, longitude: 13.40}
records:
  where:
    type: A
    pools:
      fr: {members: [192.0.2.2]}
      de: {members: [192.0.2.3]}
    rules:
      - {geos: [FR], pool: fr}
      - pool: de
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
    """The 10-second check finds a new file: answers follow it, and every answer cached
    before still serves (the steering's rule maps are rebuilt, not the answer cache),
    save those of `closest`, which decide by the client's location."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "geo.test.zone").write_text(ZONE)
    (zones / "geo.test.gslb.yaml").write_text(NEAR_STEERING)
    database = write(tmp_path / "City.mmdb", "GeoLite2-City", {**STAYING, MOVING: PARIS})
    metrics_port = free_port()
    server = GslbProcess(zones, ["--geoip", str(database), "--workers", workers,
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
        os.replace(write(tmp_path / "City.mmdb.new", "GeoLite2-City", {**STAYING, MOVING: BERLIN}),
                   database)
        assert wait_until(lambda: answer("where", MOVING) == "192.0.2.3", timeout=25, step=0.2), \
            server.log()
        # every serving process has rebuilt (workers one after another; the supervisor too)
        assert wait_until(lambda: server.log().count("serves the new database")
                          == (1 if workers == "1" else int(workers) + 1), timeout=15), server.log()
        # `near` decides by the client's location: its cached answer went with the old file
        assert answer("near", MOVING) == "192.0.2.21"
        before = _metrics(metrics_port)
        assert ask_all("where") == expected
        after = _metrics(metrics_port)
        assert (after["gslb_answer_cache_misses_total"]
                == before["gslb_answer_cache_misses_total"]), "the cache was dropped"
        assert (after["gslb_answer_cache_hits_total"] - before["gslb_answer_cache_hits_total"]
                == len(expected))
    finally:
        server.stop()
