"""Steering end to end: real `gslb serve`, real `dig +subnet=...`, real MaxMind databases
written here with mmdb-writer, and `gslb explain` as a subprocess.

Two servers for the whole module: the demo zones (copied, with a state file and one extra
`last_known_good` record) and a geo zone served with `--geoip`.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import dns.message
import dns.query
import dns.rdatatype
import pytest

if shutil.which("dig") is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("dig (bind9-dnsutils) is required in CI")
    pytest.skip("dig (bind9-dnsutils) not installed", allow_module_level=True)

from tests.e2e.test_smoke import Dig, dig  # noqa: E402
from tests.servers import DEMO_ZONES, ROOT, GslbProcess  # noqa: E402
from tests.unit.load.test_geoip import city, write  # noqa: E402

ECS_LINE = re.compile(r"; CLIENT-SUBNET: (\S+)/(\d+)/(\d+)")

LKG_RECORD = """
  # Added by tests/e2e/test_steering.py: all_down last_known_good.
  lkg:
    type: A
    ttl: 10
    pools:
      main:
        members:
          - {value: 192.0.2.40, priority: 1, check: lkg-a}
          - {value: 192.0.2.41, priority: 2, check: lkg-b}
    rules: [{pool: main}]
    policies: [health, priority]
    all_down: last_known_good
"""


def addresses(reply: Dig) -> list[str]:
    return sorted(r.split()[-1] for r in reply.records("ANSWER") if r.split()[3] in ("A", "AAAA"))


def ecs_scope(reply: Dig) -> tuple[str, int, int] | None:
    """(address, source, scope) from the reply's CLIENT-SUBNET line."""
    match = ECS_LINE.search(reply.text)
    return (match.group(1), int(match.group(2)), int(match.group(3))) if match else None


def poll(fetch: Callable[[], object], expected: object, timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        got = fetch()
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


# --- the demo zones ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory,
         udp_path: str) -> Iterator[tuple[GslbProcess, Path]]:
    zones = tmp_path_factory.mktemp("demo") / "zones"
    shutil.copytree(DEMO_ZONES, zones)
    steering = zones / "example.com.gslb.yaml"  # the record goes first under records:
    steering.write_text(steering.read_text().replace("\nrecords:\n", "\nrecords:" + LKG_RECORD, 1))
    state = zones.parent / "state.yaml"
    state.write_text("health: {api-primary: down, lkg-a: down}\n")
    server = GslbProcess(zones, ["--state", str(state)])
    server.start(["example.com.", "sub.example.com.", "example.net."])
    yield server, state
    server.stop()


def test_cidr_rules_and_ecs_scope(demo: tuple[GslbProcess, Path]) -> None:
    server, _ = demo
    internal = dig(server, "geo.example.com", "A", "+subnet=10.1.2.3/24")
    assert internal.status == "NOERROR" and "aa" in internal.flags
    assert addresses(internal) == ["10.0.0.80"]
    assert ecs_scope(internal) == ("10.1.2.0", 24, 8)  # the 10.0.0.0/8 rule holds on /8
    public = dig(server, "geo.example.com", "A", "+subnet=192.0.2.0/24")
    assert addresses(public) == ["192.0.2.30", "198.51.100.30"]  # select: 2
    # The widest aligned block around 192.0.2.0 that misses 10.0.0.0/8: 128.0.0.0/1.
    assert ecs_scope(public) == ("192.0.2.0", 24, 1)
    plain = dig(server, "geo.example.com", "A")  # no ECS, from 127.0.0.1: the catch-all
    assert addresses(plain) == ["192.0.2.30", "198.51.100.30"] and ecs_scope(plain) is None
    static = dig(server, "www.example.com", "A", "+subnet=10.1.2.3/24")
    assert ecs_scope(static) == ("10.1.2.0", 24, 0)  # not steered: scope 0
    steered_static = dig(server, "www2.example.com", "A", "+subnet=10.1.2.3/24")
    assert ecs_scope(steered_static) == ("10.1.2.0", 24, 0)  # steered, but by nothing client-dependent
    opt_out = dig(server, "geo.example.com", "A", "+subnet=0.0.0.0/0")
    assert ecs_scope(opt_out) == ("0.0.0.0", 0, 0)  # RFC 7871 opt-out: no scope claimed
    six = dig(server, "geo.example.com", "A", "+subnet=2001:db8:1::/56")
    assert ecs_scope(six) == ("2001:db8:1::", 56, 0)  # no IPv6 rule: nothing depends on it
    other = dig(server, "www2.example.com", "AAAA")
    assert other.status == "NOERROR" and other.records("ANSWER") == []  # NODATA, not NXDOMAIN


