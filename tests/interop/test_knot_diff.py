"""Differential test: gslb and Knot DNS serve the same zones and must give the same replies.

Both servers load `tests/interop/zones/` (written for this test: every authoritative case
has a name there). A corpus of queries (names x types x EDNS on/off x UDP/TCP, plus
mixed-case names, other payload sizes, DO), then the protocol corners (meta query types,
AXFR and IXFR over UDP, transfers from a client the access list refuses, classes not
served), goes to both with dnspython; rcode, AA, TC, the Extended DNS Error codes (RFC
8914), the answer and authority sections (sets of RRsets, names case-insensitive, TTLs
included) and, unless both replies are truncated, the additional section (glue of
referrals, MX/SRV/NS targets) must match. Both allow transfers from 127.0.0.1 only; the
refused ones are asked from 127.0.0.2. Where they may differ, `KNOWN_DIFFERENCES` says so, with a check of
what gslb answers instead and the RFC text that makes gslb's reply the right one. Anything
else fails with both replies printed.

Run: .venv/bin/python -m pytest -q tests/interop   (about 10 seconds)
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from tests.interop.compare import (
    Known,
    Outcome,
    Query,
    assert_none_stale,
    assert_only_known,
    ask,
    differing_parts,
    ede_codes,
    section_set,
)
from tests.interop.knot import KNOTD, KnotProcess
from tests.servers import GslbProcess

if KNOTD is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("knotd (Debian package knot) is required in CI")
    pytest.skip("knotd (Debian package knot) not installed", allow_module_level=True)

ZONES = Path(__file__).resolve().parent / "zones"
ORIGINS = ["parent.test.", "child.parent.test.", "other.test."]

# --- the corpus -------------------------------------------------------------------------

# Names relative to parent.test. unless they end with a dot.
NAMES = [
    # apex and plain data
    "@", "ns1", "mail", "web",
    # CNAME chains, loops, out-of-zone and cross-zone targets
    "www", "chain1", "cross", "crossback", "tochild", "tochildnx", "loop1", "self",
    "xloop", "outside", "todeleg", "tonx", "tonodata", "towild", "long01", "long05",
    # wildcards (RFC 4592)
    "foo.wild", "a.b.wild", "foo.*.wild", "*.wild", "exists.wild", "sub.exists.wild",
    "ent.wild", "x.ent.wild", "a.ent.wild", "foo.wcname", "foo.wchain", "foo.wcross",
    "foo.wmx", "towildmx", "_wild._tcp", "foo.x.enta", "x.enta", "enta", "foo.enta", "sub.www",
    # DNAME (RFC 6672), within the zone and into other.test
    "olddn", "host.olddn", "nothere.olddn", "a.b.olddn", "host.newdn", "web.xdn", "nothere.xdn",
    "short.longdn", f"{'x' * 40}.{'y' * 40}.longdn",  # the renamed name would pass 255: YXDOMAIN
    # SRV, IPSECKEY and unknown types
    "_sip._udp", "_xmpp._tcp", "srvdeleg", "ipsec", "ipsecnokey", "unk",
    # large RRsets
    "bigtxt", "manya", "mida",
    # delegations
    "deleg", "host.deleg", "ns1.deleg", "sibling", "www.sibling", "outns", "x.outns",
    "inzone", "a.inzone", "bigdeleg", "x.bigdeleg",
    # the served child zone and its delegation in the parent
    "child", "host.child", "ns1.child", "back.child", "nothere.child", "foo.wild.child",
    # negative answers
    "nothere", "deep.nothere",
    # the other zones
    "other.test.", "web.other.test.", "alias.other.test.", "xloop.other.test.",
    "nothere.other.test.", "a.b.other.test.",
    # outside every zone
    "test.", "example.org.", ".",
]
TYPES = ["A", "AAAA", "TXT", "MX", "NS", "SOA", "CNAME", "DNAME", "SRV", "DS", "ANY",
         "TYPE65280", "IPSECKEY"]
# Every type goes over UDP with EDNS; these also go over UDP without EDNS (512 bytes) and
# over TCP, where size limits, referrals and negative answers could change the reply.
TRANSPORT_TYPES = ["A", "AAAA", "TXT", "MX", "NS", "DS", "ANY", "IPSECKEY"]
# Names asked again with their case mixed, over UDP with EDNS.
MIXED_CASE = ["WwW", "Foo.WiLd", "cHiLd", "hOsT.DeLeG", "DeLeG", "XLoop", "BigTxt",
              "NoThere", "Web.Other.Test.", "EXISTS.wild", "_SIP._udp"]

# Truncation at other EDNS payload sizes (gslb and Knot both cap replies at 1232), and
# DNSSEC meta types asked at a CNAME, with the DO bit set.
PAYLOAD_PROBES = ["bigtxt", "manya", "mida", "bigdeleg", "x.bigdeleg", "@"]
DNSSEC_PROBES = ["www", "tonx", "foo.wcname", "web"]


def absolute(name: str) -> str:
    if name == "@":
        return "parent.test."
    return name if name.endswith(".") else f"{name}.parent.test."


def corpus() -> list[Query]:
    """Names x types x (UDP+EDNS, UDP, TCP), then mixed case, payload and DO probes."""
    queries = []
    for name in NAMES:
        for rdtype in TYPES:
            queries.append(Query(absolute(name), rdtype, tcp=False, edns=True))
            if rdtype in TRANSPORT_TYPES:
                queries.append(Query(absolute(name), rdtype, tcp=False, edns=False))
                queries.append(Query(absolute(name), rdtype, tcp=True, edns=True))
    for name in MIXED_CASE:
        for rdtype in ("A", "TXT", "NS", "DS"):
            queries.append(Query(absolute(name), rdtype, False, True))
    for name in PAYLOAD_PROBES:
        for payload in (512, 4096):
            queries.append(Query(absolute(name), "ANY" if name == "@" else "A", False, True, payload))
            queries.append(Query(absolute(name), "TXT", False, True, payload))
    for name in DNSSEC_PROBES:
        for rdtype in ("RRSIG", "NSEC", "A"):
            queries.append(Query(absolute(name), rdtype, False, True, dnssec_ok=True))
    return queries + corner_corpus()


# Meta QTYPEs (RFC 6895 section 3.1): MAILB, MAILA, OPT, TSIG and TKEY asked as a question
# (not a TSIG-signed query), and unassigned meta values; ANY and the transfers aside.
META_TYPES = ["MAILA", "MAILB", "TYPE41", "TSIG", "TKEY", "TYPE128", "TYPE200"]
META_NAMES = ["@", "www", "nothere", "deleg", "host.deleg", "foo.wild", "example.org."]
ZONE_SERIAL = 2024010101  # parent.test's SOA serial


def corner_corpus() -> list[Query]:
    """Meta types, AXFR/IXFR over UDP, refused transfers, classes not served (items
    the DNS corpus above does not reach); also sent to NSD by test_nsd_diff.py."""
    queries = [Query(absolute(name), rdtype, tcp=False, edns=edns)
               for name in META_NAMES for rdtype in META_TYPES for edns in (True, False)]
    for name in ("@", "www", "child", "example.org."):
        for edns in (True, False):
            queries.append(Query(absolute(name), "AXFR", tcp=False, edns=edns))
            queries.append(Query(absolute(name), "IXFR", tcp=False, edns=edns,
                                 ixfr_serial=ZONE_SERIAL))
    apex = absolute("@")
    for serial in (None, 1, ZONE_SERIAL, ZONE_SERIAL + 1):
        queries.append(Query(apex, "IXFR", tcp=False, edns=True, ixfr_serial=serial))
    queries.append(Query(apex, "IXFR", tcp=True, edns=True))  # no SOA: malformed
    for serial in (ZONE_SERIAL, ZONE_SERIAL + 1):  # up to date: the SOA alone
        queries.append(Query(apex, "IXFR", tcp=True, edns=True, ixfr_serial=serial))
    for rdtype, tcp in (("AXFR", True), ("IXFR", True), ("IXFR", False)):
        for edns in (True, False):
            queries.append(Query(apex, rdtype, tcp=tcp, edns=edns, source="127.0.0.2",
                                 ixfr_serial=1 if rdtype == "IXFR" else None))
    for rdclass in ("HS", "CLASS5", "CH"):
        queries.append(Query(apex, "SOA", tcp=False, edns=True, rdclass=rdclass))
    for name, rdtype, tcp in (("www", "A", False), ("nothere", "TXT", True),
                              ("example.org.", "A", False), ("@", "AXFR", False),
                              ("@", "AXFR", True)):
        for edns in (True, False):
            queries.append(Query(absolute(name), rdtype, tcp=tcp, edns=edns, tsig=True))
    return queries


# --- known differences ------------------------------------------------------------------

Message = dns.message.Message


def answer_extends_knot(ours: Message, theirs: Message) -> bool:
    """gslb kept going where Knot stopped: all of Knot's answer, then more answer RRsets or
    the negative SOA of the zone where the chain ended; never a referral."""
    mine, knots = section_set(ours.answer), section_set(theirs.answer)
    negative = [r.rdtype for r in ours.authority] == [dns.rdatatype.SOA]
    return knots <= mine and (knots < mine or negative) and not any(
        rrset.rdtype == dns.rdatatype.NS for rrset in ours.authority
    )


def same_chain_then_nxdomain(ours: Message, theirs: Message) -> bool:
    """Same CNAME in the answer; gslb says NXDOMAIN with the child's SOA."""
    return (
        section_set(ours.answer) == section_set(theirs.answer)
        and ours.rcode() == dns.rcode.NXDOMAIN
        and [r.rdtype for r in ours.authority] == [dns.rdatatype.SOA]
    )


