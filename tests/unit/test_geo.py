"""gslb.steering.geo: geo codes, the geo table, and rule maps with merged ECS scopes."""

from __future__ import annotations

import ipaddress
import time
from ipaddress import ip_address, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gslb.steering.geo import (
    UNKNOWN,
    GeoCode,
    GeoTable,
    RuleMap,
    first_rule,
    geo_matches,
    merge_locations,
    parse_geo,
)
from gslb.steering.model import Location, Rule

FR = Location(continent="EU", country="FR", subdivision="IDF", latitude=48.86, longitude=2.35,
              database="City")
DE = Location(continent="EU", country="DE", database="City")
CA = Location(continent="NA", country="US", subdivision="CA", database="City")
NY = Location(continent="NA", country="US", subdivision="NY", database="City")
JP = Location(continent="AS", country="JP", database="City")


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ip_network(text)


# --- geo codes ----------------------------------------------------------------------------


@pytest.mark.parametrize("code,expected", [
    ("EU", GeoCode("EU")),
    ("eu", GeoCode("EU")),
    ("NA", GeoCode("NA")),  # North America, not Namibia
    ("AS", GeoCode("AS")),  # Asia, not American Samoa
    ("FR", GeoCode(None, "FR")),
    ("EU-FR", GeoCode("EU", "FR")),
    ("AF-NA", GeoCode("AF", "NA")),  # Namibia
    ("NA-US-CA", GeoCode("NA", "US", "CA")),
    ("eu-fr-idf", GeoCode("EU", "FR", "IDF")),
])
def test_parse_geo(code: str, expected: GeoCode) -> None:
    assert parse_geo(code) == expected


@pytest.mark.parametrize("code", ["", "E", "EUR", "XX-FR", "US-CA", "EU-FRA", "EU-F1",
                                  "NA-US-", "NA-US-CALI", "NA-US-CA-X", "EU--FR", "É"])
def test_parse_geo_rejects(code: str) -> None:
    with pytest.raises(ValueError, match="bad geo code"):
        parse_geo(code)


@pytest.mark.parametrize("code,location,expected", [
    ("EU", FR, True),
    ("EU", CA, False),
    ("FR", FR, True),
    ("EU-FR", FR, True),
    ("EU-FR", DE, False),
    ("AS-FR", FR, False),  # every part must match, as in the engine
    ("FR", Location(country="FR"), True),
    ("EU-FR", Location(country="FR"), False),
    ("NA-US", CA, True),
    ("NA-US-CA", CA, True),
    ("NA-US-CA", NY, False),
    ("NA-US-CA", Location(country="US"), False),
    ("EU-FR-IDF", FR, True),
    ("EU", UNKNOWN, False),
    ("FR", UNKNOWN, False),
    ("NA", Location(country="NA"), False),  # Namibia's continent is AF
])
def test_geo_matches(code: str, location: Location, expected: bool) -> None:
    assert geo_matches(code, location) is expected


def test_first_rule_matches_any_condition_in_order() -> None:
    rules = [
        Rule("lan", subnets=(net("10.0.0.0/8"), net("fd00::/8"))),
        Rule("eu", geos=("EU",), asns=(64500,)),
        Rule("any"),
    ]
    assert first_rule(rules, "10.1.2.3", CA) == 0
    assert first_rule(rules, "fd00::1", CA) == 0
    assert first_rule(rules, ip_network("10.9.0.0/24"), FR) == 0  # a network: its address
    assert first_rule(rules, "192.0.2.1", FR) == 1
    assert first_rule(rules, "192.0.2.1", Location(asn=64500)) == 1
    assert first_rule(rules, "192.0.2.1", CA) == 2
    assert first_rule(rules[:2], "192.0.2.1", UNKNOWN) is None
    # An IPv4 address is never in an IPv6 subnet that happens to hold the same integer.
    assert first_rule([Rule("v6", subnets=(net("::/96"),))], "10.0.0.1") is None


def test_merge_locations_takes_each_field_from_the_first_that_knows_it() -> None:
    asn = Location(asn=64500, country="ZZ", database="ASN")
    assert merge_locations([FR, asn]) == Location(
        continent="EU", country="FR", subdivision="IDF", asn=64500, latitude=48.86,
        longitude=2.35, database="City+ASN")
    assert merge_locations([asn]).database == "ASN"
    assert merge_locations([]) == UNKNOWN


