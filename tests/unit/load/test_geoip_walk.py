"""The C walk of MaxMind databases (`gslb.steering._geomap`, through `GeoDatabases.table`)
against maxminddb, on databases generated here.

The databases have nested IPv4 networks (a later insert overrides part of an earlier one),
IPv6 networks, the IPv4 aliases (::ffff:0:0/96 and 2002::/16 pointing at the IPv4
subtree) or real IPv6 subtrees in their place, records that are empty maps, strings or
half-filled, ASN numbers of every integer type, and 24-, 28- and 32-bit records. For
each, two checks:

- the rule map built from the walk has exactly the blocks (rule and ECS scope) of the
  way gslb built them before the walk existed: every network from maxminddb's iteration,
  converted with `location_from_record`, merged per address with `merge_locations`,
  classified with `first_rule` (`reference_blocks` below);
- the rule it gives for random addresses is `first_rule` of what maxminddb's own lookup
  says (`GeoDatabases.locate`), outside the IPv4 ranges of the IPv6 family (::/96 and the
  aliases are IPv4's: both ways leave them unknown).
"""

from __future__ import annotations

import bisect
import ipaddress
import random
import sys
import tracemalloc
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import maxminddb
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from gslb.load.geoip import GeoDatabases, GeoIPError, location_from_record
from gslb.steering.engine import MAX_SCOPE
from gslb.steering.geo import (ALIAS, HAS_LATITUDE, HAS_LONGITUDE, UNKNOWN, RuleMap, _cidrs, first_rule,
                               merge_locations)
from gslb.steering.model import Rule

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import mmdbgen  # noqa: E402

BITS = {4: 32, 6: 128}
CONTINENTS = ["EU", "NA", "AS"]
COUNTRIES = {"EU": ["FR", "DE"], "NA": ["US", "CA"], "AS": ["JP"]}
IPV4_RANGES_OF_IPV6 = [ip_network("::/96"), ip_network("::ffff:0:0/96"), ip_network("2002::/16")]


def city_record(rng: random.Random) -> Any:
    """A City record, or something odd a file may hold instead."""
    kind = rng.randrange(10)
    if kind == 0:
        return {}
    if kind == 1:
        return "not a map"
    if kind == 2:
        return {"continent": {"names": {"en": "x"}}, "subdivisions": []}
    continent = rng.choice(CONTINENTS)
    country = rng.choice(COUNTRIES[continent])
    record: dict[str, Any] = {"continent": {"code": continent, "geoname_id": 1},
                              "country": {"iso_code": country, "names": {"en": country}},
                              "location": {"latitude": 1.5, "longitude": 2.5}}
    if rng.random() < 0.5:
        record["subdivisions"] = [{"iso_code": rng.choice(["A", "B"])}, {"iso_code": "Z"}]
    if kind == 3:
        record["autonomous_system_number"] = 64500  # an ASN in a City record
    return record


def v4_network(rng: random.Random) -> str:
    prefix = rng.randrange(8, 29)
    return str(ip_network((rng.choice([10, 11, 192, 198]) << 24 | rng.getrandbits(24), prefix),
                          strict=False))


def v6_network(rng: random.Random, mapped: bool) -> str:
    choice = rng.randrange(6 if mapped else 4)
    if choice < 3:  # 2001:db8::/32 and around
        base, prefix = 0x20010DB8 << 96 | rng.getrandbits(96), rng.randrange(30, 65)
    elif choice == 3:
        base, prefix = 0x2A << 120 | rng.getrandbits(120), rng.randrange(12, 49)
    elif choice == 4:  # a real IPv6 subtree where the IPv4-mapped alias would be
        base, prefix = 0xFFFF << 32 | rng.getrandbits(32), rng.randrange(100, 121)
    else:  # and in 6to4
        base, prefix = 0x2002 << 112 | rng.getrandbits(112), rng.randrange(20, 49)
    return str(ip_network((base, prefix), strict=False))


