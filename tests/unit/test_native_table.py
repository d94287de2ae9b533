"""The C answer table must give, byte for byte, what the Python path gives.

Two snapshots of the Knot differential zones: one whose answer cache hands its UDP
entries to the native table (as `gslb serve` runs with the extension), one pure
Python. Both are warmed by the same queries; then every query of the answer-cache
corpus (names, types, random case, EDNS, DO, ECS, NSID, small payloads that truncate)
and of the Knot differential corpus is answered by the table where it can, by the
Python responder where the table misses (what the socket loop does), and compared with
the pure Python answer.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from dataclasses import replace

import dns.edns
import dns.message
import pytest

from gslb.dns.cookies import Cookies
from gslb.dns.edns import OPTION_COOKIE
from gslb.dns.handler import Responder
from gslb.dns.resolver import Zones
from gslb.server import fastpath
from gslb.snapshot import Snapshot
from tests.interop.test_knot_diff import corpus as knot_corpus
from tests.unit.test_answer_cache import OPTIONS, TYPES, corpus_names, make, mixed_case, variants
from tests.zonesets import INTEROP_ZONES, load_zone_dir

pytestmark = pytest.mark.skipif(not fastpath.available(), reason="the C extension is not built")


@pytest.fixture(scope="module")
def zones() -> Zones:
    return load_zone_dir(INTEROP_ZONES)


def cache_corpus(rng: random.Random) -> list[bytes]:
    queries = []
    for name in corpus_names(rng):
        for rdtype in TYPES:
            for variant in rng.sample(variants(rng), 2):
                queries.append(make(name, rdtype, variant, rng))
                queries.append(make(mixed_case(name, rng), rdtype, variant, rng))
    return queries


def knot_queries(rng: random.Random) -> list[bytes]:
    queries = []
    for query in knot_corpus():
        if query.tcp:
            continue
        variant = {"use_edns": 0 if query.edns else False, "payload": query.payload,
                   "want_dnssec": query.dnssec_ok}
        queries.append(make(mixed_case(query.name, rng), query.rdtype, variant, rng))
    return queries


def native_snapshot(zones: Zones, capacity: int = 100_000) -> tuple[Snapshot, object]:
    snapshot = Snapshot(zones, cache_entries=capacity)
    table = fastpath.attach(snapshot, OPTIONS)
    return snapshot, table


def test_table_answers_equal_the_python_path_byte_for_byte(zones: Zones) -> None:
    rng = random.Random(20261129)
    queries = cache_corpus(rng) + knot_queries(rng)
    assert len(queries) > 8000
    responder = Responder(OPTIONS)
    python = Snapshot(zones)
    native, table = native_snapshot(zones)
    for wire in queries:  # warm both the same way
        assert responder.respond(native, wire, False, "127.0.0.1") == \
            responder.respond(python, wire, False, "127.0.0.1")
    rng.shuffle(queries)
    from_table = 0
    python_hits = python.answers.hits
    for wire in queries:
        expected = responder.respond(python, wire, False, "127.0.0.1")
        got = table.answer(wire)  # type: ignore[attr-defined]
        if got is None:
            assert responder.respond(native, wire, False, "127.0.0.1") == expected
            continue
        from_table += 1
        assert [got] == expected, (dns.message.from_wire(wire), dns.message.from_wire(got),
                                   dns.message.from_wire(expected[0]))
    python_hits = python.answers.hits - python_hits
    # The table answers whatever the Python cache answers (signed zones' DO answers for
    # names that do not exist are per name, so not every query is a hit on either path).
    assert python_hits > len(queries) * 0.75
    assert from_table >= python_hits, (from_table, python_hits)


def test_random_subdomain_flood_is_answered_by_the_table(zones: Zones) -> None:
    rng = random.Random(11)
    responder = Responder(OPTIONS)
    native, table = native_snapshot(zones)
    python = Snapshot(zones)
    for name in ("seed.parent.test.", "seed.nowhere.invalid."):
        responder.respond(native, make(name, "A", {"use_edns": 0}, rng), False, "127.0.0.1")
    for index in range(1000):
        label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(rng.randrange(1, 60)))
        name = f"{label}.parent.test." if index % 2 else f"{label}.nowhere.invalid."
        wire = make(mixed_case(name, rng), "A", {"use_edns": 0}, rng)
        got = table.answer(wire)  # type: ignore[attr-defined]
        assert got is not None, name
        assert [got] == responder.respond(python, wire, False, "127.0.0.1")
    assert len(table) <= 4  # type: ignore[arg-type]


def test_table_is_bounded_and_promotes_what_it_serves(zones: Zones) -> None:
    rng = random.Random(3)
    responder = Responder(OPTIONS)
    native, table = native_snapshot(zones, capacity=50)
    hot = make("www.parent.test.", "A", {"use_edns": 0}, rng)
    responder.respond(native, hot, False, "127.0.0.1")
    for name in corpus_names(rng):
        for rdtype in TYPES:
            responder.respond(native, make(name, rdtype, {"use_edns": 0}, rng), False, "127.0.0.1")
            assert table.answer(hot) is not None  # type: ignore[attr-defined]
    assert len(table) <= 100  # type: ignore[arg-type]


COOKIE_NOW = 1_800_000_000
COOKIE_SECRETS = [bytes.fromhex("445536bcd2513298075a5d379663c962"),
                  bytes.fromhex("dd3bdf9344b678b185a6f5cb60fca715")]
CLIENTS = ["192.0.2.1", "198.51.100.77", "2001:db8::53", "::ffff:203.0.113.9"]


def cookie_value(rng: random.Random, host: str) -> bytes:
    """A COOKIE option as clients send it: a client cookie alone, or with a server
    cookie that is ours and fresh (echoed), ours but old or of the second secret
    (renewed), expired, forged, or another vendor's longer one."""
    client = rng.randbytes(8)
    kind = rng.randrange(7)
    if kind == 0:
        return client
    if kind == 6:
        return client + rng.randbytes(rng.choice([8, 20, 32]))
    secret = COOKIE_SECRETS[kind == 2]
    age = {1: 60, 2: 60, 3: 2000, 4: 4000, 5: 60}[kind]
    made = Cookies([secret], clock=lambda: COOKIE_NOW - age)
    server = made.server_cookie(secret, client, struct.pack("!I", COOKIE_NOW - age),
                                ipaddress.ip_address(host).packed)
    return client + (server[:15] + b"\xff" if kind == 5 else server)