def test_weighted_shares(demo: tuple[GslbProcess, Path]) -> None:
    """2,000 UDP queries, each from a new socket (a new source port, so both workers
    answer): 192.0.2.10 and .11 in 3:1 within 4 points (more than 4 standard deviations
    of a binomial(2000, 0.75)); .12 (weight 0) never."""
    server, _ = demo
    counts: collections.Counter[str] = collections.Counter()
    ports = set()
    for _ in range(2000):
        query = dns.message.make_query("www2.example.com", "A")
        reply, port = _udp_with_port(query, server)
        counts.update(rd.address for rrset in reply.answer for rd in rrset)
        ports.add(port)
    assert len(ports) > 100
    assert sum(counts.values()) == 2000 and set(counts) <= {"192.0.2.10", "192.0.2.11"}
    share = counts["192.0.2.10"] / 2000
    assert abs(share - 0.75) < 0.04, counts


def _udp_with_port(query: dns.message.Message, server: GslbProcess) -> tuple[dns.message.Message, int]:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(2)
        sock.sendto(query.to_wire(), (server.host, server.port))
        data = sock.recv(65535)
        return dns.message.from_wire(data), sock.getsockname()[1]


def test_failover_follows_the_state_file(demo: tuple[GslbProcess, Path]) -> None:
    server, state = demo

    def api() -> list[str]:
        return addresses(dig(server, "api.example.com", "A"))

    def lkg() -> list[str]:
        return addresses(dig(server, "lkg.example.com", "A"))

    assert api() == ["192.0.2.21"]  # api-primary down: priority 2
    assert lkg() == ["192.0.2.41"]
    state.write_text("health: {api-primary: down, api-secondary: down, lkg-a: down}\n")
    server.signal(signal.SIGHUP)
    assert poll(api, ["198.51.100.20"]) == ["198.51.100.20"]  # main exhausted: fallback dr
    state.write_text("health: {api-primary: down, api-secondary: down, api-dr: down,"
                     " lkg-a: down, lkg-b: down}\n")
    server.signal(signal.SIGHUP)
    # all down: backup_pool dr, health ignored (the same address, so poll on lkg)
    assert poll(lkg, ["192.0.2.41"]) == ["192.0.2.41"]  # last known good, not fail_open's .40
    time.sleep(0.5)
    assert api() == ["198.51.100.20"] and lkg() == ["192.0.2.41"]
    state.write_text("health: {api-primary: up, lkg-a: up}\n")
    server.signal(signal.SIGHUP)
    assert poll(api, ["192.0.2.20"]) == ["192.0.2.20"]
    assert lkg() == ["192.0.2.40"]
    state.write_text("health: {api-primary: [broken\n")  # a broken file keeps the last state
    server.signal(signal.SIGHUP)
    time.sleep(1.0)
    assert api() == ["192.0.2.20"]
    log = server.log()
    assert f"{state}:2: invalid YAML" in log  # the unclosed [ meets the end of the file
    assert "; the previous health and latency state keeps serving" in log


def test_axfr_sends_only_what_anyone_may_get(demo: tuple[GslbProcess, Path]) -> None:
    """A secondary does not steer: the transfer carries, per steered name, the catch-all
    pool's enabled members with a positive weight (of the preferred priority), never a
    weight-0, disabled, failover-only or subnet-restricted address."""
    server, _ = demo
    rrsets: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for message in dns.query.xfr(server.host, "example.com", port=server.port, timeout=5,
                                   relativize=False):
        for rrset in message.answer:
            for rd in rrset:
                rrsets[(rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype))].add(rd.to_text())
    assert rrsets[("www2.example.com.", "A")] == {"192.0.2.10", "192.0.2.11"}  # not weight-0 .12
    assert rrsets[("api.example.com.", "A")] == {"192.0.2.20"}  # not the priority-2 or dr ones
    assert rrsets[("geo.example.com.", "A")] == {"192.0.2.30", "198.51.100.30"}  # not 10.0.0.80