def write(path: Path, database_type: str, networks: list[tuple[str, Any]], ip_version: int,
          int_type: str = "auto") -> Path:
    writer = MMDBWriter(ip_version=ip_version, database_type=database_type,
                        ipv4_compatible=ip_version == 6, int_type=int_type)  # type: ignore[arg-type]
    for network, record in networks:
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def random_city(path: Path, rng: random.Random, mapped: bool) -> Path:
    networks = [(v4_network(rng), city_record(rng)) for _ in range(150)]
    networks += [(v6_network(rng, mapped), city_record(rng)) for _ in range(80)]
    return write(path, "GeoIP2-City", networks, 6)


def random_asn(path: Path, rng: random.Random, ip_version: int, int_type: str) -> Path:
    def asn() -> Any:
        return {"autonomous_system_number": rng.choice([64500, 64501, 64502, 65000]),
                "autonomous_system_organization": "x"} if rng.random() < 0.9 else {}
    networks = [(v4_network(rng), asn()) for _ in range(120)]
    if ip_version == 6:
        networks += [(v6_network(rng, False), asn()) for _ in range(40)]
    return write(path, "GeoLite2-ASN", networks, ip_version, int_type)


def random_rules(rng: random.Random) -> list[Rule]:
    geos = ["EU", "NA", "AS", "FR", "EU-DE", "NA-US", "NA-US-A", "EU-FR-B", "AS-JP"]
    rules = []
    for i in range(rng.randrange(1, 5)):
        subnets = tuple(ip_network(n) for n in rng.sample(
            ["10.0.0.0/9", "192.0.0.0/12", "2001:db8::/33", "2001:db8:8000::/40"], rng.randrange(0, 2)))
        asns = tuple(rng.sample([64500, 64501, 64502], rng.randrange(0, 2)))
        picked = tuple(rng.sample(geos, rng.randrange(0 if subnets or asns else 1, 3)))
        rules.append(Rule(f"p{i}", subnets=subnets, geos=picked, asns=asns))
    if rng.random() < 0.7:
        rules.append(Rule("rest"))
    return rules


Rows = list[tuple[list[int], list[tuple[int, int, Any]]]]


def iterated(paths: list[Path], version: int) -> Rows:
    """Each database's networks of the family from maxminddb's iteration (starts, rows)."""
    per_database = []
    for path in paths:
        reader = maxminddb.open_database(str(path))
        kind = reader.metadata().database_type
        rows = sorted((int(n.network_address), int(n.broadcast_address), location_from_record(r, kind))
                      for n, r in reader if n.version == version)
        per_database.append(([row[0] for row in rows], rows))
    return per_database


def reference_blocks(per_database: Rows, rules: list[Rule], version: int) -> list[tuple[Any, int | None]]:
    """The rule map as gslb built it from maxminddb's iteration (City/Country first)."""
    bits = BITS[version]
    points = {0}
    for _, rows in per_database:
        for start, end, _ in rows:
            points.update((start, end + 1))
    for rule in rules:
        for net in rule.subnets:
            if net.version == version:
                points.update((int(net.network_address), int(net.broadcast_address) + 1))
    cuts = sorted(p for p in points if p < 1 << bits)
    pieces: list[tuple[int, int, int | None]] = []
    for i, start in enumerate(cuts):
        end = cuts[i + 1] - 1 if i + 1 < len(cuts) else (1 << bits) - 1
        parts = []
        for starts, rows in per_database:
            j = bisect.bisect_right(starts, start) - 1
            if j >= 0 and rows[j][1] >= start:
                parts.append(rows[j][2])
        location = merge_locations(parts) if parts else UNKNOWN
        address = ipaddress.IPv4Address(start) if version == 4 else ipaddress.IPv6Address(start)
        rule = first_rule(rules, address, location)
        if pieces and pieces[-1][2] == rule:
            pieces[-1] = (pieces[-1][0], end, rule)
        else:
            pieces.append((start, end, rule))
    network = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    return [(network((block, prefix)), rule)
            for start, end, rule in pieces for block, prefix in _cidrs(start, end, bits)]


