"""`closest` and `latency` answers from the C table, keyed by location classes.

A generated City database (bench/mmdbgen.py: networks all over IPv4 and IPv6, IPv4
aliased into the IPv6 tree as MaxMind's files do, a few thousand cities with
coordinates), one steered zone with a `closest` record, a `latency` record and one with
both, loaded as `gslb serve` loads it, with the native table and without. For thousands
of random client networks (IPv4 and IPv6, ECS of several lengths or none), once the
Python path has answered some clients, C must answer the others that share a class
with the very bytes the Python path gives them (which needs the same key, byte for
byte), and answer most of them: a few hundred cached answers serve thousands of
networks.
"""

from __future__ import annotations

import functools
import ipaddress
import random
import struct
import sys
from pathlib import Path

import dns.edns
import dns.message
import dns.name
import pytest

from gslb.server import fastpath
from gslb.server.node import Server
from gslb.steering.model import Health
from tests.unit.test_native_steering import loaded, steered_zone

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import mmdbgen  # noqa: E402

pytestmark = pytest.mark.skipif(not fastpath.available(), reason="the C extension is not built")

DATACENTERS = ("datacenters:\n  ams: {latitude: 52.37, longitude: 4.9}\n"
               "  iad: {latitude: 38.9, longitude: -77.0}\n"
               "  nrt: {latitude: 35.7, longitude: 139.7}\n"
               "  syd: {latitude: -33.9, longitude: 151.2}\n"
               "  lab: {latitude: 52.37, longitude: 4.9}\n")
MEMBERS = ("{value: 192.0.2.1, datacenter: ams, check: ams}, "
           "{value: 192.0.2.2, datacenter: iad, check: iad}, "
           "{value: 192.0.2.3, datacenter: nrt, check: nrt}, "
           "{value: 192.0.2.4, datacenter: syd, check: syd}, "
           "{value: 192.0.2.5, datacenter: lab, check: lab}")
RECORDS = "".join(
    f"  {name}:\n    type: A\n    ttl: 30\n    select: 2\n"
    f"    pools:\n      all: {{members: [{MEMBERS}]}}\n"
    f"    policies: {policies}\n    rules:\n      - {{pool: all}}\n"
    for name, policies in (("near", "[health, closest]"), ("fast", "[health, {latency: {tolerance_ms: 5}}]"),
                           ("both", "[health, latency, closest]"), ("plain", "[health, weighted]")))
NAMES = ("near", "fast", "both")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("geo") / "GeoIP2-City.mmdb"
    mmdbgen.build(path, "city", 20_000, seed=5, cities=2_000)
    return path


def client_network(rng: random.Random) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if rng.random() < 0.6:
        first = rng.choice([n for n in range(1, 224) if n not in mmdbgen.RESERVED_V4])
        address: int = first << 24 | rng.getrandbits(24)
        return ipaddress.IPv4Network((address, rng.choice([24, 24, 24, 22, 20, 16])), strict=False)
    top = rng.choice([0x2001 << 112, 0x24 << 120, 0x26 << 120, 0x2A << 120, 0x2002 << 112])
    address = top | rng.getrandbits(104)
    return ipaddress.IPv6Network((address, rng.choice([56, 56, 48, 40])), strict=False)


def ask(name: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network | None,
        rng: random.Random) -> bytes:
    """The A query tests/unit/test_answer_cache.py's `make` builds (a random ID, then RD
    and CD at random; with EDNS, and ECS for `network`), byte for byte, but put together
    from its question and OPT record, each made once by dnspython: a query made whole by
    dnspython each time was a third of this file's run (and of its run under ASan)."""
    ident, flags = rng.randrange(65536), rng.choice([0, 0x0100, 0x0010, 0x0110])
    return struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 1) + _question(name) + _opt(network)


@functools.cache
def _question(name: str) -> bytes:
    return dns.name.from_text(f"{name}.loc.test.").to_wire() + struct.pack("!HH", 1, 1)