# --- gslb explain -----------------------------------------------------------------------


def explain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gslb.cli", "explain", *args, "--zones", "zones"],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)


def _trace_and_answer(out: str) -> tuple[dict[str, str], list[str], int | None]:
    trace, _, answer = out.partition("DNS answer (the same path `gslb serve` takes):")
    lines = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in trace.splitlines()
             if line.strip() and len(line.split(None, 1)) == 2}
    values = sorted(line.split()[-1] for line in answer.splitlines() if " IN A " in line)
    scope = re.search(r"option ECS \S+ scope/(\d+)", answer)
    return lines, values, int(scope.group(1)) if scope else None


def test_explain_agrees_with_the_dns_answer() -> None:
    done = explain("www2.example.com", "A", "--client", "127.0.0.1", "--ecs", "10.1.2.0/24")
    assert done.returncode == 0, done.stderr
    trace, values, scope = _trace_and_answer(done.stdout)
    assert trace["client"] == "10.1.2.0/24 (EDNS Client Subnet)"
    assert trace["rule"].startswith("rule 1: catch-all -> pool web")
    assert "weighted" in trace and "health" in trace
    assert trace["result"] == "noerror: 192.0.2.10" and values == ["192.0.2.10"]
    assert (trace["scope"], scope) == ("/0", 0)
    assert trace["ttl"] == "30"
    done = explain("geo.example.com", "--client", "192.0.2.1", "--ecs", "10.9.8.0/24")
    trace, values, scope = _trace_and_answer(done.stdout)
    assert trace["result"] == "noerror: 10.0.0.80" and values == ["10.0.0.80"]
    assert (trace["scope"], scope) == ("/8", 8)


def test_explain_for_names_that_are_not_steered_and_bad_input() -> None:
    done = explain("www.example.com", "A", "--client", "127.0.0.1")
    assert done.returncode == 0
    assert "www.example.com. A is not steered" in done.stdout
    assert "web.example.com. 3600 IN A 192.0.2.80" in done.stdout
    done = explain("www2.example.com", "--client", "not-an-ip")
    assert done.returncode == 2 and "--client 'not-an-ip' is not an IP address" in done.stderr
    done = explain("www2.example.com", "--client", "127.0.0.1", "--ecs", "10.1.2.0/99")
    assert done.returncode == 2 and "--ecs" in done.stderr


# --- geo with real MaxMind databases ------------------------------------------------------

CITY = {
    # Two adjacent French /25s and a French /24 next to them: one /23 after merging.
    "198.51.100.0/25": city("EU", "FR", "IDF", 48.86, 2.35),
    "198.51.100.128/25": city("EU", "FR", "ARA", 45.76, 4.84),
    "198.51.101.0/24": city("EU", "FR", None, 46.0, 2.0),
    # One /24 split between Germany and the United States.
    "203.0.113.0/25": city("EU", "DE", None, 52.52, 13.4),
    "203.0.113.128/25": city("NA", "US", "CA", 37.77, -122.42),
    # IPv6: two Japanese /41s, one /40 after merging.
    "2001:db8:100::/41": city("AS", "JP", None, 35.68, 139.69),
    "2001:db8:180::/41": city("AS", "JP", None, 35.68, 139.69),
}
ASN = {
    "192.0.2.0/24": {"autonomous_system_number": 64512},
    "198.51.100.0/24": {"autonomous_system_number": 64500},  # French too: rule fr still
}
GEO_YAML = """\
records:
  where:
    type: A
    ttl: 60
    pools:
      asn: {members: [192.0.2.1]}
      fr: {members: [192.0.2.2]}
      de: {members: [192.0.2.3]}
      us: {members: [192.0.2.4]}
      asia: {members: [192.0.2.5]}
      world: {members: [192.0.2.9]}
    rules:
      - {asns: [64512], pool: asn}
      - {geos: [EU-FR], pool: fr}
      - {geos: [DE], pool: de}
      - {geos: [NA-US], pool: us}
      - {geos: [AS], pool: asia}
      - pool: world
"""
GEO_ZONE = """\
$ORIGIN geo.test.
$TTL 3600
@     IN SOA ns1.geo.test. hostmaster.geo.test. 1 7200 3600 1209600 300
      IN NS  ns1.geo.test.
ns1   IN A   192.0.2.53
"""


