"""The resolver, table-driven (CoreDNS plugin/file/lookup_test.go style).

Every case is one question and the whole expected reply: rcode, AA, kind, and each section
as zone-file text lines. The zones are written as zone-file text and loaded through
`gslb.load.zonefile`, so the real loader and validation build what the resolver walks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from gslb.dns.resolver import MAX_CNAME_CHAIN, Kind, Result, Zones, resolve
from gslb.load.zonefile import load_zone_file

NOERROR, NXDOMAIN, REFUSED = dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.REFUSED

# The served zones. example.test delegates ext.example.test (hosted elsewhere) and
# child.example.test (served here too); other.test is a second, unrelated served zone.
EXAMPLE_TEST = """\
$ORIGIN example.test.
$TTL 3600
@        IN SOA  ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300
         IN NS   ns1.example.test.
         IN NS   ns2.example.test.
         IN MX   10 mail.example.test.
         IN MX   20 mx.elsewhere.invalid.
         IN A    192.0.2.1
ns1      IN A    192.0.2.53
ns1      IN AAAA 2001:db8::53
ns2      IN A    192.0.2.54
mail     IN A    192.0.2.25
www      IN A    192.0.2.80
www      IN A    192.0.2.81
txtonly  IN TXT  "just text"
alias    IN CNAME www.example.test.
chain1   IN CNAME chain2.example.test.
chain2   IN CNAME alias.example.test.
docs     IN CNAME docs.other.test.
gone     IN CNAME nothing.other.test.
dangling IN CNAME missing.example.test.
cdn      IN CNAME cdn.provider.invalid.
self     IN CNAME self.example.test.
loop1    IN CNAME loop2.example.test.
loop2    IN CNAME loop1.example.test.
toext    IN CNAME host.ext.example.test.
a.b.deep IN TXT  "deep.example.test and b.deep.example.test are empty non-terminals"
*.apps   IN A    192.0.2.100
*.edge   IN CNAME www.example.test.
*.dead   IN CNAME nowhere.example.test.
_sip._udp IN SRV 10 60 5060 sip.example.test.
sip      IN A    192.0.2.60
sip      IN AAAA 2001:db8::60
wildmx   IN MX   10 one.apps.example.test.
wildmx   IN MX   20 one.apps.example.test.
wildmx   IN MX   30 two.x.apps.example.test.
wildmx   IN MX   40 b.deep.example.test.
mxglue   IN MX   10 ns1.ext.example.test.
nullmx   IN MX   0 .
nullmx   IN A    192.0.2.26
unk      IN TYPE65280 \\# 4 0a000001
ext      IN NS   ns1.ext.example.test.
ext      IN NS   ns.elsewhere.invalid.
ext      IN DS   12345 13 2 0000000000000000000000000000000000000000000000000000000000000000
ns1.ext  IN A    203.0.113.1
nods     IN NS   ns.elsewhere.invalid.
child    IN NS   ns1.child.example.test.
child    IN DS   54321 13 2 1111111111111111111111111111111111111111111111111111111111111111
ns1.child IN A   192.0.2.55
"""

CHILD_EXAMPLE_TEST = """\
$ORIGIN child.example.test.
$TTL 600
@    IN SOA ns1.child.example.test. hostmaster.example.test. 7 3600 900 604800 60
     IN NS  ns1.child.example.test.
ns1  IN A   192.0.2.55
www  IN A   192.0.2.56
"""

# The SOA's own TTL (120) is below its MINIMUM (900): negative answers use 120.
OTHER_TEST = """\
$ORIGIN other.test.
$TTL 1800
@    120 IN SOA ns1.example.test. hostmaster.other.test. 3 3600 900 604800 900
     IN NS   ns1.example.test.
