"""Untrusted bytes into the C table: seeded mutations of queries it answers.

Every mutation of a query whose answer is in the table (bit flips, truncations, bytes
appended, random lengths and counts, options of every size) is parsed and, where the
table answers, patched by C code. Each reply the table gives must be exactly what the
Python path gives for the same bytes; a mutation the table does not answer is Python's
to decide. Run under AddressSanitizer by test_native_asan.py, so an out-of-bounds read
or write anywhere in parse, lookup or patching fails the suite.
"""

from __future__ import annotations

import random
import struct
from dataclasses import replace

import dns.edns
import pytest

from gslb.dns.cookies import Cookies
from gslb.dns.edns import OPTION_COOKIE
from gslb.dns.handler import Responder
from gslb.server import fastpath
from gslb.snapshot import Snapshot
from tests.unit.test_answer_cache import OPTIONS as PLAIN_OPTIONS
from tests.unit.test_answer_cache import make, variants
from tests.zonesets import INTEROP_ZONES, load_zone_dir

pytestmark = pytest.mark.skipif(not fastpath.available(), reason="the C extension is not built")
SEED = 20261129
MUTATIONS = 30_000
COOKIE_NOW = 1_800_000_000
COOKIE_SECRET = bytes(range(16))
# DNS cookies on at a fixed time, so that cookies are parsed, checked and patched too.
OPTIONS = replace(PLAIN_OPTIONS, cookies=Cookies([COOKIE_SECRET], clock=lambda: COOKIE_NOW))
NAMES = ["www.parent.test.", "nx.parent.test.", "a.b.c.d.wild.parent.test.", "host.deleg.parent.test.",
         "parent.test.", "x.nowhere.invalid.", "foo.wcname.parent.test.", "www.child.parent.test."]


def seeds(rng: random.Random) -> list[bytes]:
    queries = []
    for name in NAMES:
        for rdtype in ("A", "AAAA", "TXT", "NS", "DS", "ANY"):
            for variant in variants(rng):
                queries.append(make(name, rdtype, variant, rng))
    client = bytes(range(8))
    server = OPTIONS.cookies.answer(client, bytes([127, 0, 0, 1]))[0][8:]  # type: ignore[union-attr]
    for value in (client, client + server, client + bytes(16)):
        cookie = dns.edns.GenericOption(OPTION_COOKIE, value)
        for name in ("www.parent.test.", "nx.parent.test."):
            queries.append(make(name, "A", {"use_edns": 0, "options": [cookie]}, rng))
            ecs = dns.edns.ECSOption("192.0.2.0", 24)
            queries.append(make(name, "A", {"use_edns": 0, "options": [cookie, ecs]}, rng))
    return queries


def mutate(wire: bytes, rng: random.Random) -> bytes:
    data = bytearray(wire)
    kind = rng.randrange(7)
    if kind == 0:  # flip bits
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncate
        del data[rng.randrange(len(data)):]
    elif kind == 2:  # append junk
        data += rng.randbytes(rng.randrange(1, 64))
    elif kind == 3:  # random counts
        struct.pack_into("!HHHH", data, 4, *(rng.choice([0, 1, 2, 0xFFFF]) for _ in range(4)))
    elif kind == 4 and len(data) > 14:  # a random byte anywhere past the ID
        data[rng.randrange(2, len(data))] = rng.randrange(256)
    elif kind == 5 and len(data) > 20:  # rewrite the OPT/option lengths at the end
        struct.pack_into("!H", data, len(data) - rng.randrange(2, min(len(data) - 12, 20)),
                         rng.choice([0, 1, 4, 8, 0xFF, 0xFFFF]))
    else:  # a label length byte
        data[12] = rng.choice([0, 1, 63, 64, 0xC0, 0xFF])
    return bytes(data)


@pytest.fixture(scope="module")
def warmed() -> tuple[object, Snapshot, list[bytes]]:
    """A native table and a pure Python snapshot warmed by the same seed queries."""
    rng = random.Random(SEED)
    fastpath.set_cookies([COOKIE_SECRET], COOKIE_NOW)
    zones = load_zone_dir(INTEROP_ZONES)
    responder = Responder(OPTIONS)
    native = Snapshot(zones)
    table = fastpath.attach(native, OPTIONS)
    python = Snapshot(zones)
    queries = seeds(rng)
    for wire in queries:
        responder.respond(native, wire, False, "127.0.0.1")
        responder.respond(python, wire, False, "127.0.0.1")
    return table, python, queries


def test_mutated_queries_get_the_python_answer_or_a_miss(warmed) -> None:
    table, python, queries = warmed
    fastpath.set_cookies([COOKIE_SECRET], COOKIE_NOW)  # the process's: another test may have set others
    rng = random.Random(SEED)
    responder = Responder(OPTIONS)
    answered = 0
    for _ in range(MUTATIONS):
        wire = mutate(rng.choice(queries), rng)
        got = table.answer(wire)
        if got is not None:
            answered += 1
            assert [got] == responder.respond(python, wire, False, "127.0.0.1"), wire
    assert answered > MUTATIONS // 20  # many mutations still hit: the patching ran


def test_random_bytes_never_answer(warmed) -> None:
    table = warmed[0]
    rng = random.Random(SEED + 1)
    for _ in range(20_000):
        assert table.answer(rng.randbytes(rng.randrange(0, 600))) is None