@pytest.fixture(scope="module")
def geo_server(tmp_path_factory: pytest.TempPathFactory, udp_path: str) -> Iterator[GslbProcess]:
    base = tmp_path_factory.mktemp("geo")
    zones = base / "zones"
    zones.mkdir()
    (zones / "geo.test.zone").write_text(GEO_ZONE)
    (zones / "geo.test.gslb.yaml").write_text(GEO_YAML)
    city_db = write(base / "GeoLite2-City.mmdb", "GeoLite2-City", CITY)
    asn_db = write(base / "GeoLite2-ASN.mmdb", "GeoLite2-ASN", ASN, ip_version=4)
    server = GslbProcess(zones, ["--geoip", str(city_db), "--geoip", str(asn_db), "--workers", "1"])
    server.start(["geo.test."])
    yield server
    server.stop()


@pytest.mark.parametrize("subnet,answer,scope", [
    ("198.51.100.0/24", "192.0.2.2", 23),   # FR /25 + /25 + /24 merged (with another ASN)
    ("198.51.101.7/24", "192.0.2.2", 23),
    ("198.51.100.200/32", "192.0.2.2", 23),  # /32 is cut to /24 first
    ("203.0.113.0/24", "192.0.2.3", 24),    # the split /24: no merging (the block is /25)
    ("192.0.2.0/24", "192.0.2.1", 24),      # ASN rule, no City data
    ("198.51.102.0/24", "192.0.2.9", 23),   # unknown: the catch-all, on the gap's block
    ("2001:db8:100::/56", "192.0.2.5", 40),  # JP /41 + /41 merged
    ("2001:db8:1c0:ff00::/56", "192.0.2.5", 40),
    ("2001:db8:200::/56", "192.0.2.9", 39),  # next to it, unknown
])
def test_geo_answers_and_scopes(geo_server: GslbProcess, subnet: str, answer: str, scope: int) -> None:
    reply = dig(geo_server, "where.geo.test", "A", f"+subnet={subnet}")
    assert reply.status == "NOERROR"
    assert addresses(reply) == [answer]
    assert ecs_scope(reply)[2] == scope  # type: ignore[index]


def test_geo_split_network_truncated_to_24(geo_server: GslbProcess) -> None:
    """ECS is cut to /24 before use (RFC 7871 section 11.1), so the US half of the split
    /24 is answered as the /24 is: by its first address (Germany), with scope /24."""
    reply = dig(geo_server, "where.geo.test", "A", "+subnet=203.0.113.200/32")
    assert addresses(reply) == ["192.0.2.3"] and ecs_scope(reply) == ("203.0.113.200", 32, 24)


def test_explain_shows_the_geo_lookup(geo_server: GslbProcess) -> None:
    zones = geo_server.zones
    city_db, asn_db = zones.parent / "GeoLite2-City.mmdb", zones.parent / "GeoLite2-ASN.mmdb"
    done = subprocess.run(
        [sys.executable, "-m", "gslb.cli", "explain", "where.geo.test", "--client", "127.0.0.1",
         "--ecs", "198.51.100.0/24", "--zones", str(zones), "--geoip", str(city_db),
         "--geoip", str(asn_db)], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    trace, values, scope = _trace_and_answer(done.stdout)
    assert trace["location"].startswith("EU-FR-IDF: database GeoLite2-City+GeoLite2-ASN")
    assert "ASN 64500" in trace["location"]
    assert trace["rule"].startswith("rule 2: geos EU-FR -> pool fr")
    assert values == ["192.0.2.2"] and (trace["scope"], scope) == ("/23", 23)
