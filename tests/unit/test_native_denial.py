"""A DO flood on a signed zone is served by the C table, byte for byte as Python serves it.

With DO, a missing name's answer in a signed zone carries the NSEC or NSEC3 records
that prove it, and those depend on where the name falls in the chain: the answer cache
keys the answer by that gap (`Denial.gap`), and the C table computes the same gap
(native/denial.c: canonical order, SHA-1 NSEC3 hashes) to find it. These tests sign the
suite's zone with Knot's kzonesign three ways (NSEC, NSEC3 with salt and an iteration,
NSEC3 opt-out) and take RFC 5155's own example zone, then send random missing names
with DO: after the first name of a gap, every other name of that gap must be answered
in C, with exactly the bytes the pure Python path gives.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path

import dns.message
import pytest

from gslb.dns.denial import nsec3_hash
from gslb.dns.handler import Responder
from gslb.server import fastpath
from gslb.snapshot import Snapshot
from tests.interop.signing import sign_zones
from tests.redis_server import require
from tests.unit.test_answer_cache import OPTIONS, mixed_case
from tests.zonesets import load_zone_dir

pytestmark = pytest.mark.skipif(not fastpath.available(), reason="the C extension is not built")
RFC5155 = Path(__file__).resolve().parents[1] / "interop" / "signed" / "rfc5155"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sign_zones(require("kzonesign", "knot-dnssecutils"),
                      tmp_path_factory.mktemp("signed")).directory


def test_nsec3_hash_in_c_is_rfc_5155s() -> None:
    native = fastpath.native()
    assert native is not None
    rng = random.Random(5155)
    for _ in range(3000):
        name, salt = rng.randbytes(rng.randrange(1, 256)), rng.randbytes(rng.randrange(0, 256))
        iterations = rng.randrange(0, 12)
        assert native.nsec3_hash(name, salt, iterations) == nsec3_hash(name, salt, iterations)
    # RFC 5155 Appendix A: H(example) = 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom
    expected = base64.b32hexdecode("0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TOM")
    assert native.nsec3_hash(b"\x07example\x00", bytes.fromhex("aabbccdd"), 12) == expected


def flood(origins: list[str], rng: random.Random, count: int) -> list[bytes]:
    """Random missing names with DO, one to three labels deep, under each origin and
    under its existing names, in random case."""
    queries = []
    for origin in origins:
        for _ in range(count):
            labels = ".".join(f"{rng.choice('abcdefghijklmnopqrstuvwxyz0123456789')}"
                              f"{rng.getrandbits(24):x}" for _ in range(rng.randrange(1, 4)))
            parent = rng.choice(["", "www.", "a.b.", "sub."])
            name = mixed_case(f"{labels}.{parent}{origin}", rng)
            qtype = rng.choice(["A", "AAAA", "TXT", "MX"])
            query = dns.message.make_query(name, qtype, want_dnssec=True, payload=1232)
            query.id = rng.randrange(65536)
            queries.append(query.to_wire())
    return queries


def served_in_c(folder: Path, origins: list[str]) -> tuple[int, int]:
    """(answered by the table, asked) over a DO flood; every table answer checked
    against the pure Python path."""
    zones = load_zone_dir(folder)
    assert {zone.origin.to_text() for zone in zones} >= set(origins)
    responder = Responder(OPTIONS)
    python = Snapshot(zones)
    native = Snapshot(zones, cache_entries=100_000)
    table = fastpath.attach(native, OPTIONS)
    rng = random.Random(20261206)
    queries = flood(origins, rng, 400)
    from_table = 0
    for wire in queries:
        expected = responder.respond(python, wire, False, "127.0.0.1")[0]
        got = table.answer(wire)
        if got is None:  # the socket loop's miss: Python renders it, and it lands in the table
            assert responder.respond(native, wire, False, "127.0.0.1")[0] == expected
        else:
            assert got == expected, dns.message.from_wire(wire).question
            from_table += 1
    return from_table, len(queries)


def test_a_do_flood_on_signed_zones_is_answered_in_c(signed: Path) -> None:
    origins = ["nsec.test.", "nsec3.test.", "optout.test."]
    answered, asked = served_in_c(signed, origins)
    # A few dozen names, four types and four parents: after the first name of each
    # (gap, type, anchor), every one (before the table knew gaps: none).
    assert answered > 0.7 * asked, (answered, asked)


def test_rfc_5155s_example_zone_flood_is_answered_in_c() -> None:
    answered, asked = served_in_c(RFC5155, ["example."])
    assert answered > 0.8 * asked, (answered, asked)
