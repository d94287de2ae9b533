"""RFC 1034 section 4.3.2 over a set of zones: pure data in, sections out.

`resolve` returns the three sections, the rcode, the AA bit and a `Kind` that says what
sort of answer it is (like CoreDNS's lookup result), so renderers, caches and tests can
reason about the answer without re-deriving it. Nothing here touches sockets, clocks or
files; the same function serves the DNS path and the tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rrset

from gslb.dns.zone import NSEC, NSEC3, SIGS, Name, Node, Zone, sigs_key, to_wire

if TYPE_CHECKING:
    from gslb.dns.denial import Denial

# Longest CNAME chain we follow inside our own zones. Resolvers restart the lookup on
# whatever we leave unresolved, so stopping early is safe; looping is not.
MAX_CNAME_CHAIN = 8

A, AAAA, CNAME, NS, SOA, DS, DNAME = (
    dns.rdatatype.A,
    dns.rdatatype.AAAA,
    dns.rdatatype.CNAME,
    dns.rdatatype.NS,
    dns.rdatatype.SOA,
    dns.rdatatype.DS,
    dns.rdatatype.DNAME,
)
ANY = dns.rdatatype.ANY
RRSIG = dns.rdatatype.RRSIG

# Record types whose target names get address records in the additional section
# (RFC 1035 section 3.3.9 for MX, RFC 2782 for SRV, RFC 1034 for NS, RFC 9460 section
# 4.1 for SVCB and HTTPS, whose target "." stands for the owner itself).
_TARGET_OF = {
    dns.rdatatype.MX: lambda rd: rd.exchange,
    dns.rdatatype.SRV: lambda rd: rd.target,
    dns.rdatatype.NS: lambda rd: rd.target,
    dns.rdatatype.SVCB: lambda rd: rd.target,
    dns.rdatatype.HTTPS: lambda rd: rd.target,
}


# A steering hook: given an owner and its node, None when the owner is not steered, else
# the node with the steered RRsets in place and an rcode to answer with instead (SERVFAIL).
SteerFn = Callable[[Name, Node], "tuple[Node, int | None] | None"]


# Extended DNS Error codes (RFC 8914 section 4) this server sends, where Knot DNS or NSD do.
EDE_PROHIBITED = 18  # a zone transfer the access list does not allow (NSD)
EDE_NOT_AUTHORITATIVE = 20  # REFUSED: the name is in no served zone (Knot DNS and NSD)
EDE_NOT_SUPPORTED = 21  # REFUSED: a class this server does not serve (NSD)


class Kind(enum.Enum):
    """What sort of answer `resolve` produced."""

    ANSWER = "answer"  # the question's RRset (possibly via CNAMEs or a wildcard)
    NODATA = "nodata"  # the name exists, the type does not
    NXDOMAIN = "nxdomain"
    REFERRAL = "referral"  # the name is at or below a zone cut
    REFUSED = "refused"  # no served zone contains the name


@dataclass
class Result:
    kind: Kind
    rcode: int = dns.rcode.NOERROR
    aa: bool = True
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    zone: Zone | None = None
    wildcard: bool = False  # the first answer was synthesised from a wildcard
    # The name this answer depends on: the query name, or for a name that does not exist
    # (or lies below a cut) its closest encloser (or the cut). Every query name under the
    # same anchor gets the same sections (with DO in a signed zone: every name under the
    # same anchor and in the same `Denial.gap`); the answer cache relies on it.
    anchor: Name | None = None
    # Steering hook for this one query (see `resolve`); not part of the answer.
    steer: "SteerFn | None" = None
    steered: bool = False  # some node's RRset was chosen by steering: client-dependent
    # An Extended DNS Error (RFC 8914) INFO-CODE for the reply's OPT; only EDNS queries get it.
    ede: int | None = None
    # The query asked for DNSSEC records (DO): signed zones add RRSIGs and denial proofs.
    dnssec: bool = False


class Zones:
    """The served zones, looked up by the closest enclosing origin."""

    def __init__(self, zones: Iterable[Zone] = ()) -> None:
        self.by_origin: Mapping[Name, Zone] = {z.origin: z for z in zones}

    def __len__(self) -> int:
        return len(self.by_origin)

    def __iter__(self):
        return iter(self.by_origin.values())

    def find(self, name: Name) -> Zone | None:
        """The most specific served zone whose origin is `name` or an ancestor of it."""
        by_origin = self.by_origin
        while True:
            zone = by_origin.get(name)
            if zone is not None:
                return zone
            if len(name) <= 1:
                return None
            name = name.parent()

    def for_question(self, qname: Name, qtype: int) -> Zone | None:
        """The zone that answers: DS at a child apex is the parent's data (RFC 4035 3.1.4.1)."""
        zone = self.find(qname)
        if zone is not None and qtype == DS and qname == zone.origin and len(qname) > 1:
            parent = self.find(qname.parent())
            if parent is not None:
                return parent
        return zone