def with_cookie(wire: bytes, value: bytes) -> bytes:
    """The query with a COOKIE option added (EDNS on), its question's case kept."""
    message = dns.message.from_wire(wire)
    options = list(message.options) + [dns.edns.GenericOption(OPTION_COOKIE, value)]
    message.use_edns(0, message.ednsflags, message.payload if message.edns >= 0 else 1232,
                     options=options)
    return message.to_wire()


def test_cookie_replies_from_c_equal_the_python_path_byte_for_byte(zones: Zones) -> None:
    """With DNS cookies at a fixed time: replies built in C from the zone data (a cold
    table, and the anchored ones C keeps), then replies from the entries Python stored,
    each with its client's cookie written in (a warm one), equal the pure Python
    responder's, cookie included."""
    rng = random.Random(7873)
    options = replace(OPTIONS, cookies=Cookies(COOKIE_SECRETS, clock=lambda: COOKIE_NOW))
    fastpath.set_cookies(COOKIE_SECRETS, COOKIE_NOW)
    queries = []
    for wire in rng.sample(cache_corpus(rng), 2500) + knot_queries(rng):
        host = rng.choice(CLIENTS)
        queries.append((with_cookie(wire, cookie_value(rng, host)), host))
    responder = Responder(options)
    python = Snapshot(zones)
    native = Snapshot(zones, cache_entries=100_000)
    table = fastpath.attach(native, options)
    built = stored = 0
    for wire, host in queries:  # no Python: what C answers, it builds from the zones
        got = table.answer(wire, host)  # (and keeps anchored replies as entries)
        if got is not None:
            built += 1
            assert [got] == responder.respond(python, wire, False, host)
    assert built > len(queries) * 0.3, built
    for wire, host in queries:  # Python's answers fill the table, as the socket loop does
        assert responder.respond(native, wire, False, host) == \
            responder.respond(python, wire, False, host)
    assert len(table) > 1000  # type: ignore[arg-type]
    rng.shuffle(queries)
    for wire, host in queries:
        expected = responder.respond(python, wire, False, host)
        got = table.answer(wire, host)
        if got is None:
            assert responder.respond(native, wire, False, host) == expected
            continue
        stored += 1
        assert [got] == expected, (host, dns.message.from_wire(wire),
                                   dns.message.from_wire(got), dns.message.from_wire(expected[0]))
    assert stored > len(queries) * 0.75, stored
    assert any(o.otype == OPTION_COOKIE
               for o in dns.message.from_wire(table.answer(*queries[0])).options)