# --- GeoTable -----------------------------------------------------------------------------


def test_table_lookup_ipv4_and_ipv6_with_the_network() -> None:
    table = GeoTable([
        ("192.0.2.0/25", FR),
        (net("192.0.2.128/25"), DE),
        ("2001:db8::/32", JP),
        ("198.51.100.0/24", FR),
    ])
    assert len(table) == 4
    # What rules test: the coordinates are `locate`'s, not the table's.
    assert table.lookup("192.0.2.1") == Location(continent="EU", country="FR", subdivision="IDF",
                                                 database="City", network=net("192.0.2.0/25"))
    assert table.lookup(ip_address("192.0.2.255")).country == "DE"
    assert table.lookup("192.0.2.255").network == net("192.0.2.128/25")
    assert table.lookup("2001:db8:ffff::1").network == net("2001:db8::/32")
    assert table.lookup("2001:db8:ffff::1").country == "JP"
    assert table.lookup(net("198.51.100.0/24")).country == "FR"
    for outside in ("192.0.1.255", "192.0.3.0", "0.0.0.0", "255.255.255.255", "::", "2001:db9::"):
        assert table.lookup(outside) is UNKNOWN
    assert {key.country for key in table.keys} == {"FR", "DE", "JP"}  # stored once each


def test_table_merges_neighbours_that_say_the_same_and_iterates_in_order() -> None:
    table = GeoTable([("10.0.1.0/24", DE), ("10.0.0.0/24", Location(country="FR", network=net("1.0.0.0/8"))),
                      ("10.0.2.0/24", DE), ("10.0.4.0/24", DE)])
    assert [(str(n), loc.country, loc.network) for n, loc in table] == [
        ("10.0.0.0/24", "FR", net("10.0.0.0/24")),
        ("10.0.1.0/24", "DE", net("10.0.1.0/24")),  # 10.0.1.0-10.0.2.255 is one run
        ("10.0.2.0/24", "DE", net("10.0.2.0/24")),
        ("10.0.4.0/24", "DE", net("10.0.4.0/24")),
    ]
    assert len(table) == 3
    assert table.lookup("10.0.2.9").network == net("10.0.2.0/24")


def test_table_rejects_overlapping_networks() -> None:
    with pytest.raises(ValueError, match="overlapping networks in a geo table: 10.0.0.0/8 and 10.1.0.0/16"):
        GeoTable([("10.1.0.0/16", FR), ("10.0.0.0/8", DE)])


def test_table_sample_takes_one_slash24_per_known_ipv4_run() -> None:
    table = GeoTable([("10.0.0.0/8", FR), ("192.0.2.0/24", DE), ("2001:db8::/32", JP)])
    assert table.sample(10) == [net("10.0.0.0/24"), net("192.0.2.0/24")]
    assert table.sample(1) == [net("10.0.0.0/24")]
    assert GeoTable().sample(10) == []


# --- RuleMap: merging and scopes --------------------------------------------------------


EU_RULES = [Rule("eu", geos=("EU",)), Rule("rest")]


def test_two_adjacent_slash25s_leading_to_the_same_rule_merge_to_a_slash24() -> None:
    table = GeoTable([("10.0.0.0/25", FR), ("10.0.0.128/25", FR)])
    rules = RuleMap.build([Rule("fr", geos=("FR",)), Rule("rest")], table)
    assert rules.lookup("10.0.0.1") == (0, net("10.0.0.0/24"))
    assert rules.lookup("10.0.0.200") == (0, net("10.0.0.0/24"))
    assert rules.lookup("10.0.0.200").network.prefixlen == 24


def test_different_countries_on_the_same_rule_merge_too() -> None:
    table = GeoTable([("10.0.0.0/25", FR), ("10.0.0.128/25", DE)])
    assert RuleMap.build(EU_RULES, table).lookup("10.0.0.1") == (0, net("10.0.0.0/24"))