def resolve(zones: Zones, qname: Name, qtype: int, steer: "SteerFn | None" = None,
            dnssec: bool = False) -> Result:
    """Answer an IN-class question from the served zones.

    `steer(owner, node)` may replace a matched node's RRsets with the ones steering chose
    for this client (or say SERVFAIL); it is asked for every node the lookup answers from,
    CNAME targets included, so a chain into a steered name is steered too.

    With `dnssec` (the query's DO bit), signed zones add each RRset's RRSIGs and the
    NSEC or NSEC3 records that prove a denial or a wildcard (RFC 4035 section 3.1). Which
    records prove it depends on where the query name falls in the chain as well as on
    the anchor: see `Denial.gap`, which the answer cache adds to such an answer's key."""
    zone = zones.for_question(qname, qtype)
    if zone is None:
        return Result(Kind.REFUSED, rcode=dns.rcode.REFUSED, aa=False, anchor=dns.name.root,
                      ede=EDE_NOT_AUTHORITATIVE)
    result = Result(Kind.ANSWER, zone=zone, anchor=qname, steer=steer, dnssec=dnssec)
    _lookup(zones, zone, qname, qtype, result, seen={qname})
    return result


def _lookup(
    zones: Zones, zone: Zone, qname: Name, qtype: int, result: Result, seen: set[Name]
) -> None:
    """One pass of step 3 of RFC 1034 4.3.2 in `zone`; CNAMEs restart at step 1."""
    origin_len = len(zone.origin)
    # Step 3b: walk down from the apex; the first cut on the way means a referral, the
    # first missing name means the query name does not exist (its parent is the
    # closest encloser, RFC 4592 section 3.3.1). A DNAME on a proper ancestor (the apex
    # included) renames everything below it (RFC 6672 section 3.2), before any wildcard.
    for depth in range(origin_len, len(qname) + 1):
        name = qname if depth == len(qname) else qname.split(depth)[1]
        if zone.is_cut(name) and not (name == qname and qtype == DS):
            _refer(zone, name, result)
            return
        if not zone.exists(name):
            _no_such_name(zones, zone, qname, qtype, name.parent(), result, seen)
            return
        dname = zone.get(name, DNAME) if name != qname and zone.has_dname(name) else None
        if dname is not None:
            # a chain that meets the same DNAME again (one that renames into its own
            # subtree) shows it once: duplicate RRs are not repeated (RFC 2181 section 5)
            if not any(r is dname for r in result.answer):
                result.answer.append(dname)
                _sign(zone, result, result.answer, zone.node(name), DNAME, name)
            _substitute(zones, qname, qtype, dname, result, seen)
            return
    node = zone.node(qname)
    _answer_from_node(zones, zone, qname, qtype, node, result, seen)


