"""Turn a resolver result into response bytes, honouring the size limit.

Truncation follows RFC 2181 section 9 and RFC 9471: whole RRsets only; when an answer or
authority RRset (or in-domain glue of a referral) does not fit, TC is set so the client
retries over TCP; other additional data is simply left out. The OPT record always fits
because its space is reserved first.
"""

from __future__ import annotations

import dns.rrset

from gslb.dns.edns import DO_BIT, reply_options
from gslb.dns.message import (
    ADDITIONAL,
    ANSWER,
    AUTHORITY,
    MessageWriter,
    Pointer,
    label_offsets,
    name_wire,
)
from gslb.dns.resolver import Kind, Result
from gslb.dns.wire import CD, OPCODE_MASK, RD, Query

OPT_FIXED_SIZE = 11  # root name, type, class, ttl, rdlength
HEADER_SIZE = 12
QR, AA, TC = 0x8000, 0x0400, 0x0200  # plain ints: dnspython's Flag enum costs on every |

__all__ = ["OPT_FIXED_SIZE", "Pointer", "render", "render_tracked"]


def render(
    query: Query,
    result: Result,
    max_size: int,
    server_payload: int,
    nsid: bytes | None = None,
    ecs_scope: int = 0,
) -> bytes:
    """The response to `query` carrying `result`, at most `max_size` bytes long."""
    return render_tracked(query, result, max_size, server_payload, nsid, ecs_scope)[0]


def render_tracked(
    query: Query,
    result: Result,
    max_size: int,
    server_payload: int,
    nsid: bytes | None = None,
    ecs_scope: int = 0,
) -> tuple[bytes, list[Pointer] | None]:
    """`render`, plus where every compression pointer in the message went (None when
    something had to be left out for size: then the message only holds for this name).

    Only the suffixes from `result.anchor` up of the query name may be pointed at, so
    the message does not depend on the labels between the two: the answer cache reuses
    it for every name under the same anchor by moving those pointers. Answer RRs owned
    by the query name are then written as a pointer to the question (offset 12), which
    never moves and is not reported."""
    flags = QR | (query.flags & (OPCODE_MASK | RD | CD))
    if result.aa:
        flags |= AA
    rcode = result.rcode
    flags |= rcode & 0xF
    writer = MessageWriter(query.id, flags, max_size)
    owner = None  # the lowercase query name, when answers it owns point at offset 12
    qname = _question_name(query)
    if qname is not None:
        register_from = 0
        anchor = result.anchor
        if anchor is not None:
            offsets = label_offsets(qname)
            keep = len(anchor) - 1  # labels of the anchor, the root not counted
            if keep < len(offsets):  # the anchor is shorter than the query name
                register_from = offsets[-keep] if keep else len(qname)
                owner = qname.lower()
        writer.add_question(qname, query.qtype, query.qclass, register_from)
    edns = query.edns
    options = []
    if edns is not None:
        options = [(int(o.otype), o.to_wire() or b"") for o in reply_options(edns, nsid, ecs_scope, result.ede)]
        writer.reserve(OPT_FIXED_SIZE + sum(4 + len(value) for _, value in options))
    truncated = False
    for section, rrsets in ((ANSWER, result.answer), (AUTHORITY, result.authority)):
        # Only answers are owned by whatever name is asked (a wildcard's synthesis). An
        # authority record that happens to be owned by the query name (an NSEC3 whose
        # owner was asked for) is the zone's: a pointer to the question would give it
        # the next query's name when the answer is reused.
        mine = owner if section == ANSWER else None
        if _add_all(writer, section, rrsets, mine) < len(rrsets):
            truncated = True
            break
    complete = False
    if not truncated:
        added = _add_all(writer, ADDITIONAL, result.additional)
        complete = added == len(result.additional)
        truncated = result.kind is Kind.REFERRAL and any(
            rrset.name.is_subdomain(result.authority[0].name)
            for rrset in result.additional[added:]
        )
    if edns is not None:
        writer.release_reserved()
        ednsflags = (rcode >> 4) << 24 | (DO_BIT if edns.do else 0)
        writer.add_opt(server_payload, ednsflags, options)
    if truncated:
        writer.flags |= TC
    wire = writer.get_wire()
    return wire, (writer.pointers if complete else None)


def _question_name(query: Query) -> bytes | None:
    """The question name exactly as the query sent it (None when there is none)."""
    if query.question_end and query.data:
        return bytes(query.data[HEADER_SIZE : query.question_end - 4])
    qname = query.qname
    return None if qname is None else name_wire(qname)


def _add_all(
    writer: MessageWriter,
    section: int,
    rrsets: list[dns.rrset.RRset],
    owner: bytes | None = None,
) -> int:
    """Add RRsets in order until one does not fit; how many went in."""
    for added, rrset in enumerate(rrsets):
        if not writer.add_rrset(section, rrset, owner):
            return added
    return len(rrsets)
