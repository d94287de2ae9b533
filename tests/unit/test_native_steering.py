"""Steered answers from the C table: the same bytes as the Python path, per client.

The demo zones' steering (weighted www2, failover api, CIDR rules on geo) loaded as
`gslb serve` loads it, twice: with the native table and without. For every client
address, ECS option and weighted-draw slot, the table's answer (when it has one) must be
what the Python responder gives for the same query, client and draw; and a state change
(a member marked down) must stop the table from serving what it decided before.
"""

from __future__ import annotations

import random
from pathlib import Path

import dns.edns
import dns.message
import pytest

from gslb.server import fastpath
from gslb.server.node import Server
from gslb.settings import Settings
from gslb.steering.model import Health
from tests.servers import DEMO_ZONES
from tests.unit.test_answer_cache import make

pytestmark = pytest.mark.skipif(not fastpath.available(), reason="the C extension is not built")
NAMES = ["www2.example.com.", "geo.example.com.", "api.example.com.", "WwW2.Example.COM."]
HOSTS = ["127.0.0.1", "10.1.2.3", "192.0.2.7", "::1", "2001:db8::1"]
VARIANTS = [
    {"use_edns": False},
    {"use_edns": 0},
    {"use_edns": 0, "options": [dns.edns.ECSOption("10.1.2.0", 24)]},
    {"use_edns": 0, "options": [dns.edns.ECSOption("10.200.0.0", 16)]},
    {"use_edns": 0, "options": [dns.edns.ECSOption("192.0.2.0", 24)]},
    {"use_edns": 0, "options": [dns.edns.ECSOption("2001:db8:1::", 48)]},
    {"use_edns": 0, "options": [dns.edns.ECSOption("0.0.0.0", 0)]},
]


# www.geo.test. A by continent: EU and NA have pools of their own, the rest "world".
CONTINENT_RECORD = (
    "  www:\n    type: A\n    ttl: 30\n    pools:\n"
    "      eu: {members: [192.0.2.1]}\n      na: {members: [192.0.2.2]}\n"
    "      world: {members: [192.0.2.3]}\n"
    "    rules:\n      - {geos: [EU], pool: eu}\n      - {geos: [NA], pool: na}\n"
    "      - {pool: world}\n")


def loaded(udp: str, zones: Path = DEMO_ZONES, geoip: tuple[Path, ...] = ()) -> Server:
    server = Server(Settings(zones_dir=zones, udp=udp, prewarm=0, geoip=geoip))
    assert server.load()
    return server