@functools.cache
def _opt(network: ipaddress.IPv4Network | ipaddress.IPv6Network | None) -> bytes:
    """The OPT record dnspython writes after the root name's question (12 + 1 + 4 bytes)."""
    options = ([] if network is None else
               [dns.edns.ECSOption(str(network.network_address), network.prefixlen)])
    return dns.message.make_query(".", "A", use_edns=0, options=options).to_wire()[17:]


RTT = {  # regions of the made-up world, and networks, longest first where nested
    ("EU", "ams"): 10.0, ("EU", "iad"): 90.0, ("NA", "iad"): 12.0, ("NA", "ams"): 80.0,
    ("AS", "nrt"): 20.0, ("AS", "syd"): 60.0, ("OC", "syd"): 15.0, ("OC", "nrt"): 70.0,
    ("60.0.0.0/8", "syd"): 5.0, ("60.0.0.0/8", "ams"): 8.0, ("60.1.0.0/16", "iad"): 3.0,
    ("2a00::/12", "nrt"): 9.0,
}


def with_rtt(server: Server, rtt: dict[tuple[str, str], float], health: dict[str, Health],
             version: int) -> None:
    server.snapshot = server.snapshot.with_state(health, rtt, {}, version)


def compare(native: Server, python: Server, clients: list, rng: random.Random,
            fill: int) -> tuple[int, int]:
    """Fill the table with the first `fill` clients' queries through the Python path,
    then ask C for the rest: every answer it gives must be the Python path's. Returns
    (answered by C, asked)."""
    table = native.snapshot.answers.native.table  # type: ignore[union-attr]
    asked = [(ask(name, network, rng), host) for network, host in clients for name in NAMES]
    for wire, host in asked[:fill]:
        native.responder.respond(native.snapshot, wire, False, host, 0)
    from_table = 0
    for wire, host in asked[fill:]:
        got = table.answer(wire, host, 0)
        if got is None:
            native.responder.respond(native.snapshot, wire, False, host, 0)
            continue
        expected = python.responder.respond(python.snapshot, wire, False, host, 0)
        from_table += 1
        assert [got] == expected, (host, dns.message.from_wire(wire),
                                   dns.message.from_wire(got), dns.message.from_wire(expected[0]))
    return from_table, len(asked) - fill


def clients(rng: random.Random, count: int) -> list:
    out = []
    for _ in range(count):
        if rng.random() < 0.15:  # no ECS: the resolver's own address, cut to /24 or /56
            out.append((None, rng.choice(["60.1.2.3", "81.2.3.4", "2a00:1:2::7", "127.0.0.1"])))
        else:
            out.append((client_network(rng), "127.0.0.1"))
    return out


@pytest.mark.parametrize("geoip", [True, False], ids=["city", "no-database"])
def test_location_classes_answer_thousands_of_networks_in_c(tmp_path: Path, city: Path,
                                                            geoip: bool) -> None:
    zones = steered_zone(tmp_path, "loc.test.", RECORDS)
    text = (zones / "loc.test.gslb.yaml").read_text()
    (zones / "loc.test.gslb.yaml").write_text(text.replace("records:\n", DATACENTERS + "records:\n", 1))
    databases = (city,) if geoip else ()
    native, python = loaded("native", zones, databases), loaded("python", zones, databases)
    for server in (native, python):
        with_rtt(server, RTT, {}, 1)
    rng = random.Random(11)
    answered, asked = compare(native, python, clients(rng, 4000), rng, fill=1500)
    assert answered >= 0.75 * asked, (answered, asked)
    table = native.snapshot.answers.native.table  # type: ignore[union-attr]
    assert len(table) < 0.5 * 4000 * len(NAMES)  # classes, not networks

    # The RTT table changes (values, then keys): the same clients get the new decisions.
    faster = {**RTT, ("EU", "iad"): 1.0, ("60.1.0.0/16", "iad"): 50.0}
    fewer = {key: ms for key, ms in faster.items() if key[0] not in ("NA", "60.0.0.0/8")}
    for rtt, version in ((faster, 2), (fewer, 3)):
        for server in (native, python):
            with_rtt(server, rtt, {}, version)
        answered, asked = compare(native, python, clients(random.Random(12), 1500), rng, fill=600)
        assert answered >= 0.6 * asked, (answered, asked)

    # A datacenter goes down: `closest` picks the next one, in C too.
    for server in (native, python):
        with_rtt(server, fewer, {"ams": Health(up=False, source="test")}, 4)
    answered, asked = compare(native, python, clients(random.Random(13), 1500), rng, fill=600)
    assert answered >= 0.6 * asked, (answered, asked)


