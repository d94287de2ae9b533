"""The answer cache must give, byte for byte, what the full path (resolve + render) gives.

The corpus is the Knot differential zones (every authoritative case) queried with many
names, types, cases and reply variants. Each query is answered three ways: by the full
path alone, through a cold cache, and through a cache warmed by *other* names (other
case, other labels under the same closest encloser or cut), which is what a template
relocation has to get right.
"""

from __future__ import annotations

import random
import struct

import dns.edns
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import pytest

from gslb.dns.handler import Options, Responder
from gslb.dns.render import render
from gslb.dns.resolver import Zones, resolve
from gslb.dns.wire import parse_query
from gslb.snapshot import Snapshot
from tests.zonesets import INTEROP_ZONES, load_zone_dir

TYPES = ["A", "AAAA", "MX", "NS", "SOA", "TXT", "CNAME", "DS", "ANY", "SRV", "DNAME", "TYPE65280",
         "MAILA", "TSIG"]  # meta types are answered like any absent type
OPTIONS = Options(nsid=b"cache-test")


def variants(rng: random.Random) -> list[dict]:
    return [
        {"use_edns": False},
        {"use_edns": 0, "payload": 1232},
        {"use_edns": 0, "payload": 512},
        {"use_edns": 0, "payload": 4096, "want_dnssec": True},
        {"use_edns": 0, "options": [dns.edns.ECSOption("192.0.2.0", 24)]},
        {"use_edns": 0, "options": [dns.edns.ECSOption(f"2001:db8:{rng.randrange(99)}::", 56)]},
        {"use_edns": 0, "options": [dns.edns.ECSOption("0.0.0.0", 0)]},
        {"use_edns": 0, "options": [dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")]},
    ]


@pytest.fixture(scope="module")
def zones() -> Zones:
    return load_zone_dir(INTEROP_ZONES)


def corpus_names(rng: random.Random) -> list[str]:
    names: set[str] = {"nowhere.invalid.", "test.", "."}
    for zone in load_zone_dir(INTEROP_ZONES):  # gslb's loader reads what Knot reads
        for owner in sorted(zone.records):
            text = dns.name.from_wire(owner, 0)[0].to_text()
            names.add(text)
            names.add(f"nx{rng.randrange(10**6)}.{text}")
            names.add(f"a-much-longer-label-{rng.randrange(99)}.b.{text}")
    return sorted(names)


def mixed_case(name: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in name)


def make(name: str, rdtype: str, variant: dict, rng: random.Random) -> bytes:
    """The query dnspython writes (make_query(name, rdtype, **variant)), with a random ID
    and RD and CD at random (both are echoed): byte for byte, but with the variant's OPT
    record made by dnspython once (each query made whole was about a seventh of the time
    of the suites that ask thousands)."""
    ident, flags = rng.randrange(65536), rng.choice([0, 0x0100, 0x0010, 0x0110])
    opt = _opt(variant)
    question = dns.name.from_text(name).to_wire() + struct.pack(
        "!HH", dns.rdatatype.RdataType.make(rdtype), dns.rdataclass.IN)
    return struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 1 if opt else 0) + question + opt


_OPTS: dict[tuple, bytes] = {}


def _opt(variant: dict) -> bytes:
    """The variant's OPT record as dnspython writes it after the root name's question
    (12 + 1 + 4 bytes); empty without EDNS."""
    # each value with its type: use_edns=0 (EDNS version 0) is not use_edns=False
    key = tuple(sorted((k, type(v).__name__, tuple((int(o.otype), o.to_wire()) for o in v)
                        if k == "options" else v) for k, v in variant.items()))
    if key not in _OPTS:
        _OPTS[key] = dns.message.make_query(".", "A", **variant).to_wire()[17:]
    return _OPTS[key]


def full_path(zones: Zones, wire: bytes, tcp: bool) -> bytes:
    query = parse_query(wire)
    assert query is not None and query.error is None
    responder = Responder(OPTIONS)
    result = resolve(zones, query.qname, query.qtype)
    return render(query, result, responder._limit(query, tcp), OPTIONS.max_udp_payload, OPTIONS.nsid)


def test_cached_answers_equal_the_full_path_byte_for_byte(zones: Zones) -> None:
    rng = random.Random(20261124)
    queries = []
    for name in corpus_names(rng):
        for rdtype in TYPES:
            for variant in rng.sample(variants(rng), 1):
                tcp = rng.random() < 0.2
                queries.append((make(name, rdtype, variant, rng), tcp))
                queries.append((make(mixed_case(name, rng), rdtype, variant, rng), tcp))
    assert len(queries) > 4000
    cold = Snapshot(zones)
    warm = Snapshot(zones)
    responder = Responder(OPTIONS)
    for wire, tcp in queries:
        responder.respond(warm, wire, tcp, "127.0.0.1")
    rng.shuffle(queries)
    for wire, tcp in queries:
        expected = full_path(zones, wire, tcp)
        assert responder.respond(cold, wire, tcp, "127.0.0.1") == [expected], dns.message.from_wire(wire)
        got = responder.respond(warm, wire, tcp, "127.0.0.1")
        assert got == [expected], (dns.message.from_wire(wire), dns.message.from_wire(got[0]),
                                   dns.message.from_wire(expected))
    assert warm.answers.hits > len(queries) * 0.9  # the warm cache really answered


def test_random_subdomain_flood_shares_one_entry_per_anchor(zones: Zones) -> None:
    rng = random.Random(7)
    snapshot = Snapshot(zones)
    responder = Responder(OPTIONS)
    for index in range(1000):
        label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randrange(1, 40)))
        name = f"{label}.parent.test." if index % 2 else f"{label}.nowhere.invalid."
        wire = make(name, "A", {"use_edns": 0}, rng)
        reply = dns.message.from_wire(responder.respond(snapshot, wire, False, "127.0.0.1")[0])
        assert reply.question[0].name == dns.name.from_text(name)
    assert len(snapshot.answers) <= 4  # NXDOMAIN under the apex, REFUSED outside: not 1000