def steered_zone(tmp_path: Path, origin: str, records: str) -> Path:
    """A zones folder holding `origin` (SOA, NS) and its steering file with `records`
    (the YAML under `records:`)."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / f"{origin}zone").write_text(
        "$TTL 300\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n")
    (zones / f"{origin}gslb.yaml").write_text(f"zone: {origin}\nrecords:\n{records}")
    return zones


def queries(rng: random.Random) -> list[tuple[bytes, str, int]]:
    out = []
    for name in NAMES:
        for rdtype in ("A", "AAAA", "TXT"):
            for variant in VARIANTS:
                for host in HOSTS:
                    out.append((make(name, rdtype, variant, rng), host, rng.randrange(64)))
    return out


def test_steered_answers_from_the_table_equal_the_python_path() -> None:
    rng = random.Random(29)
    native, python = loaded("native"), loaded("python")
    table = native.snapshot.answers.native.table  # type: ignore[union-attr]
    asked = queries(rng)
    for wire, host, slot in asked:  # fill the table through the Python responder
        native.responder.respond(native.snapshot, wire, False, host, slot)
    from_table = 0
    for wire, host, slot in asked:
        expected = python.responder.respond(python.snapshot, wire, False, host, slot)
        got = table.answer(wire, host, slot)
        if got is None:
            continue
        from_table += 1
        assert [got] == expected, (host, slot, dns.message.from_wire(wire),
                                   dns.message.from_wire(got), dns.message.from_wire(expected[0]))
    assert from_table > len(asked) * 0.9


def test_every_slot_of_a_weighted_name_is_its_own_entry() -> None:
    native, python = loaded("native"), loaded("python")
    table = native.snapshot.answers.native.table  # type: ignore[union-attr]
    wire = make("www2.example.com.", "A", {"use_edns": 0}, random.Random(1))
    seen = set()
    for slot in range(64):
        native.responder.respond(native.snapshot, wire, False, "127.0.0.1", slot)
    for slot in range(64):
        got = table.answer(wire, "127.0.0.1", slot)
        assert [got] == python.responder.respond(python.snapshot, wire, False, "127.0.0.1", slot)
        seen.add(dns.message.from_wire(got).answer[0][0].address)
    assert seen == {"192.0.2.10", "192.0.2.11"}  # 3:1, weight 0 never


def test_a_state_change_stops_the_table_serving_the_old_decision() -> None:
    native = loaded("native")
    table = native.snapshot.answers.native.table  # type: ignore[union-attr]
    wire = make("api.example.com.", "A", {"use_edns": 0}, random.Random(2))
    native.responder.respond(native.snapshot, wire, False, "127.0.0.1", 0)
    before = table.answer(wire, "127.0.0.1", 0)
    assert dns.message.from_wire(before).answer[0][0].address == "192.0.2.20"
    down = {"api-primary": Health(up=False, source="static")}
    native.snapshot = native.snapshot.with_state(down, {}, {}, 1)
    assert table is native.snapshot.answers.native.table  # same table, static entries kept
    assert table.answer(wire, "127.0.0.1", 0) is None  # the old decision is not served
    native.responder.respond(native.snapshot, wire, False, "127.0.0.1", 0)
    after = table.answer(wire, "127.0.0.1", 0)
    assert dns.message.from_wire(after).answer[0][0].address == "192.0.2.21"


def test_thousands_of_client_networks_share_a_few_geo_answers(tmp_path) -> None:
    """A continent rule over a GeoIP database of many small networks: every client
    network sits in its own block, but the answer depends only on the rule and on the
    scope the block gives it. So after a few queries have filled the table, a thousand
    other client networks are answered by C with the Python path's bytes (ECS scope
    included), and the table holds one entry per (rule, scope), not one per network."""
    from tests.unit.load.test_geoip import city, write

    rng = random.Random(7)
    networks: dict[str, dict] = {}
    for i in range(1500):  # /20 to /24 networks all over 1.0.0.0/8 .. 99.0.0.0/8
        prefix = rng.choice([20, 22, 24])
        start = (rng.randrange(1, 100) << 24) | (rng.randrange(1 << 24) & ~((1 << (32 - prefix)) - 1))
        network = f"{start >> 24}.{start >> 16 & 255}.{start >> 8 & 255}.{start & 255}/{prefix}"
        networks[network] = city("EU", "FR") if i % 2 else city("NA", "US")
    geoip = write(tmp_path / "GeoLite2-City.mmdb", "GeoLite2-City", networks, ip_version=4)
    zones = steered_zone(tmp_path, "geo.test.", CONTINENT_RECORD)
    native, python = loaded("native", zones, (geoip,)), loaded("python", zones, (geoip,))
    table = native.snapshot.answers.native.table  # type: ignore[union-attr]
    clients = [network.split("/")[0] for network in networks]
    asked = [make("www.geo.test.", "A", {"use_edns": 0, "options": [
        dns.edns.ECSOption(address, 24)]}, rng) for address in clients]
    for wire in asked[:300]:  # the Python path renders the first of each (rule, scope)
        native.responder.respond(native.snapshot, wire, False, "127.0.0.1", 0)
    entries = len(table)
    assert entries <= 12, entries  # 3 rules x a few block lengths, not 300 networks
    from_table = 0
    for wire in asked[300:]:
        expected = python.responder.respond(python.snapshot, wire, False, "127.0.0.1", 0)
        got = table.answer(wire, "127.0.0.1", 0)
        if got is None:
            native.responder.respond(native.snapshot, wire, False, "127.0.0.1", 0)
            continue
        from_table += 1
        assert [got] == expected, (dns.message.from_wire(got), dns.message.from_wire(expected[0]))
    assert from_table >= 0.99 * len(asked[300:]), from_table


def test_hash_records_are_decided_in_c_per_slot_of_the_client_network(tmp_path) -> None:
    """`hash` sends a client network to one of HASH_SLOTS slots and orders the members by
    slot: C computes the same slot as Python, so a network whose slot another network
    already filled is answered in C, with the bytes the Python path gives it."""
    import ipaddress

    from gslb.steering.model import hash_slot

    members = ", ".join(f"192.0.2.{i}" for i in range(1, 9))
    zones = steered_zone(tmp_path, "h.test.", (
        "  sticky:\n    type: A\n    ttl: 30\n"
        f"    pools:\n      all: {{members: [{members}]}}\n    policies: [health, hash]\n"
        "    rules:\n      - {pool: all}\n"))
    native, python = loaded("native", zones), loaded("python", zones)
    table = native.snapshot.answers.native.table  # type: ignore[union-attr]
    by_slot: dict[tuple[int, int], list[str]] = {}
    for i in range(6000):  # /24 networks (v4) and /56 networks (v6), grouped by slot
        text = f"{10 + i // 65536}.{i // 256 % 256}.{i % 256}.0/24" if i % 2 else \
            f"2001:db8:{i:x}::/56"
        network = ipaddress.ip_network(text)
        by_slot.setdefault((network.version, hash_slot(network)), []).append(text)
    pairs = [networks[:2] for networks in by_slot.values() if len(networks) >= 2][:200]
    assert len(pairs) == 200
    rng = random.Random(3)

    def ask(network: str) -> bytes:
        address, prefix = network.split("/")
        return make("sticky.h.test.", "A", {"use_edns": 0, "options": [
            dns.edns.ECSOption(address, int(prefix))]}, rng)

    answers = set()
    for first, second in pairs:
        native.responder.respond(native.snapshot, ask(first), False, "127.0.0.1", 0)
        wire = ask(second)
        got = table.answer(wire, "127.0.0.1", 0)
        assert got is not None, second
        assert [got] == python.responder.respond(python.snapshot, wire, False, "127.0.0.1", 0)
        answers.add(dns.message.from_wire(got).answer[0][0].address)
    assert len(answers) == 8  # the slots spread over every member


def test_a_draw_that_cannot_change_the_answer_is_not_part_of_the_key(tmp_path) -> None:
    """`weighted` over pools of one member each: every draw slot gives the same answer,
    so the 64 slots share one cached answer instead of filling 64 entries."""
    zones = steered_zone(tmp_path, "d.test.", (
        "  one:\n    type: A\n    ttl: 30\n"
        "    pools:\n      lo: {members: [192.0.2.1]}\n      world: {members: [192.0.2.2]}\n"
        "    rules:\n      - {subnets: [10.0.0.0/8], pool: lo}\n      - {pool: world}\n"
        "    policies: [health, weighted]\n"))
    native = loaded("native", zones)
    table = native.snapshot.answers.native.table  # type: ignore[union-attr]
    wire = make("one.d.test.", "A", {"use_edns": 0}, random.Random(1))
    native.responder.respond(native.snapshot, wire, False, "127.0.0.1", 0)
    assert len(table) == 1
    for slot in range(64):
        got = table.answer(wire, "127.0.0.1", slot)
        assert got is not None and dns.message.from_wire(got).answer[0][0].address == "192.0.2.2"
    assert len(table) == 1


def test_a_replaced_database_keeps_the_table_and_its_answers_follow_the_new_file(tmp_path) -> None:
    """The GeoIP file is renamed over with one whose networks changed continent: the
    server rebuilds the rule maps into the same table, which keeps its entries (filed by
    rule and scope) and answers every client as a server started on the new file does."""
    import os

    from tests.unit.load.test_geoip import city, write

    rng = random.Random(11)
    old: dict[str, dict] = {}
    for i in range(600):
        start = (rng.randrange(1, 100) << 24) | (rng.randrange(1 << 16) << 8)
        old[f"{start >> 24}.{start >> 16 & 255}.{start >> 8 & 255}.0/24"] = (
            city("EU", "FR") if i % 2 else city("NA", "US"))
    new = {network: city("NA", "US") if record["continent"]["code"] == "EU" and i % 3
           else record for i, (network, record) in enumerate(old.items())}
    served = write(tmp_path / "GeoLite2-City.mmdb", "GeoLite2-City", old, ip_version=4)
    zones = steered_zone(tmp_path, "geo.test.", CONTINENT_RECORD)
    native = loaded("native", zones, (served,))
    table = native.snapshot.answers.native.table  # type: ignore[union-attr]
    asked = [make("www.geo.test.", "A", {"use_edns": 0, "options": [
        dns.edns.ECSOption(network.split("/")[0], 24)]}, rng) for network in old]
    for wire in asked:
        native.responder.respond(native.snapshot, wire, False, "127.0.0.1", 0)
    entries = len(table)

    replacement = write(tmp_path / "next.mmdb", "GeoLite2-City", new, ip_version=4)
    os.replace(replacement, served)
    assert native.geo_changed() and native.refresh_geo()
    assert native.snapshot.answers.native.table is table and len(table) == entries
    python = loaded("python", zones, (served,))  # started on the new file
    moved = 0
    for wire, network in zip(asked, old):
        expected = python.responder.respond(python.snapshot, wire, False, "127.0.0.1", 0)
        got = table.answer(wire, "127.0.0.1", 0)
        assert [got] == expected, (network, dns.message.from_wire(got),
                                   dns.message.from_wire(expected[0]))
        moved += old[network] is not new[network]
    assert moved > 100
    assert not native.refresh_geo()  # nothing changed since


DROP_SCRIPT = """
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[2])
from tests.unit.test_native_steering import CONTINENT_RECORD, loaded, steered_zone