def additional_without_glue(ours: Message, theirs: Message) -> bool:
    """gslb's additional section is Knot's minus the glue below the delegation."""
    return section_set(ours.additional) < section_set(theirs.additional)


CROSS_ZONE = (
    "RFC 1034 section 4.3.2 step 3a: after copying the CNAME, 'change QNAME to the "
    "canonical name in the CNAME RR, and go back to step 1', and step 1/2 search every "
    "zone this server has. Knot stays within the zone of the original QNAME; gslb (like "
    "NSD and BIND) continues in the other served zone, and a NODATA there carries that "
    "zone's SOA (RFC 2308 section 2.2)."
)
LONG_CHAIN = (
    "No RFC bounds how many CNAMEs a server follows; RFC 1034 section 4.3.2 step 3a "
    "follows each one, and a resolver restarts the query at whatever target is left "
    "unresolved (RFC 1034 section 5.3.3). Knot stops after 5 CNAMEs; gslb follows up to "
    "8 (resolver.MAX_CNAME_CHAIN), so a 7-link chain is answered in full and a longer one "
    "carries more of the chain than Knot's."
)
IXFR_SOA_AA = (
    "The IXFR reply that holds only the zone's SOA (client up to date, or over UDP: RFC "
    "1995 sections 2 and 4) comes from the zone this server is authoritative for, and RFC "
    "1035 section 4.1.1 sets AA when 'the responding name server is an authority for the "
    "domain name in question section'. NSD sets AA; Knot clears it."
)