def test_cache_is_bounded(zones: Zones) -> None:
    rng = random.Random(3)
    snapshot = Snapshot(zones, cache_entries=50)
    responder = Responder(OPTIONS)
    for name in corpus_names(rng):
        for rdtype in TYPES:
            responder.respond(snapshot, make(name, rdtype, {"use_edns": 0}, rng), False, "127.0.0.1")
    assert len(snapshot.answers) <= 100


def test_prewarm_fills_the_cache_with_what_the_full_path_gives(zones: Zones) -> None:
    snapshot = Snapshot(zones)
    responder = Responder(OPTIONS)
    rendered = responder.prewarm(snapshot, budget=10_000)
    assert rendered > 100 and len(snapshot.answers) > 100
    rng = random.Random(5)
    asked = 0
    for zone in zones:
        for name, rdtype, variant in [
            (zone.origin.to_text(), "SOA", {"use_edns": False}),
            (zone.origin.to_text(), "NS", {"use_edns": 0, "payload": 1232}),
            (f"never-seen-{rng.randrange(10**6)}.{zone.origin}", "A", {"use_edns": 0}),
        ]:
            wire = make(name, rdtype, variant, rng)
            hits = snapshot.answers.hits
            assert responder.respond(snapshot, wire, False, "127.0.0.1") == [full_path(zones, wire, False)]
            assert snapshot.answers.hits == hits + 1, (name, rdtype, variant)  # answered from the cache
            asked += 1
    assert asked == 3 * len(zones)


def test_prewarm_stops_at_its_budget(zones: Zones) -> None:
    snapshot = Snapshot(zones)
    assert Responder(OPTIONS).prewarm(snapshot, budget=7) == 7
    assert len(snapshot.answers) <= 7