def test_a_slash24_split_between_countries_on_different_rules_does_not_merge() -> None:
    table = GeoTable([("10.0.0.0/25", FR), ("10.0.0.128/25", DE)])
    rules = RuleMap.build([Rule("fr", geos=("EU-FR",)), Rule("rest")], table)
    assert rules.lookup("10.0.0.1") == (0, net("10.0.0.0/25"))
    assert rules.lookup("10.0.0.129") == (1, net("10.0.0.128/25"))


def test_ipv6_merging_and_splitting() -> None:
    table = GeoTable([("2001:db8::/33", FR), ("2001:db8:8000::/33", FR),
                      ("2001:db9::/33", FR), ("2001:db9:8000::/33", CA)])
    rules = RuleMap.build(EU_RULES, table)
    assert rules.lookup("2001:db8:1::1") == (0, net("2001:db8::/32"))
    assert rules.lookup("2001:db9::1") == (0, net("2001:db9::/33"))
    assert rules.lookup("2001:db9:8000::1") == (1, net("2001:db9:8000::/33"))


def test_the_unknown_space_around_networks_merges_with_neighbours_on_the_same_rule() -> None:
    # 10.0.0.0/24 is FR, everything else unknown: with FR on the catch-all's side the whole
    # IPv4 space holds one answer (scope 0); on its own rule it is cut out.
    table = GeoTable([("10.0.0.0/24", FR)])
    assert RuleMap.build([Rule("us", geos=("NA",)), Rule("rest")], table).lookup("10.0.0.1") == (
        1, net("0.0.0.0/0"))
    rules = RuleMap.build([Rule("fr", geos=("FR",)), Rule("rest")], table)
    assert rules.lookup("10.0.0.1") == (0, net("10.0.0.0/24"))
    assert rules.lookup("10.0.1.1") == (1, net("10.0.1.0/24"))
    assert rules.lookup("10.1.0.0") == (1, net("10.1.0.0/16"))
    assert rules.lookup("192.0.2.1") == (1, net("128.0.0.0/1"))


def test_catch_all_only_and_no_rules_hold_everywhere() -> None:
    table = GeoTable([("10.0.0.0/25", FR), ("10.0.0.128/25", DE)])
    for rules, expected in (([Rule("all")], 0), ([], None), ([Rule("fr", geos=("FR",))], None)):
        mapped = RuleMap.build(rules, table if rules == [] else None)
        assert mapped.lookup("10.0.0.1") == (expected, net("0.0.0.0/0"))
        assert mapped.lookup("2001:db8::1") == (expected, net("::/0"))
        assert len(mapped) == 2


def test_subnet_rules_need_no_table() -> None:
    rules = RuleMap.build([Rule("lan", subnets=(net("10.0.0.0/8"), net("2001:db8::/32"))),
                           Rule("rest")])
    assert not rules.uses_table
    assert rules.lookup("10.1.2.3") == (0, net("10.0.0.0/8"))
    assert rules.lookup("11.1.2.3") == (1, net("11.0.0.0/8"))
    assert rules.lookup("9.0.0.1") == (1, net("8.0.0.0/7"))
    assert rules.lookup("2001:db8::1") == (0, net("2001:db8::/32"))
    assert rules.lookup("2001:db9::1") == (1, net("2001:db9::/32"))


def test_subnets_and_geos_follow_rule_order() -> None:
    table = GeoTable([("10.0.0.0/24", FR), ("10.0.1.0/24", CA)])
    rules = RuleMap.build([
        Rule("eu", geos=("EU",)),
        Rule("lan", subnets=(net("10.0.0.0/23"), net("10.0.0.0/16"))),  # nested: one condition
        Rule("asn", asns=(64500,)),
        Rule("rest"),
    ], table)
    assert rules.uses_table
    assert rules.lookup("10.0.0.1") == (0, net("10.0.0.0/24"))  # EU comes first
    assert rules.lookup("10.0.1.1") == (1, net("10.0.1.0/24"))
    assert rules.lookup("10.0.200.1") == (1, net("10.0.128.0/17"))
    assert rules.lookup("10.1.0.1") == (3, net("10.1.0.0/16"))


