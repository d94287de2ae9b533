"""A server of thousands of small zones keeps one object where zones hold equal data:
the apex name beside the zone's own key for it, equal owner blobs across zones."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdatatype

from gslb.dns.zone import RECORD, ZoneBuilder, share_blobs, to_wire


def _wire(text: str) -> bytes:
    return to_wire(dns.name.from_text(text)).lower()


def _zone(origin: str, address: str):
    builder = ZoneBuilder()
    soa = to_wire(dns.rdata.from_text("IN", "SOA", f"ns1.{origin} h.{origin} 1 2 3 4 5"))
    builder.add(_wire(origin), dns.rdatatype.SOA, 60, soa)
    for name in ("www", "mail"):
        builder.add(_wire(f"{name}.{origin}"), dns.rdatatype.A, 60,
                    to_wire(dns.rdata.from_text("IN", "A", address)))
    return builder.build(dns.name.from_text(origin))


def test_the_apex_name_is_the_records_own_key() -> None:
    zone = _zone("example.com.", "192.0.2.1")
    assert next(key for key in zone.records if key == zone.origin_wire) is zone.origin_wire


def test_equal_blobs_of_zones_become_one_object_and_keep_their_values() -> None:
    zones = [_zone("example.com.", "192.0.2.1"), _zone("example.net.", "192.0.2.1"),
             _zone("example.org.", "192.0.2.2")]
    before = [dict(zone.records) for zone in zones]
    share_blobs(zones)
    assert [zone.records for zone in zones] == before
    www = [zone.records[_wire(f"www.{zone.origin}")] for zone in zones]
    assert www[0] is www[1] is zones[0].records[_wire("mail.example.com.")]
    assert www[2] is not www[0] and www[2] == RECORD.pack(1, 60, 4) + bytes([192, 0, 2, 2])
    assert zones[0].records[zones[0].origin_wire] is not zones[1].records[zones[1].origin_wire]
