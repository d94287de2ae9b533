"""Turn a resolver result into response bytes, honouring the size limit.

Truncation follows RFC 2181 section 9 and RFC 9471: whole RRsets only; when an answer or
authority RRset (or in-domain glue of a referral) does not fit, TC is set so the client
retries over TCP; other additional data is simply left out. The OPT record always fits
because its space is reserved first.
"""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.name
import dns.renderer
import dns.rrset

from gslb.dns.edns import DO_BIT, reply_options
from gslb.dns.resolver import Kind, Result
from gslb.dns.wire import CD, OPCODE_MASK, RD, Query

OPT_FIXED_SIZE = 11  # root name, type, class, ttl, rdlength


def render(
    query: Query,
    result: Result,
    max_size: int,
    server_payload: int,
    nsid: bytes | None = None,
    ecs_scope: int = 0,
) -> bytes:
    """The response to `query` carrying `result`, at most `max_size` bytes long."""
    flags = dns.flags.QR | (query.flags & (OPCODE_MASK | RD | CD))
    if result.aa:
        flags |= dns.flags.AA
    rcode = result.rcode
    flags |= rcode & 0xF
    renderer = dns.renderer.Renderer(query.id, flags, max_size)
    if query.qname is not None:
        renderer.add_question(query.qname, query.qtype, query.qclass)
    edns = query.edns
    options = reply_options(edns, nsid, ecs_scope) if edns is not None else []
    if edns is not None:
        renderer.reserve(OPT_FIXED_SIZE + sum(4 + len(o.to_wire() or b"") for o in options))
    truncated = False
    for section, rrsets in (
        (dns.renderer.ANSWER, result.answer),
        (dns.renderer.AUTHORITY, result.authority),
    ):
        if _add_all(renderer, section, rrsets) < len(rrsets):
            truncated = True
            break
    if not truncated:
        added = _add_all(renderer, dns.renderer.ADDITIONAL, result.additional)
        truncated = result.kind is Kind.REFERRAL and any(
            rrset.name.is_subdomain(result.authority[0].name)
            for rrset in result.additional[added:]
        )
    if edns is not None:
        renderer.release_reserved()
        ednsflags = (rcode >> 4) << 24 | (DO_BIT if edns.do else 0)
        renderer.add_edns(0, ednsflags, server_payload, options)
    if truncated:
        renderer.flags |= dns.flags.TC
    renderer.write_header()
    return renderer.get_wire()


def _add_all(renderer: dns.renderer.Renderer, section: int, rrsets: list[dns.rrset.RRset]) -> int:
    """Add RRsets in order until one does not fit; how many went in."""
    for added, rrset in enumerate(rrsets):
        try:
            renderer.add_rrset(section, rrset)
        except dns.exception.TooBig:
            return added
    return len(rrsets)