docs IN A    192.0.2.110
"""

# RFC 4592 section 2.2.1, verbatim apart from the SOA and SRV data it leaves out.
RFC4592_EXAMPLE = """\
$ORIGIN example.
example.                 3600 IN  SOA   ns.example.com. hostmaster.example. 1 7200 3600 1209600 3600
example.                 3600     NS    ns.example.com.
example.                 3600     NS    ns.example.net.
*.example.               3600     TXT   "this is a wildcard"
*.example.               3600     MX    10 host1.example.
sub.*.example.           3600     TXT   "this is not a wildcard"
host1.example.           3600     A     192.0.2.1
_ssh._tcp.host1.example. 3600     SRV   0 0 22 host1.example.
_ssh._tcp.host2.example. 3600     SRV   0 0 22 host2.example.
subdel.example.          3600     NS    ns.example.com.
subdel.example.          3600     NS    ns.example.net.
"""

ZONE_TEXTS = {
    "example.test.zone": EXAMPLE_TEST,
    "child.example.test.zone": CHILD_EXAMPLE_TEST,
    "other.test.zone": OTHER_TEST,
    "example.zone": RFC4592_EXAMPLE,
}

SOA_EXAMPLE = "example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300"
SOA_CHILD = "child.example.test. 60 IN SOA ns1.child.example.test. hostmaster.example.test. 7 3600 900 604800 60"
SOA_OTHER = "other.test. 120 IN SOA ns1.example.test. hostmaster.other.test. 3 3600 900 604800 900"
SOA_RFC4592 = "example. 3600 IN SOA ns.example.com. hostmaster.example. 1 7200 3600 1209600 3600"
WWW = ["www.example.test. 3600 IN A 192.0.2.80", "www.example.test. 3600 IN A 192.0.2.81"]
EXT_NS = ["ext.example.test. 3600 IN NS ns1.ext.example.test.",
          "ext.example.test. 3600 IN NS ns.elsewhere.invalid."]
EXT_GLUE = ["ns1.ext.example.test. 3600 IN A 203.0.113.1"]


def load_served_zones(directory: Path, texts: dict[str, str]) -> Zones:
    zones = []
    for filename, text in texts.items():
        path = directory / filename
        path.write_text(text)
        zone, problems = load_zone_file(path)
        assert problems == [], [str(p) for p in problems]
        assert zone is not None
        zones.append(zone)
    return Zones(zones)


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> Zones:
    return load_served_zones(tmp_path_factory.mktemp("zones"), ZONE_TEXTS)


@dataclass
class Case:
    qname: str
    qtype: str
    rcode: int = NOERROR
    aa: bool = True
    kind: Kind = Kind.ANSWER
    answer: list[str] = field(default_factory=list)
    authority: list[str] = field(default_factory=list)
    additional: list[str] = field(default_factory=list)
    ordered: bool = False  # the answer's RRset order matters (CNAME chains)

    def __str__(self) -> str:
        return f"{self.qname}/{self.qtype}"


def rrset_lines(rrsets: list[dns.rrset.RRset]) -> list[list[str]]:
    """Each RRset as its sorted zone-file lines: whole RRsets compared, order within not."""
    return [sorted(rrset.to_text().splitlines()) for rrset in rrsets]


def expected_lines(lines: list[str]) -> list[list[str]]:
    """Expected text lines grouped into RRsets (consecutive lines of one name and type)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for line in lines:
        name, ttl, rdclass, rdtype, rdata = line.split(None, 4)
        # Round-trip through dnspython so spacing and spelling do not matter.
        text = dns.rrset.from_text(name, int(ttl), rdclass, rdtype, rdata).to_text()
        groups.setdefault((name.lower(), rdtype.upper()), []).append(text)
    return [sorted(group) for group in groups.values()]


def section(lines: list[list[str]], ordered: bool) -> list[list[str]]:
    return lines if ordered else sorted(lines)


def assert_result(result: Result, case: Case) -> None:
    got = {
        "rcode": dns.rcode.to_text(result.rcode),
        "aa": result.aa,
        "kind": result.kind,
        "answer": section(rrset_lines(result.answer), case.ordered),
        "authority": sorted(rrset_lines(result.authority)),
        "additional": sorted(rrset_lines(result.additional)),
    }
    want = {
        "rcode": dns.rcode.to_text(case.rcode),
        "aa": case.aa,
        "kind": case.kind,
        "answer": section(expected_lines(case.answer), case.ordered),
        "authority": sorted(expected_lines(case.authority)),
        "additional": sorted(expected_lines(case.additional)),
    }
    assert got == want


