"""Hand-written parse of a DNS query: header, the one question, and the OPT record.

This runs for every packet, so it reads only what an answer needs and never builds a
dnspython message. It also decides what a malformed packet deserves: `None` (silence:
no header to answer, or a response packet that must never be answered), or a `Query`
whose `error` is the rcode to answer with (FORMERR, NOTIMP, BADVERS).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.name
import dns.rcode

from gslb.dns.edns import BADVERS, Edns, FormatError, parse_opt

HEADER = struct.Struct("!HHHHHH")
RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
QR = 0x8000
OPCODE_MASK = 0x7800
RD = 0x0100
CD = 0x0010
OPT = 41
TSIG = 250
MAX_NAME = 255
NOTIMP = int(dns.rcode.NOTIMP)
FORMERR = int(dns.rcode.FORMERR)


@dataclass(slots=True)
class Query:
    """A query as far as it could be read. `error` set means: answer with that rcode.

    `question_end` is the offset just past the question (0 when it could not be read);
    the question name is only turned into a dnspython `Name` when something asks for
    `qname`, because the answer cache works on the wire bytes and usually needs none.
    """

    id: int
    flags: int
    qtype: int = 0
    qclass: int = 0
    edns: Edns | None = None
    error: int | None = None
    tsig: int = 0  # where the query's TSIG record starts (RFC 8945), 0 when unsigned
    question_end: int = 0
    data: bytes = b""
    _qname: dns.name.Name | None = None

    @property
    def opcode(self) -> int:
        return (self.flags & OPCODE_MASK) >> 11

    @property
    def qname(self) -> dns.name.Name | None:
        if self._qname is None and self.question_end:
            self._qname = dns.name.from_wire(self.data, HEADER.size)[0]
        return self._qname


class _Malformed(Exception):
    pass


def parse_query(data: bytes) -> Query | None:
    """Parse a query datagram or TCP message; `None` means send nothing back."""
    if len(data) < HEADER.size:
        return None
    qid, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(data)
    if flags & QR:
        return None  # never answer a response: that is how reflection loops start
    query = Query(qid, flags)
    if flags & OPCODE_MASK:  # any opcode but QUERY (0)
        query.error = NOTIMP
        return query
    if qdcount != 1:
        query.error = FORMERR
        return query
    try:
        offset = _question_name_end(data)
        if offset + 4 > len(data):
            raise _Malformed
        qtype, qclass = struct.unpack_from("!HH", data, offset)
        offset += 4
        query.data, query.question_end = data, offset
        query.qtype, query.qclass = qtype, qclass
        for _ in range(ancount + nscount):
            offset = _skip_rr(data, offset)
        seen_opt = False
        for index in range(arcount):
            start = offset
            offset = _skip_name(data, offset)
            if offset + RR_FIXED.size > len(data):
                raise _Malformed
            rtype, rclass, ttl, rdlength = RR_FIXED.unpack_from(data, offset)
            offset += RR_FIXED.size
            end = offset + rdlength
            if end > len(data):
                raise _Malformed
            if rtype == TSIG:
                # RFC 8945 section 5.1: the last record, or the message is malformed.
                if index != arcount - 1:
                    raise _Malformed
                query.tsig = start
            elif rtype == OPT:
                # RFC 6891 section 6.1.1: one OPT, owned by the root.
                if seen_opt or data[start] != 0 or offset - start != 11:
                    raise _Malformed
                seen_opt = True
                query.edns = parse_opt(ttl, rclass, data[offset:end])
            offset = end
        if offset != len(data):
            raise _Malformed
    except (_Malformed, FormatError, dns.name.NameTooLong, dns.name.LabelTooLong,
            dns.name.EmptyLabel):
        query.error = FORMERR
        query.edns = None
        return query
    if query.edns is not None and query.edns.version != 0:
        query.error = BADVERS
    return query


def _question_name_end(data: bytes) -> int:
    """Where the question name ends; compression pointers there are malformed."""
    offset = HEADER.size
    end = len(data)
    while True:
        if offset >= end:
            raise _Malformed
        length = data[offset]
        if length == 0:
            if offset + 1 - HEADER.size > MAX_NAME:
                raise _Malformed
            return offset + 1
        if length > 63:
            raise _Malformed
        offset += length + 1


def _skip_name(data: bytes, offset: int) -> int:
    """Step over a possibly compressed name in a record we do not interpret.

    Pointers are followed only to check them: each must point before the start of the
    labels it ends (RFC 1035 section 4.1.4, "a prior occurrence"), never into the header,
    so loops and forward or out-of-range pointers are malformed. Every jump lowers the
    bound, so the walk is finite.
    """
    end = len(data)
    after: int | None = None  # where the record continues, once the first pointer is seen
    start = offset  # start of the run of labels being read
    total = 1
    while True:
        if offset >= end:
            raise _Malformed
        length = data[offset]
        if length == 0:
            return offset + 1 if after is None else after
        if length & 0xC0 == 0xC0:
            if offset + 2 > end:
                raise _Malformed
            target = ((length & 0x3F) << 8) | data[offset + 1]
            if target < HEADER.size or target >= start:
                raise _Malformed
            if after is None:
                after = offset + 2
            offset = start = target
            continue
        if length > 63:
            raise _Malformed
        total += length + 1
        if total > MAX_NAME:
            raise _Malformed
        offset += 1 + length


def _skip_rr(data: bytes, offset: int) -> int:
    offset = _skip_name(data, offset)
    if offset + RR_FIXED.size > len(data):
        raise _Malformed
    rdlength = RR_FIXED.unpack_from(data, offset)[3]
    offset += RR_FIXED.size + rdlength
    if offset > len(data):
        raise _Malformed
    return offset


def error_reply(data: bytes, rcode: int) -> bytes | None:
    """A bare header reply (no sections) for when answering properly failed."""
    if len(data) < HEADER.size:
        return None
    qid, flags = struct.unpack_from("!HH", data)
    if flags & QR:
        return None
    flags = QR | (flags & (OPCODE_MASK | RD | CD)) | (rcode & 0xF)
    return HEADER.pack(qid, flags, 0, 0, 0, 0)
