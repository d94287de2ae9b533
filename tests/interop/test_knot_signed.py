"""Differential test over pre-signed zones: gslb and Knot DNS serve the same signed files.

The project's test zone (every record type gslb loads) is signed at test time by Knot's
`kzonesign` with NSEC, NSEC3 and NSEC3 opt-out (tests/interop/signing.py); both servers
load the three signed files. Every name of the corpus is asked for the DNSSEC types and
the common ones, with the DO bit set and unset, over UDP with EDNS (and a few over TCP),
and the replies are compared as in test_knot_diff: rcode, flags, and the sections as sets
of RRsets (TTLs included). With DO the answer carries RRSIGs, and negative, wildcard and
referral answers the NSEC or NSEC3 records Knot picks; without DO none of it.
`KNOWN_DIFFERENCES` lists what may differ, each with its RFC reason.

RFC 5155's own example zone (Appendix A, tests/interop/signed/rfc5155) is served by both
too: its questions (Appendix B) and every name of it, each asked twice, so the second
reply comes from the answer cache (in C on the native path).

Run: .venv/bin/python -m pytest -q tests/interop/test_knot_signed.py
"""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from gslb.dns.denial import nsec3_hash
from tests.interop.knot import KNOTD, KnotProcess
from tests.interop.signing import POLICIES, SignedZones, sign_zones
from tests.interop.compare import (Known, Message, Outcome, Query, ask, assert_none_stale,
                                   assert_only_known, differing_parts, section_set)
from tests.redis_server import require
from tests.servers import GslbProcess

NAMES = [
    "@", "www", "mail", "alias", "chain", "tonx", "ns1", "ns2", "afs", "types", "txt.types",
    # wildcards, their CNAME, and the wildcard owner itself
    "foo.wild", "a.b.wild", "*.wild", "wild", "foo.wcname",
    # an MX whose target exists only through the wildcard (its address in additional)
    "wmx",
    # empty non-terminals and names below them
    "ent", "b.ent", "a.b.ent", "x.a.b.ent", "x.ent",
    "_sip._udp", "_udp", "_443._tcp.www", "_tcp.www",
    # DNAME
    "olddn", "host.olddn", "nothere.olddn", "host.newdn", "newdn",
    # an unsigned (opt-out) delegation and a secure one with DS
    "deleg", "x.deleg", "ns.deleg", "secure", "x.secure", "ns.secure",
    # names that do not exist
    "nothere", "deep.nothere", "zzz", "0",
]
TYPES = ["A", "AAAA", "TXT", "MX", "NS", "SOA", "CNAME", "DS", "DNSKEY", "NSEC", "NSEC3",
         "NSEC3PARAM", "RRSIG", "CDS", "CDNSKEY", "ANY", "CAA", "SRV"]
APEX_TYPES = {"DNSKEY", "NSEC3PARAM", "CDS", "CDNSKEY"}  # asked at the apex only
PLAIN_TYPES = ["A", "TXT", "DS", "NSEC", "RRSIG", "DNSKEY", "ANY"]  # also without DO
TYPES_AT_TYPES = ["HINFO", "RP", "AFSDB", "NAPTR", "LOC", "SSHFP", "URI", "SPF", "CERT",
                  "HTTPS", "SVCB", "KX", "DHCID", "TYPE65280", "TLSA", "IPSECKEY"]
TCP_NAMES = ["@", "www", "nothere", "foo.wild", "x.deleg", "x.secure"]


def absolute(name: str, origin: str) -> str:
    return origin if name == "@" else f"{name}.{origin}"


def hashed_apex(origin: str, signed: SignedZones) -> str | None:
    """The owner of the apex's NSEC3 record (a name that is only in the NSEC3 chain)."""
    text = (signed.directory / f"{origin}zone").read_text()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[2] == "NSEC3PARAM":
            iterations, salt = int(fields[5]), fields[6]
            digest = nsec3_hash(dns.name.from_text(origin).to_wire(),
                                b"" if salt == "-" else bytes.fromhex(salt), iterations)
            return f"{base64.b32hexencode(digest).decode().lower()}.{origin}"
    return None


def corpus(signed: SignedZones) -> list[Query]:
    queries = []
    for origin in signed.origins:
        names = [absolute(name, origin) for name in NAMES]
        extra = hashed_apex(origin, signed)
        if extra is not None:
            names.append(extra)
        for name in names:
            for rdtype in TYPES:
                if rdtype in APEX_TYPES and name != origin:
                    continue  # like any other missing type there: TXT and MX ask that
                queries.append(Query(name, rdtype, tcp=False, edns=True, dnssec_ok=True))
                if rdtype in PLAIN_TYPES:
                    queries.append(Query(name, rdtype, tcp=False, edns=True))
        for rdtype in TYPES_AT_TYPES:
            for do in (True, False):
                queries.append(Query(absolute("types", origin), rdtype, False, True,
                                     dnssec_ok=do))
        for name in TCP_NAMES:
            queries.append(Query(absolute(name, origin), "A", tcp=True, edns=True, dnssec_ok=True))
    return queries