def _no_such_name(
    zones: Zones,
    zone: Zone,
    qname: Name,
    qtype: int,
    closest_encloser: Name,
    result: Result,
    seen: set[Name],
) -> None:
    """Step 3c: synthesise from `*.<closest encloser>` (RFC 4592) or deny the name."""
    if not result.answer:
        result.anchor = closest_encloser
    source = dns.name.Name((b"*",) + closest_encloser.labels)
    node = zone.node(source)
    if not node:
        _negative(zone, result, qname, qtype, nxdomain=True, encloser=closest_encloser)
        return
    if not result.answer:
        result.wildcard = True
    _answer_from_node(zones, zone, qname, qtype, node, result, seen, closest_encloser)


def _answer_from_node(
    zones: Zones,
    zone: Zone,
    owner: Name,
    qtype: int,
    node: Node,
    result: Result,
    seen: set[Name],
    encloser: Name | None = None,
) -> None:
    """Step 3a: the node matched; answer its RRset, follow its CNAME, or say NODATA.

    `encloser` is set when the node is a wildcard's, synthesising for a name below the
    closest encloser (RFC 4592): then a signed zone also proves the name does not exist."""
    signing = True
    if result.steer is not None:
        steered = result.steer(owner, node)
        if steered is not None:
            result.steered = True
            signing = False  # steering's RRsets are not the ones the signer signed
            node, rcode = steered
            if rcode is not None:  # every pool down and the record answers SERVFAIL
                result.answer.clear()
                result.rcode, result.kind = rcode, Kind.ANSWER
                return
    if qtype == ANY:
        rrset = _minimal_any(node)
    elif qtype == RRSIG:
        rrset = _minimal_sigs(node)
    else:
        rrset = node.get(qtype)
        if rrset is None:
            rrset = node.get(CNAME)
    if rrset is None:
        _negative(zone, result, owner, qtype, nxdomain=False, encloser=encloser)
        return
    result.answer.append(_owned_by(rrset, owner))
    result.kind = Kind.ANSWER
    if signing:
        _sign(zone, result, result.answer, node, rrset.rdtype, owner)
    if encloser is not None:
        _prove(zone, result, lambda denial: denial.wildcard_answer(_wire(owner), _wire(encloser)))
    if rrset.rdtype == CNAME and qtype not in (CNAME, ANY):
        _chase(zones, rrset[0].target, qtype, result, seen)
    else:
        _add_targets(zone, rrset, result)


def _chase(zones: Zones, target: Name, qtype: int, result: Result, seen: set[Name]) -> None:
    """Restart at step 1 with the canonical name, unless it loops or runs too long."""
    if target in seen or len(seen) > MAX_CNAME_CHAIN:
        return
    seen.add(target)
    next_zone = zones.find(target)
    if next_zone is None:
        return  # outside our authority: the resolver takes it from here
    _lookup(zones, next_zone, target, qtype, result, seen)


def _substitute(
    zones: Zones, qname: Name, qtype: int, dname: dns.rrset.RRset, result: Result, seen: set[Name]
) -> None:
    """RFC 6672 section 3.2: the DNAME, a CNAME synthesised from it, then the chase.

    The CNAME carries the DNAME's TTL (section 3.1) so resolvers that do not know DNAME
    still get a usable answer; it is itself the answer to a CNAME question, so that is
    not chased (RFC 1034 section 4.3.2 step 3a). A new name longer than 255 octets is
    YXDOMAIN."""
    owner = dname.name
    result.kind = Kind.ANSWER
    try:
        # lowercased: the answer must not depend on how the query spelled its name,
        # or one cached answer could not serve every spelling
        target = qname.relativize(owner).canonicalize().concatenate(dname[0].target)
    except dns.name.NameTooLong:
        result.rcode = dns.rcode.YXDOMAIN
        return
    cname = dns.rrset.from_rdata(qname, dname.ttl, dns.rdtypes.ANY.CNAME.CNAME(
        dname.rdclass, CNAME, target))
    result.answer.append(cname)
    if qtype != CNAME:
        _chase(zones, target, qtype, result, seen)