def test_a_rule_matches_on_any_of_its_conditions() -> None:
    table = GeoTable([("192.0.2.0/24", Location(asn=64500)), ("198.51.100.0/24", JP)])
    rules = RuleMap.build([Rule("x", subnets=(net("10.0.0.0/8"),), geos=("AS",), asns=(64500,)),
                           Rule("rest")], table)
    assert [rules.lookup(a).rule for a in ("10.0.0.1", "192.0.2.1", "198.51.100.1", "203.0.113.1")] == [
        0, 0, 0, 1]


def test_a_later_subnet_inside_an_earlier_one_is_shadowed() -> None:
    rules = RuleMap.build([Rule("a", subnets=(net("10.0.0.0/8"),)),
                           Rule("b", subnets=(net("10.1.0.0/16"),)), Rule("c")])
    assert rules.lookup("10.1.0.1") == (0, net("10.0.0.0/8"))
    assert [r for _, r in rules.blocks(4)].count(1) == 0


def test_an_earlier_subnet_inside_a_later_one_cuts_a_hole() -> None:
    rules = RuleMap.build([Rule("b", subnets=(net("10.1.0.0/16"),)),
                           Rule("a", subnets=(net("10.0.0.0/8"),)), Rule("c")])
    assert rules.lookup("10.1.0.1") == (0, net("10.1.0.0/16"))
    assert rules.lookup("10.0.0.1") == (1, net("10.0.0.0/16"))
    assert rules.lookup("10.128.0.1") == (1, net("10.128.0.0/9"))
    assert rules.lookup("255.255.255.255") == (2, net("128.0.0.0/1"))


def test_blocks_cover_each_family_exactly_once() -> None:
    table = GeoTable([("10.0.0.0/25", FR), ("10.0.0.128/25", DE), ("2001:db8::/32", CA)])
    rules = RuleMap.build([Rule("fr", geos=("FR",)), Rule("us", geos=("NA-US-CA",)), Rule("rest")], table)
    for version, top in ((4, 2**32), (6, 2**128)):
        cursor = 0
        for block, _ in rules.blocks(version):
            assert int(block.network_address) == cursor
            cursor += block.num_addresses
        assert cursor == top


# --- property: the map agrees with per-query matching, and its blocks are maximal ---------

REGION = net("10.0.0.0/22")  # every table network and subnet lies in here
LOCATIONS = [FR, DE, CA, NY, JP, Location(asn=64500)]
CODES = ["EU", "FR", "EU-DE", "NA-US-CA", "NA", "AS"]


@st.composite
def tables_and_rules(draw: st.DrawFn) -> tuple[GeoTable, list[Rule]]:
    # Cut the region into aligned blocks of random sizes, some left unknown.
    entries = []
    start = int(REGION.network_address)
    end = int(REGION.broadcast_address)
    while start <= end:
        prefix = draw(st.integers(min_value=max(22, 32 - (start & -start).bit_length() + 1), max_value=26))
        block = ip_network((start, prefix))
        location = draw(st.sampled_from(LOCATIONS + [None]))
        if location is not None:
            entries.append((block, location))
        start += block.num_addresses
    subnet = st.builds(lambda a, p: ip_network((a, p), strict=False),
                       st.integers(int(REGION.network_address), int(REGION.broadcast_address)),
                       st.integers(22, 28))
    rule = st.builds(lambda s, g, a: Rule("p", subnets=tuple(s), geos=tuple(g), asns=tuple(a)),
                     st.lists(subnet, max_size=2), st.lists(st.sampled_from(CODES), max_size=2),
                     st.lists(st.sampled_from([64500, 64501]), max_size=1))
    rules = draw(st.lists(rule, min_size=0, max_size=4))
    if draw(st.booleans()):
        rules.append(Rule("any"))
    return GeoTable(entries), rules