FOLLOWS_CNAME = (
    "RFC 1034 section 4.3.2 step 3a follows a CNAME for every QTYPE but CNAME. An NSEC3 "
    "zone has no NSEC at the alias, so gslb (like NSD) follows the CNAME and proves that "
    "its target has no NSEC (or does not exist), with the CNAME's RRSIG: a validator "
    "accepts either reply. Knot answers NODATA from the alias node itself. The unsigned "
    "differential test has the same entry for RRSIG and NSEC (www.parent.test)."
)
ANY_PICK = (
    "RFC 8482 section 4.1: an ANY question gets 'one RRset' of the name's data, the "
    "server's pick. gslb answers the RRset of the lowest type there (NSEC, with its "
    "RRSIGs when DO is set); Knot picks its first RRset, here the RRSIGs."
)
SVCB_ADDITIONAL = (
    "RFC 9460 section 4.1 asks for the SVCB target's A and AAAA records (with their RRSIGs "
    "under DO) in the additional section; both servers add them, and Knot also adds the "
    "target's NSEC (or NSEC3) record, which no RFC asks for there."
)


def _follows_cname(ours: Message, theirs: Message) -> bool:
    return (not theirs.answer and ours.answer[0].rdtype == dns.rdatatype.CNAME
            and ours.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN))


def _one_rrset(ours: Message, theirs: Message) -> bool:
    owned = {r.name for r in ours.answer}
    data = [r for r in ours.answer if r.rdtype != dns.rdatatype.RRSIG]
    return len(owned) == 1 and len(data) == 1 and ours.rcode() == theirs.rcode()


def _additional_subset(ours: Message, theirs: Message) -> bool:
    mine = section_set(ours.additional)
    extra = section_set(theirs.additional) - mine
    return mine < section_set(theirs.additional) and all(
        rdtype in ("NSEC", "NSEC3", "RRSIG") for _, rdtype, _, _ in extra)


def _known(origins: list[str]) -> list[Known]:
    known = []
    for origin in origins:
        if origin != "nsec.test.":
            for name in ("alias", "chain", "foo.wcname"):
                known.append(Known(absolute(name, origin), ("NSEC",),
                                   frozenset({"answer", "authority"}), _follows_cname,
                                   FOLLOWS_CNAME))
            known.append(Known(absolute("tonx", origin), ("NSEC",),
                               frozenset({"answer", "authority", "rcode"}), _follows_cname,
                               FOLLOWS_CNAME + " The target does not exist: NXDOMAIN "
                               "(RFC 6604 section 2.1)."))
        known.append(Known(absolute("_443._tcp.www", origin), ("ANY",), frozenset({"answer"}),
                           _one_rrset, ANY_PICK))
        known.append(Known(absolute("types", origin), ("SVCB",), frozenset({"additional"}),
                           _additional_subset, SVCB_ADDITIONAL))
    return known


KNOWN_DIFFERENCES: list[Known] = _known(list(POLICIES))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory,
             udp_path: str) -> Iterator[list[Outcome]]:
    if KNOTD is None:
        require("knotd", "knot")
    signed = sign_zones(require("kzonesign", "knot-dnssecutils"), tmp_path_factory.mktemp("signed"))
    knot = KnotProcess(signed.directory, signed.origins, tmp_path_factory.mktemp("knot"))
    gslb = GslbProcess(signed.directory, ["--workers", "1"])
    try:
        knot.start()
        gslb.start(signed.origins)

        def compare(query: Query) -> Outcome:
            ours = ask(gslb.host, gslb.port, query)
            theirs = ask(knot.host, knot.port, query)
            return Outcome(query, differing_parts(ours, theirs), ours, theirs)

        with ThreadPoolExecutor(max_workers=8) as pool:
            yield list(pool.map(compare, corpus(signed)))
    finally:
        gslb.stop()
        knot.stop()


def test_signed_replies_match_knot(outcomes: list[Outcome]) -> None:
    assert_only_known(outcomes, KNOWN_DIFFERENCES, "Knot DNS")


def test_do_answers_carry_signatures(outcomes: list[Outcome]) -> None:
    """The corpus exercises what it claims: with DO, answers and proofs are signed and
    NXDOMAIN carries NSEC or NSEC3; without DO, no DNSSEC record appears."""
    kinds = set()
    for outcome in outcomes:
        types = {r.rdtype for s in (outcome.ours.answer, outcome.ours.authority) for r in s}
        if outcome.query.dnssec_ok:
            if outcome.ours.rcode() == 3 and types & {47, 50}:
                kinds.add("nxdomain proof " + ("nsec3" if 50 in types else "nsec"))
            if outcome.ours.answer and 46 in types:
                kinds.add("signed answer")
        elif outcome.query.rdtype not in ("RRSIG", "NSEC", "NSEC3", "DNSKEY", "DS", "ANY"):
            assert not types & {46, 47, 50}, outcome.report()
    assert kinds == {"nxdomain proof nsec", "nxdomain proof nsec3", "signed answer"}


