"""A small DNS message writer: header, question, whole RRsets, name compression.

It replaces dnspython's `Renderer` on the miss path, where dnspython's compression
(a `Name` built, hashed and compared per suffix) cost more than the rest of the answer.
Here a name is compressed with a dict keyed by its lowercase wire suffixes (RFC 4343:
names compare case-insensitively), and every pointer written is noted as
(position, target) so the answer cache can move it.

Names are compressed as owners and inside the rdata of the RFC 1035 types that RFC 3597
section 4 allows (NS, CNAME, PTR, MX, SOA); every other type's rdata is written as
dnspython renders it uncompressed, and its names are never pointed at. Pointers go
only to offsets up to 0x3FFF (RFC 1035 section 4.1.4). An RRset is added whole or not
at all: `add_rrset` returns False and leaves the message as it was when it would pass
the size limit. Nothing is shuffled, so the same input gives the same bytes.
"""

from __future__ import annotations

import struct
from typing import Iterable

import dns.exception
import dns.rdata
import dns.rdtypes.IN.A
import dns.rrset

HEADER = struct.Struct("!HHHHHH")
RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
RR_TYPE_CLASS_TTL = struct.Struct("!HHI")
TYPE_CLASS = struct.Struct("!HH")
POINTER = struct.Struct("!H")
MX_PREFERENCE = struct.Struct("!H")
SOA_TIMES = struct.Struct("!IIIII")
HEADER_SIZE = 12
MAX_POINTER = 0x3FFF
QUESTION, ANSWER, AUTHORITY, ADDITIONAL = range(4)
OPT = 41
NS, CNAME, SOA, PTR, MX = 2, 5, 6, 12, 15

_LENGTH = [bytes((i,)) for i in range(64)]
_GENERIC = dns.rdata.GenericRdata
_IN_A = dns.rdtypes.IN.A.A

Pointer = tuple[int, int]  # (position of a compression pointer, the offset it points to)


class TooBig(dns.exception.TooBig):
    """What must go in does not fit the message."""


def name_wire(name) -> bytes:
    """The uncompressed wire form of an absolute dnspython `Name`, case kept."""
    labels = name.labels
    if not labels or labels[-1]:
        raise ValueError(f"{name} is not absolute")
    return b"".join([_LENGTH[len(label)] + label for label in labels])


def label_offsets(wire: bytes) -> list[int]:
    """Start of every non-root suffix of an uncompressed wire name, longest first."""
    offsets = []
    offset = 0
    while wire[offset]:
        offsets.append(offset)
        offset += wire[offset] + 1
    return offsets


