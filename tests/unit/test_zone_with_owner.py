"""`Zone.with_owner`: one owner changed, names that exist kept right, the rest shared."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdatatype

from gslb.dns.zone import RECORD, ZoneBuilder, to_wire


def _wire(text: str) -> bytes:
    return to_wire(dns.name.from_text(text)).lower()


def _a(address: str) -> bytes:
    rdata = to_wire(dns.rdata.from_text("IN", "A", address))
    return RECORD.pack(dns.rdatatype.A, 60, len(rdata)) + rdata


def _zone():
    builder = ZoneBuilder()
    soa = to_wire(dns.rdata.from_text("IN", "SOA", "ns1.example.com. h.example.com. 1 2 3 4 5"))
    ns = to_wire(dns.rdata.from_text("IN", "NS", "ns1.example.com."))
    builder.add(_wire("example.com."), dns.rdatatype.SOA, 60, soa)
    builder.add(_wire("example.com."), dns.rdatatype.NS, 60, ns)
    builder.add(_wire("ns1.example.com."), dns.rdatatype.A, 60, _a("192.0.2.1")[8:])
    return builder.build(dns.name.from_text("example.com."))


def test_adding_a_deep_name_creates_empty_non_terminals_and_removing_drops_them() -> None:
    zone = _zone()
    deep = _wire("a.b.c.example.com.")
    grown = zone.with_owner(deep, _a("192.0.2.9"))
    assert grown.has(deep) and grown.has(_wire("b.c.example.com.")) and grown.has(_wire("c.example.com."))
    assert not zone.has(deep)  # the old zone is untouched (a snapshot may still serve it)
    assert grown.record_count() == zone.record_count() + 1
    sibling = grown.with_owner(_wire("x.c.example.com."), _a("192.0.2.10"))
    shrunk = sibling.with_owner(deep, None)
    assert not shrunk.has(deep) and not shrunk.has(_wire("b.c.example.com."))
    assert shrunk.has(_wire("c.example.com."))  # still above x.c
    assert not shrunk.with_owner(_wire("x.c.example.com."), None).has(_wire("c.example.com."))


def test_delegation_points_follow_ns_changes() -> None:
    zone = _zone()
    ns = to_wire(dns.rdata.from_text("IN", "NS", "ns.child.example.com."))
    cut = _wire("child.example.com.")
    delegated = zone.with_owner(cut, RECORD.pack(dns.rdatatype.NS, 60, len(ns)) + ns)
    assert cut in delegated.cuts and cut not in zone.cuts
    assert cut not in delegated.with_owner(cut, None).cuts
    serial = zone.with_owner(zone.origin_wire, zone.records[zone.origin_wire]).serial()
    assert serial == 1