CASES = [
    # --- exact matches and negative answers (RFC 1034 4.3.2 step 3a, RFC 2308) ---
    Case("www.example.test.", "A", answer=WWW),
    Case("example.test.", "SOA",
         answer=["example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300"]),
    Case("www.example.test.", "AAAA", kind=Kind.NODATA, authority=[SOA_EXAMPLE]),
    Case("nope.example.test.", "A", rcode=NXDOMAIN, kind=Kind.NXDOMAIN, authority=[SOA_EXAMPLE]),
    Case("a.nope.example.test.", "A", rcode=NXDOMAIN, kind=Kind.NXDOMAIN, authority=[SOA_EXAMPLE]),
    # negative TTL is min(SOA TTL, MINIMUM): 120 here although MINIMUM is 900
    Case("nope.other.test.", "A", rcode=NXDOMAIN, kind=Kind.NXDOMAIN, authority=[SOA_OTHER]),
    Case("docs.other.test.", "TXT", kind=Kind.NODATA, authority=[SOA_OTHER]),
    # empty non-terminals exist: NODATA, not NXDOMAIN (RFC 4592 2.2.2, RFC 8020)
    Case("deep.example.test.", "A", kind=Kind.NODATA, authority=[SOA_EXAMPLE]),
    Case("b.deep.example.test.", "TXT", kind=Kind.NODATA, authority=[SOA_EXAMPLE]),
    Case("x.b.deep.example.test.", "TXT", rcode=NXDOMAIN, kind=Kind.NXDOMAIN, authority=[SOA_EXAMPLE]),
    # --- CNAMEs ---
    Case("alias.example.test.", "A", ordered=True,
         answer=["alias.example.test. 3600 IN CNAME www.example.test.", *WWW]),
    Case("alias.example.test.", "CNAME", answer=["alias.example.test. 3600 IN CNAME www.example.test."]),
    Case("chain1.example.test.", "A", ordered=True,
         answer=["chain1.example.test. 3600 IN CNAME chain2.example.test.",
                 "chain2.example.test. 3600 IN CNAME alias.example.test.",
                 "alias.example.test. 3600 IN CNAME www.example.test.", *WWW]),
    # target has no data of the type: the CNAME plus NODATA's SOA, NOERROR
    Case("alias.example.test.", "TXT",
         answer=["alias.example.test. 3600 IN CNAME www.example.test."], authority=[SOA_EXAMPLE]),
    # target does not exist: NXDOMAIN with the CNAME in the answer (RFC 6604)
    Case("dangling.example.test.", "A", rcode=NXDOMAIN, kind=Kind.NXDOMAIN,
         answer=["dangling.example.test. 3600 IN CNAME missing.example.test."], authority=[SOA_EXAMPLE]),
    # across served zones: followed, AA stays set; negative answers carry the target zone's SOA
    Case("docs.example.test.", "A", ordered=True,
         answer=["docs.example.test. 3600 IN CNAME docs.other.test.",
                 "docs.other.test. 1800 IN A 192.0.2.110"]),
    Case("gone.example.test.", "A", rcode=NXDOMAIN, kind=Kind.NXDOMAIN,
         answer=["gone.example.test. 3600 IN CNAME nothing.other.test."], authority=[SOA_OTHER]),
    # outside every zone: the CNAME alone, the resolver continues from there
    Case("cdn.example.test.", "A", answer=["cdn.example.test. 3600 IN CNAME cdn.provider.invalid."]),
    # loops are answered once around, never followed forever
    Case("self.example.test.", "A", answer=["self.example.test. 3600 IN CNAME self.example.test."]),
    Case("loop1.example.test.", "A", ordered=True,
         answer=["loop1.example.test. 3600 IN CNAME loop2.example.test.",
                 "loop2.example.test. 3600 IN CNAME loop1.example.test."]),
    # a CNAME into a delegation: the CNAME (authoritative), then the referral
    Case("toext.example.test.", "A",
         answer=["toext.example.test. 3600 IN CNAME host.ext.example.test."],
         authority=EXT_NS, additional=EXT_GLUE),
    # --- wildcards (RFC 4592) in example.test ---
    Case("x.apps.example.test.", "A", answer=["x.apps.example.test. 3600 IN A 192.0.2.100"]),
    Case("y.x.apps.example.test.", "A", answer=["y.x.apps.example.test. 3600 IN A 192.0.2.100"]),
    Case("x.apps.example.test.", "AAAA", kind=Kind.NODATA, authority=[SOA_EXAMPLE]),
    Case("apps.example.test.", "A", kind=Kind.NODATA, authority=[SOA_EXAMPLE]),  # ENT, no match
    Case("*.apps.example.test.", "A", answer=["*.apps.example.test. 3600 IN A 192.0.2.100"]),
    Case("foo.edge.example.test.", "A", ordered=True,
         answer=["foo.edge.example.test. 3600 IN CNAME www.example.test.", *WWW]),
    Case("foo.dead.example.test.", "A", rcode=NXDOMAIN, kind=Kind.NXDOMAIN,
         answer=["foo.dead.example.test. 3600 IN CNAME nowhere.example.test."], authority=[SOA_EXAMPLE]),
    # --- the RFC 4592 section 2.2.1 example and its listed answers ---
    Case("host3.example.", "MX", answer=["host3.example. 3600 IN MX 10 host1.example."],
         additional=["host1.example. 3600 IN A 192.0.2.1"]),
    Case("host3.example.", "A", kind=Kind.NODATA, authority=[SOA_RFC4592]),
    Case("foo.bar.example.", "TXT", answer=['foo.bar.example. 3600 IN TXT "this is a wildcard"']),
    Case("host1.example.", "MX", kind=Kind.NODATA, authority=[SOA_RFC4592]),
    Case("sub.*.example.", "MX", kind=Kind.NODATA, authority=[SOA_RFC4592]),
    Case("_telnet._tcp.host1.example.", "SRV", rcode=NXDOMAIN, kind=Kind.NXDOMAIN, authority=[SOA_RFC4592]),
    Case("host.subdel.example.", "A", aa=False, kind=Kind.REFERRAL,
         authority=["subdel.example. 3600 IN NS ns.example.com.", "subdel.example. 3600 IN NS ns.example.net."]),
    Case("ghost.*.example.", "MX", rcode=NXDOMAIN, kind=Kind.NXDOMAIN, authority=[SOA_RFC4592]),
    # the empty non-terminals of that zone block the wildcard too
    Case("_tcp.host1.example.", "TXT", kind=Kind.NODATA, authority=[SOA_RFC4592]),
    Case("host2.example.", "TXT", kind=Kind.NODATA, authority=[SOA_RFC4592]),
    # --- referrals at zone cuts ---
    Case("host.ext.example.test.", "A", aa=False, kind=Kind.REFERRAL, authority=EXT_NS, additional=EXT_GLUE),
    Case("ext.example.test.", "A", aa=False, kind=Kind.REFERRAL, authority=EXT_NS, additional=EXT_GLUE),
    Case("ext.example.test.", "NS", aa=False, kind=Kind.REFERRAL, authority=EXT_NS, additional=EXT_GLUE),
    Case("ns1.ext.example.test.", "A", aa=False, kind=Kind.REFERRAL, authority=EXT_NS, additional=EXT_GLUE),
    Case("a.b.c.ext.example.test.", "MX", aa=False, kind=Kind.REFERRAL, authority=EXT_NS, additional=EXT_GLUE),
    # DS lives on the parent side of the cut (RFC 4035 3.1.4.1)
    Case("ext.example.test.", "DS", answer=[
        "ext.example.test. 3600 IN DS 12345 13 2 0000000000000000000000000000000000000000000000000000000000000000"]),
    Case("nods.example.test.", "DS", kind=Kind.NODATA, authority=[SOA_EXAMPLE]),
    Case("host.ext.example.test.", "DS", aa=False, kind=Kind.REFERRAL, authority=EXT_NS, additional=EXT_GLUE),
    # --- parent and child served together ---
    Case("www.child.example.test.", "A", answer=["www.child.example.test. 600 IN A 192.0.2.56"]),
    Case("nope.child.example.test.", "A", rcode=NXDOMAIN, kind=Kind.NXDOMAIN, authority=[SOA_CHILD]),
    Case("child.example.test.", "NS", answer=["child.example.test. 600 IN NS ns1.child.example.test."],
         additional=["ns1.child.example.test. 600 IN A 192.0.2.55"]),
    Case("child.example.test.", "SOA", answer=[
        "child.example.test. 600 IN SOA ns1.child.example.test. hostmaster.example.test. 7 3600 900 604800 60"]),
    Case("child.example.test.", "DS", answer=[
        "child.example.test. 3600 IN DS 54321 13 2 1111111111111111111111111111111111111111111111111111111111111111"]),
    # the RFC 4592 zone "example." is a served child of nothing: DS at its apex is NODATA
    Case("example.", "DS", kind=Kind.NODATA, authority=[SOA_RFC4592]),
    # --- outside every zone ---
    Case("www.unserved.invalid.", "A", rcode=REFUSED, aa=False, kind=Kind.REFUSED),
    Case("test.", "SOA", rcode=REFUSED, aa=False, kind=Kind.REFUSED),
    Case(".", "NS", rcode=REFUSED, aa=False, kind=Kind.REFUSED),
    # --- additional section processing (MX, SRV, NS targets inside the zone) ---
    Case("example.test.", "MX",
         answer=["example.test. 3600 IN MX 10 mail.example.test.",
                 "example.test. 3600 IN MX 20 mx.elsewhere.invalid."],
         additional=["mail.example.test. 3600 IN A 192.0.2.25"]),
    Case("example.test.", "NS",
         answer=["example.test. 3600 IN NS ns1.example.test.", "example.test. 3600 IN NS ns2.example.test."],
         additional=["ns1.example.test. 3600 IN A 192.0.2.53", "ns1.example.test. 3600 IN AAAA 2001:db8::53",
                     "ns2.example.test. 3600 IN A 192.0.2.54"]),
    Case("_sip._udp.example.test.", "SRV", answer=["_sip._udp.example.test. 3600 IN SRV 10 60 5060 sip.example.test."],
         additional=["sip.example.test. 3600 IN A 192.0.2.60", "sip.example.test. 3600 IN AAAA 2001:db8::60"]),
    # targets that exist only through *.apps get its address under their own name, each
    # once (RFC 4592 section 4.1); an empty non-terminal (b.deep) exists and has none
    Case("wildmx.example.test.", "MX",
         answer=["wildmx.example.test. 3600 IN MX 10 one.apps.example.test.",
                 "wildmx.example.test. 3600 IN MX 20 one.apps.example.test.",
                 "wildmx.example.test. 3600 IN MX 30 two.x.apps.example.test.",
                 "wildmx.example.test. 3600 IN MX 40 b.deep.example.test."],
         additional=["one.apps.example.test. 3600 IN A 192.0.2.100",
                     "two.x.apps.example.test. 3600 IN A 192.0.2.100"]),
    # a target below a zone cut is not our data: no additional records for it
    Case("mxglue.example.test.", "MX", answer=["mxglue.example.test. 3600 IN MX 10 ns1.ext.example.test."]),
    # a null MX (RFC 7505) names no host: nothing in the additional section, not the
    # owner's addresses
    Case("nullmx.example.test.", "MX", answer=["nullmx.example.test. 3600 IN MX 0 ."]),
    # --- unknown types (RFC 3597) ---
    Case("unk.example.test.", "TYPE65280", answer=[r"unk.example.test. 3600 IN TYPE65280 \# 4 0a000001"]),
    Case("www.example.test.", "TYPE65280", kind=Kind.NODATA, authority=[SOA_EXAMPLE]),
    # --- ANY (RFC 8482) where the node has one RRset, or none ---
    Case("txtonly.example.test.", "ANY", answer=['txtonly.example.test. 3600 IN TXT "just text"']),
    Case("alias.example.test.", "ANY", answer=["alias.example.test. 3600 IN CNAME www.example.test."]),
    Case("nope.example.test.", "ANY", rcode=NXDOMAIN, kind=Kind.NXDOMAIN, authority=[SOA_EXAMPLE]),
    Case("deep.example.test.", "ANY", kind=Kind.NODATA, authority=[SOA_EXAMPLE]),
    Case("x.apps.example.test.", "ANY", answer=["x.apps.example.test. 3600 IN A 192.0.2.100"]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_lookup(zones: Zones, case: Case) -> None:
    result = resolve(zones, dns.name.from_text(case.qname), dns.rdatatype.from_text(case.qtype))
    assert_result(result, case)


def test_lookup_ignores_case_and_answers_with_the_name_asked(zones: Zones) -> None:
    qname = dns.name.from_text("X.ApPs.Example.TEST.")
    result = resolve(zones, qname, dns.rdatatype.A)
    assert result.rcode == NOERROR and result.wildcard
    # wildcard synthesis owns the answer by the query name, spelled as asked
    assert result.answer[0].name.to_text() == "X.ApPs.Example.TEST."
    exact = resolve(zones, dns.name.from_text("WWW.EXAMPLE.TEST."), dns.rdatatype.A)
    assert sorted(exact.answer[0].to_text().lower().splitlines()) == sorted(w.lower() for w in WWW)
    assert not exact.wildcard


def test_long_cname_chain_is_cut_off(tmp_path: Path) -> None:
    links = 3 * MAX_CNAME_CHAIN
    lines = [f"c{i} IN CNAME c{i + 1}.long.test." for i in range(links)]
    text = "\n".join([
        "$ORIGIN long.test.", "$TTL 60",
        "@ IN SOA ns.long.test. h.long.test. 1 2 3 4 5", "  IN NS ns.long.test.",
        "ns IN A 192.0.2.1", *lines, f"c{links} IN A 192.0.2.2", "",
    ])
    zones = load_served_zones(tmp_path, {"long.test.zone": text})
    result = resolve(zones, dns.name.from_text("c0.long.test."), dns.rdatatype.A)
    assert (result.rcode, result.kind, result.aa) == (NOERROR, Kind.ANSWER, True)
    assert result.authority == [] and result.additional == []
    # the chain is followed in order from the question, then stops: no A record, no loop
    assert all(rrset.rdtype == dns.rdatatype.CNAME for rrset in result.answer)
    assert [rrset.name.to_text() for rrset in result.answer] == [
        f"c{i}.long.test." for i in range(len(result.answer))
    ]
    assert MAX_CNAME_CHAIN <= len(result.answer) <= MAX_CNAME_CHAIN + 1
    # a chain within the limit is followed to its end
    short = resolve(zones, dns.name.from_text(f"c{links - 4}.long.test."), dns.rdatatype.A)
    assert [r.rdtype for r in short.answer] == [dns.rdatatype.CNAME] * 4 + [dns.rdatatype.A]


def test_any_answers_exactly_one_rrset_of_a_busy_node(zones: Zones) -> None:
    """RFC 8482 section 4.1: one RRset that exists at the name, never all of them."""
    apex = dns.name.from_text("example.test.")
    result = resolve(zones, apex, dns.rdatatype.ANY)
    assert (result.rcode, result.aa, result.kind) == (NOERROR, True, Kind.ANSWER)
    assert len(result.answer) == 1
    served = zones.find(apex)
    assert served is not None
    rrset = result.answer[0]
    assert served.get(apex, rrset.rdtype) == rrset
    assert result.authority == []


def test_rdata_dnspython_cannot_read_is_answered_as_it_was_loaded(tmp_path: Path) -> None:
    """RFC 8976 appendix A.3's ZONEMD of a private scheme (241) with hash 1 and a 20-octet
    digest loads (gslb.load.zoneparse); dnspython's reader refuses those bytes, so the
    answer carries them as they are (RFC 3597 form) instead of failing."""
    text = "\n".join([
        "$ORIGIN example.", "$TTL 86400", "@ SOA ns1 admin 2018031900 1800 900 604800 86400",
        "@ NS ns1", "ns1 A 192.0.2.1",
        "@ ZONEMD 2018031900 241 1 e1846540e33a9e4189792d18d5d131f605fc283e", "",
    ])
    zones = load_served_zones(tmp_path, {"example.zone": text})
    result = resolve(zones, dns.name.from_text("example."), dns.rdatatype.ZONEMD)
    assert (result.rcode, result.kind) == (NOERROR, Kind.ANSWER)
    [rdata] = result.answer[0]
    assert rdata.to_digestable() == bytes.fromhex(
        "7848b91cf101e1846540e33a9e4189792d18d5d131f605fc283e")


def test_a_dname_met_again_along_the_chain_is_shown_once(tmp_path: Path) -> None:
    """A DNAME at the apex that renames into its own subtree (Knot's dname_apex_nsec3
    test zone) is met at every link of the chain: the answer holds it once (RFC 2181
    section 5), and the chain stops at the limit."""
    text = "\n".join([
        "$ORIGIN loop.test.", "$TTL 60", "@ SOA ns.example. h 1 2 3 4 5", "@ NS ns.example.",
        "@ DNAME bar.loop.test.", "",
    ])
    zones = load_served_zones(tmp_path, {"loop.test.zone": text})
    result = resolve(zones, dns.name.from_text("x.loop.test."), dns.rdatatype.A)
    types = [rrset.rdtype for rrset in result.answer]
    assert types.count(dns.rdatatype.DNAME) == 1 and types[0] == dns.rdatatype.DNAME
    assert 1 < types.count(dns.rdatatype.CNAME) <= MAX_CNAME_CHAIN + 1
