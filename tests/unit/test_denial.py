"""The denial index's two primitives against the RFCs' own examples."""

from __future__ import annotations

import base64

import dns.name

from gslb.dns.denial import canonical, nsec3_hash, next_closer


def wire(text: str) -> bytes:
    return dns.name.from_text(text).to_wire().lower()


def test_nsec3_hash_matches_rfc_5155_appendix_a() -> None:
    salt = bytes.fromhex("aabbccdd")
    for name, expected in (("example.", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
                           ("a.example.", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
                           ("ns1.example.", "2t7b4g4vsa5smi47k61mv5bv1a22bojr")):
        digest = nsec3_hash(wire(name), salt, 12)
        assert base64.b32hexencode(digest).decode().lower() == expected


def test_canonical_order_is_rfc_4034_section_6_1() -> None:
    ordered = ["example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.",
               "zABC.a.EXAMPLE.", "z.example.", "\\001.z.example.", "*.z.example.",
               "\\200.z.example."]
    shuffled = sorted(ordered, key=len)
    assert sorted(shuffled, key=lambda n: canonical(wire(n))) == ordered


def test_next_closer_is_one_label_below_the_encloser() -> None:
    assert next_closer(wire("a.b.c.example."), wire("example.")) == wire("c.example.")
    assert next_closer(wire("c.example."), wire("example.")) == wire("c.example.")