def random_address(rng: random.Random, version: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if version == 4:
        return ipaddress.IPv4Address(rng.choice([10, 11, 192, 198, rng.randrange(256)]) << 24
                                     | rng.getrandbits(24))
    while True:
        address = ipaddress.IPv6Address(rng.choice([0x20010DB8 << 96, 0x2A << 120, 0])
                                        | rng.getrandbits(96 if rng.random() < 0.7 else 120))
        if not any(address in net for net in IPV4_RANGES_OF_IPV6):
            return address


def check(paths: list[Path], rng: random.Random, rule_sets: int = 4, addresses: int = 200) -> None:
    geo = GeoDatabases(paths)
    table = geo.table()
    ordered = [db.path for db in geo._ordered()]
    networks = {version: iterated(ordered, version) for version in (4, 6)}
    for _ in range(rule_sets):
        rules = random_rules(rng)
        mapped = RuleMap.build(rules, table)
        for version in (4, 6):
            assert list(mapped.blocks(version)) == reference_blocks(networks[version], rules, version), rules
            for _ in range(addresses):
                address = random_address(rng, version)
                match = mapped.lookup(address)
                assert match.rule == first_rule(rules, address, geo.locate(address)), (rules, address)
                assert address in match.network


@pytest.mark.parametrize("seed", range(4))
def test_a_city_database_alone_and_with_an_asn_database(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    city = random_city(tmp_path / "city.mmdb", rng, mapped=seed % 2 == 1)
    asn = random_asn(tmp_path / "asn.mmdb", rng, ip_version=4 + 2 * (seed % 2),
                     int_type=["u32", "u16", "i32", "u64"][seed])
    check([city], rng)
    check([asn, city], rng)  # the City database answers first whatever the order


@pytest.mark.parametrize("record_size", [24, 28, 32])
def test_generated_databases_of_each_record_size(tmp_path: Path, record_size: int) -> None:
    rng = random.Random(record_size)
    city = tmp_path / "city.mmdb"
    mmdbgen.build(city, "city", 3_000, seed=record_size, cities=300, empty=0.1, record_size=record_size)
    assert maxminddb.open_database(str(city)).metadata().record_size == record_size
    country = tmp_path / "country.mmdb"
    mmdbgen.build(country, "country", 2_000, seed=record_size, empty=0.1, record_size=record_size)
    asn = random_asn(tmp_path / "asn.mmdb", rng, 6, "u128")
    for paths in ([city], [country], [city, asn]):
        check(paths, rng, rule_sets=2, addresses=150)


def test_a_record_above_the_ipv4_subtree_holds_for_ipv4_and_the_rest_of_its_network(tmp_path: Path) -> None:
    # ::/64 as one record: maxminddb's lookups give it to every IPv4 address (and iterating
    # such a file fails); the IPv6 family keeps ::/96 for IPv4.
    path = write(tmp_path / "odd.mmdb", "GeoIP2-Country",
                 [("::/64", {"continent": {"code": "EU"}}), ("2001:db8::/32", {"continent": {"code": "NA"}})], 6)
    geo = GeoDatabases([path])
    mapped = RuleMap.build([Rule("eu", geos=("EU",)), Rule("rest")], geo.table())
    assert geo.locate("192.0.2.1").continent == "EU"
    assert mapped.lookup("192.0.2.1") == (0, ip_network("0.0.0.0/0"))
    assert mapped.lookup("::1:0:0") == (0, ip_network("::1:0:0/96"))
    assert mapped.lookup("::1").rule == 1
    assert mapped.lookup("::8000:0:0:0").rule == 0  # still inside ::/64
    assert mapped.lookup("2001:db8::1").rule == 1


# --- broken files ---------------------------------------------------------------------------


def small_city(tmp_path: Path) -> tuple[bytearray, maxminddb.extension.Metadata]:
    path = tmp_path / "good.mmdb"
    mmdbgen.build(path, "city", 500, cities=50, record_size=32)
    return bytearray(path.read_bytes()), maxminddb.open_database(str(path)).metadata()


def node_record(data: bytearray, node: int, right: int, value: int) -> None:
    data[node * 8 + 4 * right:node * 8 + 4 * right + 4] = value.to_bytes(4, "big")


@pytest.mark.parametrize("damage,message", [
    pytest.param(lambda d, m: node_record(d, 40, 0, m.node_count + 5),
                 "record 0 of node 40 points outside the data section", id="into-the-separator"),
    pytest.param(lambda d, m: node_record(d, 40, 1, m.node_count + 16 + 10**8),
                 "points outside the data section", id="past-the-data"),
    pytest.param(lambda d, m: node_record(d, 0, 1, 0),
                 "reaches its nodes more than once|deeper than 128 bits", id="loop-to-the-root"),
    pytest.param(lambda d, m: node_record(d, 7, 0, 3),
                 "reaches its nodes more than once|deeper than", id="loop-to-an-ancestor"),
    pytest.param(lambda d, m: d.__setitem__(slice(m.node_count * 8 + 16, m.node_count * 8 + 2016),
                                            b"\x1f" * 2000), "data|pointer", id="garbage-data"),
])
def test_a_broken_tree_or_data_section_is_an_error_naming_the_file(tmp_path: Path, damage: Any,
                                                                   message: str) -> None:
    data, metadata = small_city(tmp_path)
    damage(data, metadata)
    path = tmp_path / "broken.mmdb"
    path.write_bytes(data)
    geo = GeoDatabases([path])  # the metadata still reads
    with pytest.raises(GeoIPError, match=f"^{path}: .*({message})"):
        geo.table()


def test_the_table_holds_runs_not_a_python_object_per_network(tmp_path: Path) -> None:
    # Before the C walk, the table of a 200k-network database held the networks as
    # Python objects (over a hundred megabytes along the way); now runs in bytes.
    path = tmp_path / "country.mmdb"
    mmdbgen.build(path, "country", 200_000)
    geo = GeoDatabases([path])
    tracemalloc.start()
    try:
        table = geo.table()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(table) > 10_000
    assert peak < 8 * 2**20, peak


# --- the location map -----------------------------------------------------------------------


def check_locations(paths: list[Path], rng: random.Random, addresses: int = 600) -> int:
    """The location map (closest and latency classes are keyed by it) says what `locate`
    says of a client network's address: no database, or the same place, coordinates and network length (capped as an
    answer's scope), except where it leaves the address to `locate` (ALIAS: IPv4's
    ranges of the IPv6 family). Returns how many addresses were left so."""
    geo = GeoDatabases(paths)
    located = geo.locations()
    aliased = 0
    for i in range(addresses):
        version = rng.choice((4, 6))
        address = random_address(rng, version)
        if i % 5 == 0:
            network = rng.choice(IPV4_RANGES_OF_IPV6)
            address = network.network_address + rng.getrandbits(network.max_prefixlen - network.prefixlen)
        # a client network's address: cut to /24 or /56 at most (the map answers for those)
        prefix = rng.choice([MAX_SCOPE[address.version], 16 if address.version == 4 else 40])
        address = ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address
        location = geo.locate(address)
        entry, prefix = located.find(address)
        if entry == ALIAS:
            assert any(address in network for network in IPV4_RANGES_OF_IPV6), address
            aliased += 1
            continue
        if entry < 0:
            assert entry == -1 and location.network is None, address
            continue
        bits = located.coordinates[entry]
        assert location.network is not None, address
        assert located.places[located.place[entry]] == (location.continent, location.country,
                                                        location.subdivision), address
        assert (located.latitude[entry] if bits & HAS_LATITUDE else None) == location.latitude
        assert (located.longitude[entry] if bits & HAS_LONGITUDE else None) == location.longitude
        assert prefix == min(location.network.prefixlen, MAX_SCOPE[address.version]), address
    return aliased


@pytest.mark.parametrize("seed", range(4))
def test_the_location_map_says_what_locate_says(tmp_path: Path, seed: int) -> None:
    rng = random.Random(100 + seed)
    city = random_city(tmp_path / "city.mmdb", rng, mapped=seed % 2 == 1)
    asn = random_asn(tmp_path / "asn.mmdb", rng, ip_version=4 + 2 * (seed % 2), int_type="u32")
    check_locations([city], rng)
    check_locations([asn, city], rng)
    generated = tmp_path / "generated.mmdb"
    mmdbgen.build(generated, "city", 3_000, seed=seed, cities=300, empty=0.1, record_size=28)
    assert check_locations([generated], rng) > 0  # MaxMind's aliases, as its files have them
    check_locations([generated, asn], rng)
