"""AXFR (RFC 5936): the whole zone as a stream of messages, SOA first and last.

Messages are filled up to `message_size` bytes with whole RRs, so a large zone goes out
as many messages and a single huge RRset is split across them (section 2.2 allows any
split). The question appears in the first message only (section 2.2.1).
"""

from __future__ import annotations

from typing import Iterator

import dns.exception
import dns.flags
import dns.rdatatype
import dns.renderer
import dns.rrset

from gslb.dns.wire import Query
from gslb.dns.zone import Zone

DEFAULT_MESSAGE_SIZE = 16384


def axfr_messages(zone: Zone, query: Query, message_size: int = DEFAULT_MESSAGE_SIZE) -> list[bytes]:
    """Every message of the transfer, rendered."""
    messages: list[bytes] = []
    renderer = _new_message(query, first=True, size=message_size)
    for rr in _records(zone):
        try:
            renderer.add_rrset(dns.renderer.ANSWER, rr)
        except dns.exception.TooBig:
            messages.append(_finish(renderer))
            renderer = _new_message(query, first=False, size=message_size)
            renderer.add_rrset(dns.renderer.ANSWER, rr)
    messages.append(_finish(renderer))
    return messages


def _records(zone: Zone) -> Iterator[dns.rrset.RRset]:
    """Single-RR sets: SOA, every other record (glue included), SOA again."""
    soa = zone.soa
    yield soa
    for rrset in zone.rrsets():
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == zone.origin:
            continue
        for rd in rrset:
            single = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
            single.add(rd, rrset.ttl)
            yield single
    yield soa


def _new_message(query: Query, first: bool, size: int) -> dns.renderer.Renderer:
    flags = dns.flags.QR | dns.flags.AA | (query.flags & dns.flags.RD)
    renderer = dns.renderer.Renderer(query.id, flags, size)
    if first and query.qname is not None:
        renderer.add_question(query.qname, query.qtype, query.qclass)
    return renderer


def _finish(renderer: dns.renderer.Renderer) -> bytes:
    renderer.write_header()
    return renderer.get_wire()