def test_known_differences_still_occur(outcomes: list[Outcome]) -> None:
    assert_none_stale(outcomes, KNOWN_DIFFERENCES)


RFC5155 = Path(__file__).resolve().parent / "signed" / "rfc5155"
RFC5155_TYPES = ["A", "AAAA", "MX", "NS", "SOA", "DS", "HINFO", "TXT", "DNSKEY", "NSEC3",
                 "NSEC3PARAM", "RRSIG", "ANY"]
# Appendix B's questions' names (B.1 to B.6) and a few more that exist nowhere
RFC5155_MISSING = ["a.c.x.w.example.", "mc.c.example.", "a.z.w.example.", "y.w.example.",
                   "w.example.", "x.2t7b4g4vsa5smi47k61mv5bv1a22bojr.example.",
                   "x.kohar7mbb8dc2ce8a9qvl8hon4k53uhi.example.", "zz.example."]
BOTH = "2t7b4g4vsa5smi47k61mv5bv1a22bojr.example."  # H(ns1.example.), and an A of its own
ITS_HASH = "kohar7mbb8dc2ce8a9qvl8hon4k53uhi.example."  # H(2t7b4g...example.)


def rfc5155_corpus() -> list[Query]:
    owners = {line.split()[0].lower() for line in (RFC5155 / "example.zone").read_text().splitlines()
              if line and not line.startswith(";")}
    queries = []
    for name in sorted(owners) + RFC5155_MISSING:
        for rdtype in RFC5155_TYPES:
            queries.append(Query(name, rdtype, tcp=False, edns=True, dnssec_ok=True))
        for rdtype in ("A", "NSEC3"):
            queries.append(Query(name, rdtype, tcp=False, edns=True))
    return queries


@pytest.fixture(scope="module")
def rfc5155(tmp_path_factory: pytest.TempPathFactory,
            udp_path: str) -> Iterator[tuple[list[Outcome], list[Outcome]]]:
    """(first replies, second replies) of gslb, each against Knot's reply."""
    if KNOTD is None:
        require("knotd", "knot")
    knot = KnotProcess(RFC5155, ["example."], tmp_path_factory.mktemp("knot5155"))
    gslb = GslbProcess(RFC5155, ["--workers", "1", "--prewarm", "0"])
    try:
        knot.start()
        gslb.start(["example."])
        queries = rfc5155_corpus()
        with ThreadPoolExecutor(max_workers=8) as pool:
            theirs = list(pool.map(lambda q: ask(knot.host, knot.port, q), queries))
            passes = [list(pool.map(lambda q: ask(gslb.host, gslb.port, q), queries))
                      for _ in range(2)]
        yield tuple([Outcome(q, differing_parts(o, t), o, t)  # type: ignore[misc]
                     for q, o, t in zip(queries, ours, theirs)] for ours in passes)
    finally:
        gslb.stop()
        knot.stop()


def test_rfc5155_example_zone_replies_match_knot(rfc5155) -> None:
    first, cached = rfc5155
    assert_only_known(first, [], "Knot DNS")
    assert_only_known(cached, [], "Knot DNS (gslb's second, cached, replies)")


def _reply(outcomes: list[Outcome], name: str, rdtype: str) -> Message:
    return next(o.ours for o in outcomes if o.query.name == name and o.query.rdtype == rdtype
                and o.query.dnssec_ok)


def _nsec3_owners(message: Message) -> set[str]:
    return {r.name.to_text() for r in message.authority if r.rdtype == dns.rdatatype.NSEC3}


def test_an_nsec3_owner_that_is_also_a_name(rfc5155) -> None:
    """RFC 5155 Appendix A: 2t7b4g4vsa5smi47k61mv5bv1a22bojr.example. is the NSEC3 owner
    for ns1.example. and has an A record. ns1.example. has no NS: the NSEC3 matching it
    proves that (section 7.2.3). The name's NSEC3 type is no data of the name (section
    7.2.8 with erratum 4622): NODATA, proven by the NSEC3 that matches the name itself."""
    for outcomes in rfc5155:
        nodata = _reply(outcomes, "ns1.example.", "NS")
        assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
        assert _nsec3_owners(nodata) == {BOTH}
        own = _reply(outcomes, BOTH, "NSEC3")
        assert own.rcode() == dns.rcode.NOERROR and not own.answer
        assert _nsec3_owners(own) == {ITS_HASH}
        address = _reply(outcomes, BOTH, "A")
        assert [r.rdtype for r in address.answer] == [dns.rdatatype.A, dns.rdatatype.RRSIG]
