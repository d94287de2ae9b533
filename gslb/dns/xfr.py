"""AXFR (RFC 5936): the whole zone as a stream of messages, SOA first and last; and what
an IXFR question (RFC 1995) gets instead.

Messages are filled up to `message_size` bytes with whole RRsets, so a large zone goes
out as many messages, and an RRset too big for one message is split across several
(section 2.2 allows any split). `axfr_stream` renders lazily, one message per step, so
a server can send each message before rendering the next. The question appears in the
first message only (section 2.2.1).
"""

from __future__ import annotations

from typing import Iterator

import dns.exception
import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset

from gslb.dns.message import ANSWER, MessageWriter, TooBig, name_wire
from gslb.dns.wire import Query
from gslb.dns.zone import Zone

DEFAULT_MESSAGE_SIZE = 16384


def axfr_messages(zone: Zone, query: Query, message_size: int = DEFAULT_MESSAGE_SIZE) -> list[bytes]:
    """Every message of the transfer, rendered."""
    return list(axfr_stream(zone, query, message_size))


def axfr_stream(zone: Zone, query: Query, message_size: int = DEFAULT_MESSAGE_SIZE) -> Iterator[bytes]:
    """The transfer one message at a time, so the caller can send each before the next.

    Whole RRsets go in while they fit; an RRset too big for a fresh message is split
    into single records. Nothing is sorted or shuffled: AXFR order is free apart from
    the SOAs, and the same zone gives the same messages.
    """
    writer = _new_message(query, first=True, size=message_size)
    empty = True  # nothing in the current message yet but (maybe) the question
    for rrset in _rrsets(zone):
        if writer.add_rrset(ANSWER, rrset):
            empty = False
            continue
        if not empty:
            yield writer.get_wire()
            writer = _new_message(query, first=False, size=message_size)
            empty = True
            if writer.add_rrset(ANSWER, rrset):
                empty = False
                continue
        for single in _split(rrset):
            if not writer.add_rrset(ANSWER, single):
                if empty:  # one record larger than a whole message: cannot be sent
                    raise TooBig(f"a {rrset.name} record does not fit a transfer message")
                yield writer.get_wire()
                writer = _new_message(query, first=False, size=message_size)
                if not writer.add_rrset(ANSWER, single):
                    raise TooBig(f"a {rrset.name} record does not fit a transfer message")
            empty = False
    yield writer.get_wire()


def ixfr_client_serial(data: bytes) -> int | None:
    """The serial of the SOA an IXFR query carries in its authority section (RFC 1995
    section 3: the version the client has); None when it has none or does not parse."""
    try:
        message = dns.message.from_wire(data)
    except (dns.exception.DNSException, ValueError):
        return None
    for rrset in message.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return int(rrset[0].serial)
    return None


def is_current(client: int, ours: int) -> bool:
    """The client's serial is ours or newer (RFC 1982 serial arithmetic): RFC 1995
    section 2 says the reply is then our SOA alone."""
    return client == ours or 0 < (client - ours) % 2**32 < 2**31


def _rrsets(zone: Zone) -> Iterator[dns.rrset.RRset]:
    """SOA, every other RRset (glue included), SOA again."""
    yield from zone.rrsets()  # the SOA comes first
    yield zone.soa


def _split(rrset: dns.rrset.RRset) -> Iterator[dns.rrset.RRset]:
    for rd in rrset:
        single = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
        single.add(rd, rrset.ttl)
        yield single


def _new_message(query: Query, first: bool, size: int) -> MessageWriter:
    flags = dns.flags.QR | dns.flags.AA | (query.flags & dns.flags.RD)
    writer = MessageWriter(query.id, flags, size)
    if first and query.qname is not None:
        writer.add_question(name_wire(query.qname), query.qtype, query.qclass)
    return writer