TSIG_FIRST = (
    "A TSIG-signed query with a key this server does not hold. RFC 8945 section 5.2: on "
    "receipt the TSIG is checked before anything else, and section 5.2.2 answers an "
    "unknown key with NOTAUTH and TSIG error BADKEY. gslb and NSD do that for every "
    "signed query; Knot first refuses a name in no zone (REFUSED, EDE 20) and an AXFR "
    "over UDP (NOTIMP) without looking at the key."
)


def badkey_where_knot_answers(ours: Message, theirs: Message) -> bool:
    return (ours.rcode() == dns.rcode.NOTAUTH and getattr(ours, "reply_tsig_error", None) == 17
            and theirs.rcode() in (dns.rcode.REFUSED, dns.rcode.NOTIMP))


def soa_alone_with_aa(ours: Message, theirs: Message) -> bool:
    return bool(ours.flags & dns.flags.AA) and section_set(ours.answer) == section_set(theirs.answer)


KNOWN_DIFFERENCES: list[Known] = [
    Known("cross.parent.test.", (), frozenset({"answer", "authority"}),
          answer_extends_knot, CROSS_ZONE),
    Known("crossback.parent.test.", (), frozenset({"answer", "authority"}),
          answer_extends_knot, CROSS_ZONE + " Here the chain leaves and re-enters parent.test."),
    Known("foo.wcross.parent.test.", (), frozenset({"answer", "authority"}),
          answer_extends_knot, CROSS_ZONE + " The first CNAME is wildcard-synthesised."),
    Known("alias.other.test.", (), frozenset({"answer", "authority"}),
          answer_extends_knot, CROSS_ZONE),
    Known("back.child.parent.test.", (), frozenset({"answer", "authority"}),
          answer_extends_knot, CROSS_ZONE + " The chain goes from the child up to its parent."),
    Known("tochild.parent.test.", (), frozenset({"answer", "authority", "additional"}),
          answer_extends_knot,
          CROSS_ZONE + " The target is below the parent's cut for child.parent.test: Knot "
          "refers to the child from inside parent.test, but step 2 picks 'the zone which is "
          "the nearest ancestor to QNAME', which is the served child, so gslb answers "
          "authoritatively from it."),
    Known("tochildnx.parent.test.", (), frozenset({"rcode", "authority", "additional"}),
          same_chain_then_nxdomain,
          CROSS_ZONE + " The target does not exist in the served child zone: the rcode "
          "describes the last name in the chain (RFC 6604 section 2.1), so NXDOMAIN with "
          "the child's SOA at its negative TTL, where Knot refers to the child."),
    Known("xloop.parent.test.", (), frozenset({"answer"}), answer_extends_knot,
          CROSS_ZONE + " The chain loops back to the query name across zones; gslb stops "
          "at the first repeated name (RFC 1034 section 3.6.2: loops must be detected)."),
    Known("xloop.other.test.", (), frozenset({"answer"}), answer_extends_knot,
          CROSS_ZONE + " Same cross-zone loop, entered from other.test."),
    Known("web.xdn.parent.test.", (), frozenset({"answer", "authority"}), answer_extends_knot,
          CROSS_ZONE + " The CNAME is synthesised from a DNAME (RFC 6672 section 3.2), whose "
          "target is in other.test."),
    Known("nothere.xdn.parent.test.", (), frozenset({"answer", "authority"}),
          answer_extends_knot, CROSS_ZONE + " DNAME into other.test, whose apex wildcard "
          "then answers TXT (RFC 4592)."),
    Known("short.longdn.parent.test.", (), frozenset({"answer", "authority"}),
          answer_extends_knot, CROSS_ZONE + " DNAME into other.test, where the apex "
          "wildcard makes the target exist, so NODATA with other.test's SOA for most types."),
    Known("long01.parent.test.", (), frozenset({"answer"}), answer_extends_knot, LONG_CHAIN),
    Known("long05.parent.test.", (), frozenset({"answer", "authority"}), answer_extends_knot,
          LONG_CHAIN),
    Known("srvdeleg.parent.test.", ("SRV", "ANY"), frozenset({"additional"}),
          additional_without_glue,
          "The SRV target ns1.deleg.parent.test is below a zone cut, so its addresses are "
          "glue, which RFC 1034 section 4.2.1 says is not part of the zone's authoritative "
          "data: it exists so referrals work. RFC 1034 section 4.3.2 step 6 only says "
          "'attempt to add other RRs which may be useful', and RFC 2181 section 5.4.1 ranks "
          "glue lowest of all data, so gslb keeps it out of an authoritative (AA) answer "
          "and gives it only in referrals. NSD omits it too; Knot adds it."),
    Known("www.parent.test.", ("RRSIG", "NSEC"), frozenset({"answer"}), answer_extends_knot,
          "RFC 1034 section 4.3.2 step 3a follows a CNAME for every QTYPE except CNAME. "
          "RFC 2181 section 10.1 lets DNSSEC records (SIG and NXT, now RRSIG and NSEC per "
          "RFC 3755) sit beside a CNAME, so Knot answers "
          "RRSIG and NSEC from the alias node itself (NODATA in an unsigned zone); gslb and "
          "NSD follow the CNAME. Neither server signs, so no RRSIG or NSEC exists either "
          "way and the resolver learns the same thing."),
    Known("foo.wcname.parent.test.", ("RRSIG", "NSEC"), frozenset({"answer"}),
          answer_extends_knot, "As for www.parent.test RRSIG: a wildcard CNAME is followed."),
    Known("tonx.parent.test.", ("RRSIG", "NSEC"), frozenset({"answer", "rcode"}),
          lambda ours, theirs: ours.rcode() == dns.rcode.NXDOMAIN and bool(ours.answer),
          "As for www.parent.test RRSIG; the target does not exist, so NXDOMAIN for the "
          "last name in the chain (RFC 6604 section 2.1)."),
    *(Known(apex, ("IXFR",), frozenset({"aa"}), soa_alone_with_aa, IXFR_SOA_AA)
      for apex in ("parent.test.", "child.parent.test.")),
    Known("parent.test.", ("AXFR", "IXFR"), frozenset({"rcode", "ede"}),
          lambda ours, theirs: ours.rcode() == dns.rcode.REFUSED
          and theirs.rcode() == dns.rcode.NOTAUTH and ede_codes(ours) in ([18], [])
          and not ours.answer,
          "A transfer the access list does not allow: RFC 1035 section 4.1.1 defines "
          "REFUSED as refusing 'for policy reasons', and RFC 8914 section 4.19 defines EDE "
          "18 (Prohibited) to annotate exactly that REFUSED; NOTAUTH (RFC 8945 section 5.3.2, "
          "RFC 2136) says the server is not authoritative for the zone, which it is. NSD "
          "answers REFUSED with EDE 18 (to EDNS queries), Knot NOTAUTH."),
    *(Known(name, (rdtype,), frozenset({"rcode", "tsig", "ede"}), badkey_where_knot_answers,
            TSIG_FIRST) for name, rdtype in (("example.org.", "A"), ("parent.test.", "AXFR"))),
    Known("parent.test.", ("SOA",), frozenset({"ede"}),
          lambda ours, theirs: ours.rcode() == theirs.rcode() == dns.rcode.REFUSED
          and ede_codes(ours) == [21] and ede_codes(theirs) == [],
          "A class this server does not serve (HS, CLASS5, and CH beyond the server's own "
          "names): both refuse; gslb adds EDE 21 (Not Supported, RFC 8914 section 4.22: "
          "'the requested operation or query is not supported') as NSD does; Knot adds none."),
]


