"""A server of thousands of small zones keeps one apex name per zone: the zone's own
key for it in its records, not a copy."""

from __future__ import annotations

import pickle

import dns.name
import dns.rdata
import dns.rdatatype

from gslb.dns.zone import ZoneBuilder, to_wire


def _wire(text: str) -> bytes:
    return to_wire(dns.name.from_text(text)).lower()


def _zone(origin: str):
    builder = ZoneBuilder()
    soa = to_wire(dns.rdata.from_text("IN", "SOA", f"ns1.{origin} h.{origin} 1 2 3 4 5"))
    builder.add(_wire(origin), dns.rdatatype.SOA, 60, soa)
    for name in ("www", "mail"):
        builder.add(_wire(f"{name}.{origin}"), dns.rdatatype.A, 60,
                    to_wire(dns.rdata.from_text("IN", "A", "192.0.2.1")))
    return builder.build(dns.name.from_text(origin))


def test_the_apex_name_is_the_records_own_key_also_after_a_loaders_pickle() -> None:
    zone = _zone("example.com.")
    handed = pickle.loads(pickle.dumps(zone))  # as a forked loader hands zones back
    for each in (zone, handed):
        assert next(key for key in each.records if key == each.origin_wire) is each.origin_wire