def test_a_latency_record_follows_a_changed_rtt_table_in_c(tmp_path: Path, city: Path) -> None:
    zones = steered_zone(tmp_path, "loc.test.", RECORDS)
    text = (zones / "loc.test.gslb.yaml").read_text()
    (zones / "loc.test.gslb.yaml").write_text(text.replace("records:\n", DATACENTERS + "records:\n", 1))
    native = loaded("native", zones, (city,))
    table = native.snapshot.answers.native.table  # type: ignore[union-attr]
    rng = random.Random(3)
    wire = ask("fast", ipaddress.ip_network("60.1.2.0/24"), rng)
    other = ask("fast", ipaddress.ip_network("60.1.9.0/24"), rng)  # the same RTT keys apply

    def answer(rtt: dict[tuple[str, str], float], version: int) -> set[str]:
        with_rtt(native, rtt, {}, version)
        native.responder.respond(native.snapshot, wire, False, "127.0.0.1", 0)
        got = table.answer(other, "127.0.0.1", 0)
        assert got is not None
        return {rr.address for rr in dns.message.from_wire(got).answer[0]}

    assert answer({("60.1.0.0/16", "iad"): 3.0, ("60.0.0.0/8", "syd"): 1.0}, 1) == {"192.0.2.2"}
    assert answer({("60.1.0.0/16", "iad"): 30.0, ("60.1.0.0/16", "nrt"): 4.0}, 2) == {"192.0.2.3"}
    assert answer({("60.0.0.0/8", "syd"): 1.0}, 3) == {"192.0.2.4"}


def test_a_replaced_database_renumbers_the_location_classes_in_place(tmp_path: Path,
                                                                      city: Path) -> None:
    """The City file is renamed over with another (other networks, places and
    coordinates): the server rebuilds its location map and classes into the same table,
    and C answers every client of a `closest` or `latency` record as a server started on
    the new file does: none of the answers cached under the old classes is served."""
    import os

    zones = steered_zone(tmp_path, "loc.test.", RECORDS)
    text = (zones / "loc.test.gslb.yaml").read_text()
    (zones / "loc.test.gslb.yaml").write_text(text.replace("records:\n", DATACENTERS + "records:\n", 1))
    served = tmp_path / "GeoIP2-City.mmdb"
    served.write_bytes(city.read_bytes())
    native, before = loaded("native", zones, (served,)), loaded("python", zones, (served,))
    for server in (native, before):
        with_rtt(server, RTT, {}, 1)
    rng = random.Random(21)
    asked = [(ask(name, network, rng), host) for network, host in clients(rng, 1500)
             for name in NAMES]
    for wire, host in asked:
        native.responder.respond(native.snapshot, wire, False, host, 0)
    table = native.snapshot.answers.native.table  # type: ignore[union-attr]
    entries = len(table)

    replacement = tmp_path / "next.mmdb"
    mmdbgen.build(replacement, "city", 20_000, seed=6, cities=2_000)
    os.replace(replacement, served)
    assert native.geo_changed() and native.refresh_geo()
    assert native.snapshot.answers.native.table is table and len(table) == entries
    after = loaded("python", zones, (served,))  # started on the new file
    with_rtt(after, RTT, {}, 1)
    moved = 0
    for wire, host in asked:
        expected = after.responder.respond(after.snapshot, wire, False, host, 0)
        got = table.answer(wire, host, 0)
        assert got is None or [got] == expected, (host, dns.message.from_wire(wire))
        moved += expected != before.responder.respond(before.snapshot, wire, False, host, 0)
    assert moved > 100, moved
    answered, count = compare(native, after, clients(random.Random(22), 3000), rng, fill=1500)
    assert answered >= 0.6 * count, (answered, count)
    assert not native.refresh_geo()  # nothing changed since