def _minimal_any(node: Node) -> dns.rrset.RRset | None:
    """RFC 8482 section 4.1: answer ANY with one RRset of the node, never all of them."""
    if not node:
        return None
    if CNAME in node:
        return node[CNAME]
    return node[min(node)]


def _minimal_sigs(node: Node) -> dns.rrset.RRset | None:
    """An RRSIG question gets one RRset of the node's signatures, those over its lowest
    type, as Knot DNS answers it (the ANY rule of RFC 8482 applied to RRSIG)."""
    keys = [key for key in node if key >= SIGS]
    return node[min(keys)] if keys else None


def _negative(zone: Zone, result: Result, qname: Name, qtype: int, nxdomain: bool,
              encloser: Name | None = None) -> None:
    """NXDOMAIN or NODATA with the SOA in authority at the negative TTL (RFC 2308).

    A signed zone adds the SOA's RRSIGs and the denial proof (see `gslb.dns.denial`):
    `encloser` is the closest encloser of a missing name, or of a name whose wildcard
    lacks the type."""
    soa = zone.soa
    negative = soa.copy()  # a copy: update() would re-hash every rdata, for nothing
    negative.ttl = zone.negative_ttl
    result.authority.append(negative)
    if result.dnssec and zone.signed:
        sigs = zone.node(zone.origin).get(sigs_key(SOA))
        if sigs is not None:
            sigs = sigs.copy()
            sigs.ttl = negative.ttl
            result.authority.append(sigs)
        name = _wire(qname)
        if nxdomain:
            assert encloser is not None
            _prove(zone, result, lambda denial: denial.nxdomain(name, _wire(encloser)))
        elif encloser is not None:
            _prove(zone, result, lambda denial: denial.wildcard_nodata(name, _wire(encloser)))
        else:
            _prove(zone, result, lambda denial: denial.nodata(name, qtype))
    if nxdomain:
        result.kind = Kind.NXDOMAIN
        result.rcode = dns.rcode.NXDOMAIN
    elif not result.answer:
        result.kind = Kind.NODATA


def _refer(zone: Zone, cut: Name, result: Result) -> None:
    """A delegation: the child's NS in authority, glue in additional, AA cleared.

    After a CNAME the referral is appended below the authoritative CNAME, whose AA bit
    stands (RFC 1034 section 4.3.2 step 3b after 3a)."""
    node = zone.node(cut)
    ns = node[NS]
    if not result.answer:
        result.anchor = cut
        result.kind = Kind.REFERRAL
        result.aa = False
    result.authority.append(ns)
    if result.dnssec and zone.signed:  # the DS, or proof that there is none (RFC 4035 3.1.4)
        ds = node.get(DS)
        if ds is not None:
            result.authority.append(ds)
            _sign(zone, result, result.authority, node, DS, cut)
        else:
            _prove(zone, result, lambda denial: denial.no_ds(_wire(cut)))
    for rd in ns:
        if rd.target.is_subdomain(zone.origin):
            _add_addresses(zone, rd.target, result, glue=True)


def _add_targets(zone: Zone, rrset: dns.rrset.RRset, result: Result) -> None:
    """Additional-section processing for MX, SRV and NS targets inside the zone."""
    target_of = _TARGET_OF.get(rrset.rdtype)
    if target_of is None:
        return
    for rd in rrset:
        target = target_of(rd)
        if target == dns.name.root:
            continue  # a null MX (RFC 7505) or an SRV "no service" (RFC 2782) names no host
        if target.is_subdomain(zone.origin):
            _add_addresses(zone, target, result, glue=rrset.rdtype == NS)