@settings(max_examples=60, deadline=None)
@given(tables_and_rules())
def test_rule_map_agrees_with_first_rule_and_blocks_are_maximal(case: tuple[GeoTable, list[Rule]]) -> None:
    table, rules = case

    def expected(address: int) -> int | None:
        return first_rule(rules, ip_address(address), table.lookup(ip_address(address)))

    region = range(int(REGION.network_address), int(REGION.broadcast_address) + 1)
    results = {a: expected(a) for a in region}
    outside = expected(int(ip_address("192.0.2.1")))
    mapped = RuleMap.build(rules, table)
    for block, rule in mapped.blocks(4):
        lo, hi = int(block.network_address), int(block.broadcast_address)
        inside = {results[a] for a in region[max(lo, region.start) - region.start:
                                             min(hi + 1, region.stop) - region.start]}
        if lo < region.start or hi >= region.stop:
            inside.add(outside)
        assert inside == {rule}, block  # the answer holds on the whole block
        if block.prefixlen:
            parent = block.supernet()
            plo, phi = int(parent.network_address), int(parent.broadcast_address)
            around = {results[a] for a in region[max(plo, region.start) - region.start:
                                                 min(phi + 1, region.stop) - region.start]}
            if plo < region.start or phi >= region.stop:
                around.add(outside)
            assert len(around) > 1, block  # and not on the next wider one
    for address in list(region)[::37]:
        assert mapped.lookup(ip_address(address)).rule == results[address]


# --- build cost -----------------------------------------------------------------------------


def _country_table(count: int) -> GeoTable:
    countries = [FR, DE, CA, NY, JP]
    base = int(ip_address("1.0.0.0"))
    return GeoTable((ip_network((base + (i << 8), 24)), countries[(i // 3) % 5]) for i in range(count))


def _build_seconds(count: int) -> float:
    table = _country_table(count)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        RuleMap.build([Rule("eu", geos=("EU",)), Rule("us", geos=("NA-US-CA",)), Rule("rest")], table)
        best = min(best, time.perf_counter() - started)
    return best


def test_building_is_linear_in_the_number_of_networks() -> None:
    # 4x the networks must cost well under 16x (quadratic); linear is 4x.
    small, large = _build_seconds(5_000), _build_seconds(20_000)
    assert large < 10 * small + 0.05, (small, large)
    assert large < 2.0


def test_table_and_map_sizes_for_a_country_map() -> None:
    table = _country_table(3_000)
    by_continent = RuleMap.build([Rule("eu", geos=("EU",)), Rule("rest")], table)
    by_country = RuleMap.build([Rule("fr", geos=("FR",)), Rule("rest")], table)
    assert len(table) == 1_000  # each three neighbouring /24s of a country are one run
    assert len(by_continent) < 1_500 and len(by_country) < 1_500  # runs on one rule merged
    # 1.0.0.0/24 .. 1.0.2.0/24 are FR, the next three DE: six /24s in EU.
    assert by_country.lookup("1.0.0.1") == (0, net("1.0.0.0/23"))
    assert by_country.lookup("1.0.2.1") == (0, net("1.0.2.0/24"))
    assert by_continent.lookup("1.0.2.1") == (0, net("1.0.0.0/22"))
    assert by_continent.lookup("1.0.4.1") == (0, net("1.0.4.0/23"))


# --- agreement with the engine's per-query matching --------------------------------------


@pytest.mark.parametrize("code", CODES + ["AS-FR", "EU-FR", "EU-FR-IDF", "NA-US", "NA-US-NY", "JP"])
@pytest.mark.parametrize("location", LOCATIONS + [UNKNOWN, Location(country="FR")])
def test_geo_matches_agrees_with_the_engine(code: str, location: Location) -> None:
    from gslb.steering import engine

    assert geo_matches(code, location) is engine.geo_matches(code, location)


@settings(max_examples=30, deadline=None)
@given(tables_and_rules())
def test_rule_map_agrees_with_the_engine_for_single_addresses(case: tuple[GeoTable, list[Rule]]) -> None:
    from gslb.steering import engine
    from gslb.steering.model import Client, Context, SteeredRecord

    table, rules = case
    record = SteeredRecord(owner="www.example.com.", rdtype="A", ttl=30, pools={}, rules=tuple(rules),
                           chain=())
    mapped = RuleMap.build(rules, table)
    for address in range(int(REGION.network_address) - 1, int(REGION.broadcast_address) + 2, 29):
        client = Client(ip_network((address, 32)), from_ecs=True, location=table.lookup(ip_address(address)))
        index, _ = engine.match_rule(record, Context(client=client, health={}, rtt={}))
        assert mapped.lookup(ip_address(address)).rule == index