def test_malformed_and_unusual_queries_are_misses(zones: Zones) -> None:
    """What the table cannot answer exactly is left to Python, never guessed."""
    rng = random.Random(5)
    responder = Responder(OPTIONS)
    native, table = native_snapshot(zones)
    good = make("www.parent.test.", "A", {"use_edns": 0}, rng)
    responder.respond(native, good, False, "127.0.0.1")
    assert table.answer(good) is not None  # type: ignore[attr-defined]
    message = dns.message.from_wire(good)
    message.use_edns(1)  # EDNS version 1: BADVERS is Python's answer
    chaos = dns.message.make_query("www.parent.test.", "A", "CH")
    for wire in (good[:11], good[:-1], good + b"\x00", message.to_wire(), chaos.to_wire(),
                 good[:2] + b"\x80" + good[3:],  # a response
                 good[:2] + b"\x08" + good[3:],  # opcode IQUERY
                 good[:5] + b"\x02" + good[6:]):  # QDCOUNT 2
        assert table.answer(wire) is None, wire  # type: ignore[attr-defined]


def test_thousands_of_zones_find_their_zone_in_the_table(tmp_path) -> None:
    """Zones are found by a keyed hash of the origin (the origin index grows as zones are
    added): with 3,000 zones, some nested in others, names up to 110 labels deep under
    any of them get the same answer from the table as from Python, and a random-subdomain
    flood over every zone is one anchored entry per zone."""
    from gslb.load.zonefile import load_zone_file

    loaded = []
    for i in range(1500):
        for origin in (f"p{i}.test.", f"c.p{i}.test."):
            path = tmp_path / f"{origin}zone"
            path.write_text(f"$TTL 300\n@ SOA ns1.{origin} h.{origin} 1 3600 600 86400 60\n"
                            f"@ NS ns1.{origin}\nns1 A 192.0.2.{i % 250 + 1}\n"
                            f"www A 198.51.100.{i % 250 + 1}\n")
            zone, problems = load_zone_file(path)
            assert zone is not None, problems
            loaded.append(zone)
    zones = Zones(loaded)
    rng = random.Random(20261206)
    responder = Responder(OPTIONS)
    native, table = native_snapshot(zones)
    python = Snapshot(zones)
    queries = []
    for _ in range(600):
        i = rng.randrange(1500)
        zone = rng.choice([f"p{i}.test.", f"c.p{i}.test."])
        depth = rng.choice([1, 2, 110 - zone.count(".")])
        label = ".".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(depth))
        queries += [make(mixed_case(f"{label}.{zone}", rng), "A", {"use_edns": 0}, rng),
                    make(mixed_case(f"www.{zone}", rng), "A", {"use_edns": 0}, rng),
                    make(f"{zone}", "SOA", {"use_edns": 0}, rng)]
    for wire in queries:  # the first of each anchor goes through Python and fills the table
        responder.respond(native, wire, False, "127.0.0.1")
    rng.shuffle(queries)
    for wire in queries:
        got = table.answer(wire)  # type: ignore[attr-defined]
        assert got is not None, dns.message.from_wire(wire).question
        assert [got] == responder.respond(python, wire, False, "127.0.0.1")
    assert len(table) <= 3 * 600  # type: ignore[arg-type]


def test_siphash_gives_the_reference_vectors() -> None:
    """SipHash-2-4 keys the answer table, the zone names and the origin index; these are
    the reference implementation's vectors (key 00..0f, message 00..n-1)."""
    from gslb.server import _fastpath  # type: ignore[attr-defined]

    key = bytes(range(16))
    expected = {0: "310e0edd47db6f72", 1: "fd67dc93c539f874", 2: "5a4fa9d909806c0d",
                8: "6224939a79f5f593", 15: "e545be4961ca29a1", 63: "724506eb4c328a95"}
    for n, value in expected.items():
        assert _fastpath.siphash(key, bytes(range(n))).to_bytes(8, "little").hex() == value