class MessageWriter:
    """One message being written; `get_wire` gives the bytes with the header filled in."""

    __slots__ = ("id", "flags", "out", "limit", "reserved", "counts", "table", "pointers")

    def __init__(self, qid: int, flags: int, limit: int) -> None:
        self.id = qid
        self.flags = flags
        self.out = bytearray(HEADER_SIZE)
        self.limit = limit
        self.reserved = 0
        self.counts = [0, 0, 0, 0]
        self.table: dict[bytes, int] = {}  # lowercase wire suffix -> where it was written
        self.pointers: list[Pointer] = []

    # -- size

    def reserve(self, size: int) -> None:
        """Keep `size` bytes free for something added later (the OPT record)."""
        if size < 0 or size > self.limit - self.reserved:
            raise TooBig("nothing left to reserve")
        self.reserved += size

    def release_reserved(self) -> None:
        self.reserved = 0

    # -- sections

    def add_question(self, qname: bytes, qtype: int, qclass: int, register_from: int = 0) -> None:
        """The question, its name exactly as given (uncompressed wire, case kept).

        Only the name's suffixes starting at or after `register_from` (an offset in
        `qname`) may be pointed at later; by default all of them."""
        out = self.out
        base = len(out)
        if base + len(qname) + 4 > self.limit - self.reserved:
            raise TooBig("the question does not fit")
        out += qname
        out += TYPE_CLASS.pack(qtype, qclass)
        lower = qname.lower()
        table = self.table
        offset = 0
        while qname[offset]:
            if offset >= register_from and base + offset <= MAX_POINTER:
                table.setdefault(lower[offset:], base + offset)
            offset += qname[offset] + 1
        self.counts[QUESTION] += 1

    def add_rrset(self, section: int, rrset: dns.rrset.RRset, question_owner: bytes | None = None) -> bool:
        """Every record of `rrset`, or nothing (False) when they would not all fit.

        With `question_owner` (the lowercase query name) an RRset owned by that name is
        written with its owner as a pointer to the question, which is not reported."""
        out = self.out
        start = len(out)
        pointers = len(self.pointers)
        owner = name_wire(rrset.name)
        owner_lower = owner.lower()
        at_question = question_owner is not None and owner_lower == question_owner
        fixed = RR_TYPE_CLASS_TTL.pack(rrset.rdtype, rrset.rdclass, rrset.ttl)
        rdtype = rrset.rdtype
        count = 0
        for rd in rrset:
            if at_question:
                out += b"\xc0\x0c"
            else:
                self._name(owner, owner_lower)
            out += fixed
            if rdtype in _COMPRESSIBLE and type(rd) is not _GENERIC:
                length_at = len(out)
                out += b"\x00\x00"
                self._compressed_rdata(rdtype, rd)
                POINTER.pack_into(out, length_at, len(out) - length_at - 2)
            else:
                data = _rdata_wire(rdtype, rd)
                out += POINTER.pack(len(data))
                out += data
            count += 1
        if len(out) > self.limit - self.reserved:
            del out[start:]
            del self.pointers[pointers:]
            table = self.table
            for key in [key for key, position in table.items() if position >= start]:
                del table[key]  # what this RRset registered
            return False
        self.counts[section] += count
        return True

    def add_opt(self, payload: int, ttl: int, options: Iterable[tuple[int, bytes]]) -> bool:
        """The OPT pseudo-RR (RFC 6891) at the end of the additional section."""
        rdata = b"".join(struct.pack("!HH", code, len(value)) + value for code, value in options)
        record = b"\x00" + RR_FIXED.pack(OPT, payload, ttl, len(rdata)) + rdata
        if len(self.out) + len(record) > self.limit - self.reserved:
            return False
        self.out += record
        self.counts[ADDITIONAL] += 1
        return True

    def get_wire(self) -> bytes:
        HEADER.pack_into(self.out, 0, self.id, self.flags, *self.counts)
        return bytes(self.out)

    # -- names

    def _name(self, wire: bytes, lower: bytes) -> None:
        """Write a name, compressed against the table; register its new suffixes."""
        out = self.out
        table = self.table
        base = len(out)
        offset = 0
        while wire[offset]:
            key = lower[offset:] if offset else lower
            target = table.get(key)
            if target is not None:
                if offset:
                    out += wire[:offset]
                out += POINTER.pack(0xC000 | target)
                self.pointers.append((base + offset, target))
                return
            if base + offset <= MAX_POINTER:
                table[key] = base + offset
            offset += wire[offset] + 1
        out += wire

    def _rdata_name(self, name) -> None:
        wire = name_wire(name)
        self._name(wire, wire.lower())

    def _compressed_rdata(self, rdtype: int, rd) -> None:
        if rdtype == SOA:
            self._rdata_name(rd.mname)
            self._rdata_name(rd.rname)
            self.out += SOA_TIMES.pack(rd.serial, rd.refresh, rd.retry, rd.expire, rd.minimum)
        elif rdtype == MX:
            self.out += MX_PREFERENCE.pack(rd.preference)
            self._rdata_name(rd.exchange)
        else:  # NS, CNAME, PTR
            self._rdata_name(rd.target)


_COMPRESSIBLE = frozenset((NS, CNAME, SOA, PTR, MX))


def _rdata_wire(rdtype: int, rd) -> bytes:
    """Uncompressed rdata; A and AAAA without dnspython's general path."""
    if type(rd) is _IN_A:  # dnspython checked the dotted quad when it made the rdata
        return bytes(map(int, rd.address.split(".")))
    return rd.to_wire()
