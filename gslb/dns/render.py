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


Pointer = tuple[int, int]  # (position of a compression pointer, the offset it points to)


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

    Only the whole query name and the suffixes from `result.anchor` up may be pointed
    at, so the message does not depend on the labels between the two: the answer
    cache reuses it for every name under the same anchor by moving those pointers."""
    flags = dns.flags.QR | (query.flags & (OPCODE_MASK | RD | CD))
    if result.aa:
        flags |= dns.flags.AA
    rcode = result.rcode
    flags |= rcode & 0xF
    renderer = _TrackingRenderer(query.id, flags, max_size)
    qname = query.qname
    owner = None  # how answer RRs owned by the query name are written
    if qname is not None:
        renderer.add_question(qname, query.qtype, query.qclass)
        if result.anchor is not None and result.anchor != qname:
            renderer.forget_below(qname, result.anchor)
            owner = _QuestionName(qname.labels)
    edns = query.edns
    options = reply_options(edns, nsid, ecs_scope) if edns is not None else []
    if edns is not None:
        renderer.reserve(OPT_FIXED_SIZE + sum(4 + len(o.to_wire() or b"") for o in options))
    truncated = False
    for section, rrsets in (
        (dns.renderer.ANSWER, result.answer),
        (dns.renderer.AUTHORITY, result.authority),
    ):
        if _add_all(renderer, section, rrsets, owner) < len(rrsets):
            truncated = True
            break
    complete = False
    if not truncated:
        added = _add_all(renderer, dns.renderer.ADDITIONAL, result.additional)
        complete = added == len(result.additional)
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
    if not complete:
        return renderer.get_wire(), None
    return renderer.get_wire(), renderer.compress.pointers


class _TrackingCompression(dict):
    """dnspython's compression table, noting each pointer as dnspython writes it."""

    def __init__(self, output) -> None:
        super().__init__()
        self.output = output
        self.pointers: list[Pointer] = []

    def get(self, key, default=None):
        target = super().get(key, default)
        if target is not None:
            self.pointers.append((self.output.tell(), target))
        return target


class _TrackingRenderer(dns.renderer.Renderer):
    def __init__(self, qid: int, flags: int, max_size: int) -> None:
        super().__init__(qid, flags, max_size)
        self.compress = _TrackingCompression(self.output)

    def forget_below(self, qname: dns.name.Name, anchor: dns.name.Name) -> None:
        """Unregister the question name and its suffixes below the anchor.

        Nothing can then point into labels that differ between names sharing the
        anchor; the query name itself is written only as a synthesised answer's owner,
        by `_QuestionName`."""
        for depth in range(len(anchor) + 1, len(qname) + 1):
            self.compress.pop(dns.name.Name(qname.labels[-depth:]), None)

    def _rollback(self, where: int) -> None:
        super()._rollback(where)  # an RRset that did not fit: its pointers are gone too
        self.compress.pointers = [p for p in self.compress.pointers if p[0] < where]


class _QuestionName(dns.name.Name):
    """The query name as an answer owner: always a pointer to the question (offset 12)."""

    __slots__ = ()

    def to_wire(self, file=None, compress=None, origin=None, canonicalize=False):  # type: ignore[override]
        if file is None:
            return super().to_wire(None, compress, origin, canonicalize)
        file.write(b"\xc0\x0c")
        return None


def _add_all(
    renderer: dns.renderer.Renderer,
    section: int,
    rrsets: list[dns.rrset.RRset],
    owner: _QuestionName | None = None,
) -> int:
    """Add RRsets in order until one does not fit; how many went in."""
    for added, rrset in enumerate(rrsets):
        try:
            if owner is not None and rrset.name == owner:
                renamed = dns.rrset.RRset(owner, rrset.rdclass, rrset.rdtype)
                renamed.update(rrset)
                rrset = renamed
            renderer.add_rrset(section, rrset, want_shuffle=False)  # same bytes every time
        except dns.exception.TooBig:
            return added
    return len(rrsets)
