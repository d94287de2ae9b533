"""TSIG-signed queries (RFC 8945) to a server that holds no TSIG keys.

gslb verifies no signatures, so every key is unknown to it. RFC 8945 section 5.2.2 says
what such a server owes the client: RCODE NOTAUTH and a TSIG record with error BADKEY,
unsigned (MAC size 0, section 5.3.2), echoing the key name, algorithm, time signed,
fudge and original ID of the query's TSIG. Knot DNS and NSD answer the same way. Serving
the query as if it were unsigned would hand a secondary configured with a key a reply it
must reject anyway.
"""

from __future__ import annotations

import struct

import dns.exception
import dns.name

TSIG = 250
CLASS_ANY = 255
BADKEY = 17
NOTAUTH = 9
_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength


def badkey_record(data: bytes, start: int) -> bytes | None:
    """The reply's TSIG record (uncompressed) for the query TSIG at `start` in `data`;
    None when that record is malformed."""
    try:
        owner, used = dns.name.from_wire(data, start)  # (name, bytes it took)
        offset = start + used + _RR_FIXED.size
        algorithm, used = dns.name.from_wire(data, offset)
        offset += used
        time_and_fudge = data[offset : offset + 8]
        (mac_size,) = struct.unpack_from("!H", data, offset + 8)
        (original_id,) = struct.unpack_from("!H", data, offset + 10 + mac_size)
    except (dns.exception.DNSException, struct.error, IndexError):
        return None
    if len(time_and_fudge) != 8:
        return None
    rdata = (_wire(algorithm) + time_and_fudge
             + struct.pack("!HHHH", 0, original_id, BADKEY, 0))  # MAC size 0, no MAC
    return _wire(owner) + _RR_FIXED.pack(TSIG, CLASS_ANY, 0, len(rdata)) + rdata


def _wire(name: dns.name.Name) -> bytes:
    """Uncompressed, case kept (RFC 8945 section 4.2 names are not compressed)."""
    wire = name.to_wire()
    assert wire is not None  # only None when writing to a file
    return wire


def with_tsig(reply: bytes, record: bytes) -> bytes:
    """`reply` with `record` appended as the last additional record (RFC 8945 section
    5.1: TSIG comes last, after OPT)."""
    qid, flags, qd, an, ns, ar = _HEADER.unpack_from(reply)
    return _HEADER.pack(qid, flags, qd, an, ns, ar + 1) + reply[_HEADER.size :] + record