# --- running both ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gslb(udp_path: str) -> Iterator[GslbProcess]:
    """gslb on the same zones, allowing transfers to 127.0.0.1 only, as the peers do."""
    server = GslbProcess(ZONES, ["--xfr-allow", "127.0.0.1/32"])
    server.start(ORIGINS)
    yield server
    server.stop()


def run_corpus(gslb: GslbProcess, host: str, port: int, queries: list[Query],
               peer: str) -> list[Outcome]:
    """Every query to gslb and the peer; a few threads overlap the waits, order is kept."""
    def compare(query: Query) -> Outcome:
        ours = ask(gslb.host, gslb.port, query)
        theirs = ask(host, port, query)
        return Outcome(query, differing_parts(ours, theirs), ours, theirs, peer)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(compare, queries))


@pytest.fixture(scope="module")
def outcomes(gslb: GslbProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Outcome]]:
    """Start Knot, run the whole corpus against it and gslb, stop Knot by PID."""
    knot = KnotProcess(ZONES, ORIGINS, tmp_path_factory.mktemp("knot"))
    try:
        knot.start()
        yield run_corpus(gslb, knot.host, knot.port, corpus(), "knot")
    finally:
        knot.stop()


def test_corpus_is_large_enough() -> None:
    assert len(corpus()) >= 150


def test_replies_match_knot(outcomes: list[Outcome]) -> None:
    assert_only_known(outcomes, KNOWN_DIFFERENCES, "Knot DNS")


def test_known_differences_still_occur(outcomes: list[Outcome]) -> None:
    assert_none_stale(outcomes, KNOWN_DIFFERENCES)
