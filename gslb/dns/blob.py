"""An owner's records as one bytes object: `type (2) ttl (4) rdlength (2) rdata`, back to back.

The compact storage format of `gslb.dns.zone`, and the helpers that read it, kept apart
from the `Zone` class so that what a zone is built from (`gslb.dns.denial` indexes the
NSEC and NSEC3 chains of a signed zone) can read the same bytes without importing the
zone. Names are lowercase wire names. Pure: bytes in, values out.
"""

from __future__ import annotations

import struct
from typing import Iterator

RECORD = struct.Struct("!HIH")  # type, ttl, rdlength
# A node keeps the RRSIGs of each covered type apart (RFC 4034 section 3: an RRSIG RRset
# is one per covered type) under this key plus the covered type, past every real type.
SIGS = 0x10000


def iter_records(blob: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, ttl, rdata) of each record in an owner's blob, in file order."""
    offset = 0
    end = len(blob)
    unpack = RECORD.unpack_from
    size = RECORD.size
    while offset < end:
        rdtype, ttl, length = unpack(blob, offset)
        offset += size
        yield rdtype, ttl, blob[offset : offset + length]
        offset += length


def record_types(blob: bytes) -> set[int]:
    """The types present in an owner's blob."""
    types = set()
    offset = 0
    end = len(blob)
    unpack = RECORD.unpack_from
    while offset < end:
        rdtype, _, length = unpack(blob, offset)
        types.add(rdtype)
        offset += RECORD.size + length
    return types


def sigs_key(covered: int) -> int:
    """The node key of the RRSIGs covering `covered`."""
    return SIGS | covered


def parent_of(name_wire: bytes) -> bytes:
    """The parent of a (non-root) wire name: the name without its first label."""
    return name_wire[name_wire[0] + 1 :]
