"""The steering engine: rules, chain, fallback, all-down modes, select, scope and the trace.

Records are built directly from the model (no YAML). Cases are tables where they fit;
hypothesis checks the properties that must hold for every pool and health state.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gslb.steering.engine import decide, format_trace
from gslb.steering.geo import geo_matches
from gslb.steering.model import (AdminState, AllDown, Client, Context, Datacenter, Health, Location,
                                 Member, Pool, PolicyStep, Rule, SteeredRecord)

net = ipaddress.ip_network
PARIS = Location(continent="EU", country="FR", subdivision="IDF", asn=3215, latitude=48.86,
                 longitude=2.35, database="GeoLite2-City", network=net("192.0.2.0/23"))
CALIFORNIA = Location(continent="NA", country="US", subdivision="CA", asn=64500,
                      latitude=37.4, longitude=-122.1, database="GeoLite2-City",
                      network=net("198.51.100.0/22"))
DCS = {"us-east": Datacenter("us-east", 38.9, -77.0), "eu-west": Datacenter("eu-west", 53.3, -6.3)}

US = Pool("us", (Member("192.0.2.10", weight=3, datacenter="us-east", check="us-1"),
                 Member("192.0.2.11", weight=1, datacenter="us-east", check="us-2")), fallback="eu")
EU = Pool("eu", (Member("198.51.100.10", datacenter="eu-west", check="eu-1"),
                 Member("198.51.100.11", datacenter="eu-west", check="eu-2")))
BACKUP = Pool("backup", (Member("203.0.113.1", check="bk-1"),))
RULES = (Rule("us", subnets=(net("10.0.0.0/8"), net("2001:db8::/32"))),
         Rule("eu", geos=("EU",)),
         Rule("eu", asns=(64500,)),
         Rule("us"))


def steered(chain: tuple[str, ...] = ("health", "weighted"), rules: tuple[Rule, ...] = RULES,
            pools: tuple[Pool, ...] = (US, EU, BACKUP), **kw: object) -> SteeredRecord:
    return SteeredRecord(owner="www.example.com.", rdtype=str(kw.pop("rdtype", "A")), ttl=30,
                         pools={p.name: p for p in pools}, rules=rules,
                         chain=tuple(PolicyStep(n) for n in chain), datacenters=DCS,
                         source="zones/example.com.gslb.yaml:5", **kw)  # type: ignore[arg-type]


def context(network: str = "203.0.113.0/24", location: Location = Location(), down: tuple[str, ...] = (),
            draw: int = 0, **kw: object) -> Context:
    health = {c: Health(up=False, source="in-process", age=4.0) for c in down}
    return Context(client=Client(net(network), from_ecs=True, location=location), health=health,
                   rtt=kw.pop("rtt", {}), draw=draw, **kw)  # type: ignore[arg-type]


US_ALL, EU_ALL = ("us-1", "us-2"), ("eu-1", "eu-2")


# --- rules ----------------------------------------------------------------------------------

@pytest.mark.parametrize("code,location,expected", [
    ("EU", PARIS, True), ("eu", PARIS, True), ("NA", PARIS, False),
    ("FR", PARIS, True), ("EU-FR", PARIS, True), ("NA-FR", PARIS, False),
    ("NA-US-CA", CALIFORNIA, True), ("NA-US-NY", CALIFORNIA, False), ("NA-US", CALIFORNIA, True),
    ("AS", Location(continent="OC", country="AS"), False),  # two letters in CONTINENTS: a continent
    ("AS", Location(continent="AS", country="JP"), True),
    ("EU", Location(), False),
])
def test_geo_codes(code: str, location: Location, expected: bool) -> None:
    assert geo_matches(code, location) is expected


@pytest.mark.parametrize("network,location,pool", [
    ("10.1.2.0/24", PARIS, "us"),  # the subnet rule comes before the geo rule
    ("2001:db8:1:100::/56", Location(), "us"),
    ("192.0.2.0/24", PARIS, "eu"),  # geo EU
    ("198.51.100.0/24", CALIFORNIA, "eu"),  # ASN 64500
    ("203.0.113.0/24", Location(continent="NA", country="US"), "us"),  # catch-all
    ("11.0.0.0/24", Location(), "us"),
])
def test_the_first_matching_rule_chooses_the_pool(network: str, location: Location, pool: str) -> None:
    assert decide(steered(), context(network, location)).pool == pool


def test_no_matching_rule_goes_to_all_down() -> None:
    record = steered(rules=RULES[:1], all_down=AllDown.SERVFAIL)
    decision = decide(record, context("203.0.113.0/24"))
    assert (decision.rcode, decision.values) == ("servfail", ())
    assert "no rule matches" in format_trace(decision)


def test_a_rule_match_from_the_rule_map_replaces_the_search() -> None:
    ctx = context("10.1.2.0/24", PARIS, rule_match=(1, net("10.0.0.0/16")))
    decision = decide(steered(), ctx)
    assert decision.pool == "eu"
    assert decision.scope == 16


# --- chain, fallback, all down --------------------------------------------------------------

@pytest.mark.parametrize("chain,down,draw,values,pool", [
    (("health", "weighted"), (), 0, ("192.0.2.10",), "us"),
    (("health", "weighted"), (), 2**32 - 1, ("192.0.2.11",), "us"),
    (("health", "weighted"), ("us-1",), 0, ("192.0.2.11",), "us"),
    (("weighted",), ("us-1",), 0, ("192.0.2.11",), "us"),  # health runs first even when not named
    (("health", "weighted"), US_ALL, 0, ("198.51.100.10",), "eu"),  # fallback us -> eu
    (("health", "weighted"), US_ALL + ("eu-1",), 0, ("198.51.100.11",), "eu"),
    (("priority", "first_n"), (), 0, ("192.0.2.10",), "us"),
])
def test_chain_and_fallback(chain, down, draw, values, pool) -> None:
    decision = decide(steered(chain), context(down=down, draw=draw))
    assert (decision.values, decision.pool, decision.rcode) == (values, pool, "noerror")


def test_fallback_loops_stop() -> None:
    a = Pool("a", (Member("192.0.2.1", check="x"),), fallback="b")
    b = Pool("b", (Member("192.0.2.2", check="y"),), fallback="a")
    record = steered(pools=(a, b), rules=(Rule("a"),), all_down=AllDown.NODATA)
    decision = decide(record, context(down=("x", "y")))
    assert decision.rcode == "nodata"
    assert "fallback a already tried" in format_trace(decision)


ALL_DOWN = US_ALL + EU_ALL + ("bk-1",)


@pytest.mark.parametrize("mode,last_good,values,pool,rcode", [
    (AllDown.FAIL_OPEN, (), ("192.0.2.10",), "us", "noerror"),  # the rule's pool, as if all up
    (AllDown.BACKUP_POOL, (), ("203.0.113.1",), "backup", "noerror"),
    (AllDown.LAST_KNOWN_GOOD, ("192.0.2.99",), ("192.0.2.99",), None, "noerror"),
    (AllDown.LAST_KNOWN_GOOD, (), ("192.0.2.10",), "us", "noerror"),  # nothing known: fail_open
    (AllDown.NODATA, ("192.0.2.99",), (), None, "nodata"),
    (AllDown.SERVFAIL, (), (), None, "servfail"),
])
def test_every_all_down_mode(mode, last_good, values, pool, rcode) -> None:
    record = steered(all_down=mode, all_down_pool="backup")
    decision = decide(record, context(down=ALL_DOWN, last_good=last_good))
    assert (decision.values, decision.pool, decision.rcode) == (values, pool, rcode)
    assert f"all_down   {mode.value}" in format_trace(decision)


def test_fail_open_still_leaves_disabled_members_out() -> None:
    pool = Pool("p", (Member("192.0.2.1", check="x", state=AdminState.DISABLED),
                      Member("192.0.2.2", check="y")))
    record = steered(pools=(pool,), rules=(Rule("p"),), all_down=AllDown.FAIL_OPEN)
    assert decide(record, context(down=("x", "y"))).values == ("192.0.2.2",)


# --- select, CNAME --------------------------------------------------------------------------

def test_select_returns_that_many_distinct_answers() -> None:
    record = steered(pools=(Pool("p", tuple(Member(f"192.0.2.{i}") for i in range(5))),),
                     rules=(Rule("p"),), select=3)
    for draw in (0, 12345, 2**31, 2**32 - 1):
        values = decide(record, context(draw=draw)).values
        assert len(values) == len(set(values)) == 3


def test_select_with_fewer_healthy_members_returns_what_is_up() -> None:
    record = steered(select=3)
    assert decide(record, context(down=("us-1",))).values == ("192.0.2.11",)


def test_cname_answers_one_target() -> None:
    pool = Pool("p", (Member("a.example.net."), Member("b.example.net.")))
    record = steered(pools=(pool,), rules=(Rule("p"),), rdtype="CNAME", select=2,
                     chain=("health", "priority"))
    assert decide(record, context()).values == ("a.example.net.",)


# --- scope ----------------------------------------------------------------------------------

ANY = (Rule("us"),)


@pytest.mark.parametrize("rules,chain,network,location,scope", [
    (ANY, ("health", "weighted"), "203.0.113.0/24", PARIS, 0),  # nothing client-dependent
    (ANY, ("priority", "first_n"), "203.0.113.0/24", PARIS, 0),
    (ANY, ("hash",), "203.0.113.0/24", PARIS, 24),  # the client network itself
    (ANY, ("hash",), "2001:db8:1:100::/56", Location(), 56),
    (ANY, ("closest",), "192.0.2.0/24", PARIS, 23),  # the location's network
    (ANY, ("closest",), "192.0.2.0/24", Location(latitude=1.0, longitude=2.0), 24),  # no network
    (RULES, ("weighted",), "10.1.2.0/24", Location(), 8),  # inside 10.0.0.0/8
    (RULES, ("weighted",), "192.0.2.0/24", PARIS, 23),  # missed 10/8 (scope 1), geo -> /23
    (RULES, ("weighted",), "203.0.113.0/24", Location(), 24),  # geo unknown: client prefix
    (RULES, ("weighted",), "2001:db8:1:100::/56", Location(), 32),
    ((Rule("us", subnets=(net("10.1.2.0/25"),)), Rule("eu")), ("weighted",), "10.1.2.0/24",
     Location(), 24),  # a narrower subnet inside the client network: capped at /24
    ((Rule("us", subnets=(net("10.1.0.0/16"),)), Rule("eu")), ("weighted",), "10.2.3.0/24",
     Location(), 15),  # outside 10.1/16: holds for the /15 that does not touch it
    ((Rule("us", subnets=(net("10.1.0.0/16"),)), Rule("eu")), ("hash",), "10.2.3.0/24",
     Location(), 24),  # the narrowest input wins
])
def test_scope(rules, chain, network, location, scope) -> None:
    assert decide(steered(chain, rules=rules), context(network, location)).scope == scope


def test_latency_scope_is_the_location_unless_rtts_are_per_network() -> None:
    record = steered(("latency",), rules=ANY)
    by_region = {("EU-FR", "us-east"): 90.0, ("EU-FR", "eu-west"): 20.0}
    assert decide(record, context("192.0.2.0/24", PARIS, rtt=by_region)).scope == 23
    by_network = {**by_region, ("192.0.3.0/24", "eu-west"): 5.0}
    assert decide(record, context("192.0.2.0/24", PARIS, rtt=by_network)).scope == 24


# --- trace and explain ----------------------------------------------------------------------

def test_trace_shows_every_step() -> None:
    record = steered(("health", "weighted"))
    ctx = context("192.0.2.0/24", PARIS, down=("eu-1",), draw=7)
    decision = decide(record, ctx)
    assert [s.step for s in decision.trace] == [
        "client", "location", "rule", "pool", "member", "member", "health", "weighted", "answer"]
    text = format_trace(decision, record, ctx)
    for expected in ["www.example.com. A  (zones/example.com.gslb.yaml:5)", "draw       slot 0 of 0-63",
                     "192.0.2.0/24 (EDNS Client Subnet)", "database GeoLite2-City",
                     "continent EU", "country FR", "ASN 3215", "coordinates 48.86, 2.35",
                     "rule 2: geos EU -> pool eu", "check eu-1: DOWN (in-process, 4.0 s ago)",
                     "check eu-2: up (unknown (no state yet))", "health     1 up; down: 198.51.100.10",
                     "-> 198.51.100.11", "result     noerror: 198.51.100.11", "scope      /23",
                     "ttl        30"]:
        assert expected in text, expected


def test_trace_names_the_fallback_taken() -> None:
    decision = decide(steered(), context(down=US_ALL))
    assert "fallback   pool us has no answer: falling back to eu" in format_trace(decision)


def test_the_same_inputs_give_the_same_decision() -> None:
    ctx = context("192.0.2.0/24", PARIS, draw=99)
    assert decide(steered(("hash",)), ctx) == decide(steered(("hash",)), ctx)


# --- properties -----------------------------------------------------------------------------

STATES = st.sampled_from([AdminState.ENABLED, AdminState.ENABLED, AdminState.DRAINED, AdminState.DISABLED])
MEMBERS = st.lists(st.tuples(st.integers(0, 5), st.integers(1, 3), STATES, st.booleans()),
                   min_size=1, max_size=6)
CHAINS = st.lists(st.sampled_from(["health", "priority", "weighted", "hash", "first_n", "closest"]),
                  max_size=4)


@settings(max_examples=300, deadline=None)
@given(spec=MEMBERS, chain=CHAINS, draw=st.integers(0, 2**32 - 1), select=st.integers(1, 3))
def test_drained_or_down_is_never_returned_while_an_alternative_is_up(spec, chain, draw, select) -> None:
    members = tuple(Member(f"192.0.2.{i}", weight=w, priority=p, state=s, check=f"c{i}",
                           datacenter="us-east")
                    for i, (w, p, s, _) in enumerate(spec))
    down = tuple(f"c{i}" for i, (_, _, _, up) in enumerate(spec) if not up)
    record = steered(tuple(chain), rules=(Rule("p"),), pools=(Pool("p", members),), select=select,
                     all_down=AllDown.NODATA)
    values = decide(record, context(location=PARIS, down=down, draw=draw)).values
    usable = [m for m, (_, _, _, up) in zip(members, spec) if up and m.state is not AdminState.DISABLED]
    enabled = {m.value for m in usable if m.state is AdminState.ENABLED}
    assert set(values) <= {m.value for m in usable}  # never down, never disabled
    if enabled:
        assert values and set(values) <= enabled  # drained only when nothing enabled is up
    assert len(values) == len(set(values)) <= select


@settings(max_examples=100, deadline=None)
@given(mode=st.sampled_from(list(AllDown)), last_good=st.sampled_from([(), ("192.0.2.99",)]),
       draw=st.integers(0, 2**32 - 1))
def test_every_all_down_mode_holds_its_promise(mode, last_good, draw) -> None:
    record = steered(all_down=mode, all_down_pool="backup", select=2)
    decision = decide(record, context(down=ALL_DOWN, draw=draw, last_good=last_good))
    us = {m.value for m in US.members}
    expected = {
        AllDown.FAIL_OPEN: ("noerror", us),
        AllDown.BACKUP_POOL: ("noerror", {"203.0.113.1"}),
        AllDown.LAST_KNOWN_GOOD: ("noerror", set(last_good) or us),
        AllDown.NODATA: ("nodata", set()),
        AllDown.SERVFAIL: ("servfail", set()),
    }[mode]
    assert (decision.rcode, set(decision.values)) == expected