def _add_addresses(zone: Zone, target: Name, result: Result, glue: bool) -> None:
    """A and AAAA of `target`; only authoritative data unless this is glue (which is
    never signed: only authoritative addresses get their RRSIGs with DO).

    A target that does not exist (and is not below a cut) gets the addresses a query for
    it would: those of the wildcard at its closest encloser, under its own name (RFC 4592
    section 4.1; Knot DNS and NSD do the same, signatures included)."""
    occluded = _below_cut(zone, target)
    if occluded and not glue:
        return
    node = zone.node(target)
    if not node and not occluded and not zone.exists(target):
        _add_synthesised(zone, target, result)
        return
    for rdtype in (A, AAAA):
        rrset = node.get(rdtype)
        if rrset is not None and not any(r is rrset for r in result.additional):
            if not any(r is rrset for r in result.answer):
                result.additional.append(rrset)
                if not occluded:
                    _sign(zone, result, result.additional, node, rdtype, target)


def _add_synthesised(zone: Zone, target: Name, result: Result) -> None:
    """The wildcard's A and AAAA renamed to `target`, a name the zone lacks (each RRset
    once per answer: the copies are new objects, so they are compared by name)."""
    encloser = target.parent()
    while len(encloser) > len(zone.origin) and not zone.exists(encloser):
        encloser = encloser.parent()
    node = zone.node(dns.name.Name((b"*",) + encloser.labels))
    for rdtype in (A, AAAA):
        rrset = node.get(rdtype)
        if rrset is not None and not any(r.name == target and r.rdtype == rdtype
                                         for section in (result.answer, result.additional)
                                         for r in section):
            result.additional.append(_owned_by(rrset, target))
            _sign(zone, result, result.additional, node, rdtype, target)


def _below_cut(zone: Zone, name: Name) -> bool:
    while len(name) > len(zone.origin):
        if zone.is_cut(name):
            return True
        name = name.parent()
    return False


def _sign(zone: Zone, result: Result, section: list[dns.rrset.RRset], node: Node,
          rdtype: int, owner: Name) -> None:
    """With DO, in a signed zone: the RRSIGs over `rdtype` at `node` after its RRset,
    under `owner` (a wildcard's signatures keep their label count, so a validator sees
    the synthesis, RFC 4035 section 5.3.4)."""
    if result.dnssec and zone.signed:
        sigs = node.get(sigs_key(rdtype))
        if sigs is not None:
            section.append(_owned_by(sigs, owner))


def _prove(zone: Zone, result: Result, proof: "Callable[[Denial], list[bytes]]") -> None:
    """With DO, in a signed zone: the NSEC or NSEC3 records `proof` picks, each with its
    RRSIGs, into authority (each owner once per answer)."""
    denial = zone.denial
    if not result.dnssec or denial is None or not (denial.nsec_owners or denial.hashes):
        return
    rdtype = NSEC3 if denial.nsec3 else NSEC
    present = {(r.name, r.rdtype) for r in result.authority}
    # An NSEC question at a wildcard has the wildcard's NSEC as its answer already.
    answered = [set(r) for r in result.answer if r.rdtype == rdtype]
    for owner in proof(denial):
        node = zone.chain_node(owner) if denial.nsec3 else zone.node_at(owner)
        rrset = node.get(rdtype)
        if rrset is None or (rrset.name, rdtype) in present or set(rrset) in answered:
            continue
        result.authority.append(rrset)
        sigs = node.get(sigs_key(rdtype))
        if sigs is not None:
            result.authority.append(sigs)


def _wire(name: Name) -> bytes:
    return to_wire(name).lower()


def _owned_by(rrset: dns.rrset.RRset, owner: Name) -> dns.rrset.RRset:
    """The RRset under the owner name as asked (wildcard synthesis keeps the data)."""
    if rrset.name == owner:
        return rrset  # same name in any case: compression echoes the question's case
    renamed = dns.rrset.RRset(owner, rrset.rdclass, rrset.rdtype)
    renamed.update(rrset)
    return renamed