native = loaded("native", steered_zone(Path(sys.argv[1]), "geo.test.", CONTINENT_RECORD))
store = native.snapshot.answers.native
table, count = store.table, len(store.records)
freed = []


class Map(bytes):
    def __del__(self) -> None:
        table.set_versions(bytes(4 * count))  # takes the table's lock
        freed.append(self)


table.set_blocks(0, Map(bytes(4)), Map(b"\\x00"), Map(bytes(4)), Map(bytes(16)), Map(b"\\x00"),
                 Map(bytes(4)))
table.set_blocks(0, bytes(4), b"\\x00", bytes(4), bytes(16), b"\\x00", bytes(4))
print(f"freed {len(freed)} after the lock")
"""


def test_a_replaced_rule_map_is_freed_once_the_table_lets_its_lock_go(tmp_path: Path) -> None:
    """A GeoIP rebuild swaps in rule and location maps of tens of megabytes, and freeing
    the old ones gives their pages back to the system: milliseconds the UDP loop must not
    wait for the table's lock. The old map here, as it is freed, calls the table, which
    takes that lock: freed under it, the call would wait for itself for ever."""
    import subprocess
    import sys

    from tests.servers import ROOT

    script = tmp_path / "drop.py"
    script.write_text(DROP_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.stdout.strip() == "freed 6 after the lock", done.stderr
