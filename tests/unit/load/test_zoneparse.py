"""The fast master-file parser reads every syntax feature exactly as dnspython does."""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rdataclass
import dns.zone
import pytest

from gslb.dns.zone import ZoneBuilder
from gslb.load.zoneparse import ParseState, parse_file

ORIGIN = dns.name.from_text("example.test.")

ZONE = r"""$ORIGIN example.test.
$TTL 1h
@   IN  SOA ns1 hostmaster (
        2024010101 ; serial
        2h 1h 2w   ; refresh retry expire
        300 )      ; minimum
    IN NS ns1
    NS  ns2.example.test.
ns1 A 192.0.2.1
ns2 300 IN A 192.0.2.2
ns2 IN 300 AAAA 2001:db8::2
www 1d IN A 192.0.2.80
    IN A 192.0.2.81 ; the owner carries over
WWW IN A 192.0.2.80 ; a duplicate, in another case
www 1h30m A 192.0.2.82
txt TXT "hello; world" "  two  spaces  " unquoted\032escape
txt TXT ( "multi"
          "line" )
txt2 TXT ( "a"
host A 192.0.2.7
)
esc\.dot A 192.0.2.9
mx MX 10 mail
mx MX 20 mail.other.test.
mail A 192.0.2.25
srv._tcp SRV 0 5 5060 sip
srv._tcp SRV 1 5 5061 sip.other.test.
alias CNAME www
apex-alias CNAME @
dn DNAME elsewhere.test.
ptr PTR www
unk TYPE65280 \# 4 0a000001
num TYPE1 \# 4 c0000202
caa CAA 0 issue "ca.example.net"
lower in a 192.0.2.101
*.wild A 192.0.2.100
$ORIGIN sub.example.test.
host A 192.0.2.50
@ A 192.0.2.51
$TTL 120
rel A 192.0.2.52
abs.example.test. A 192.0.2.53
$ORIGIN example.test.
$GENERATE 1-3 gen$ A 192.0.2.$
$INCLUDE inc.part
$INCLUDE lab.part lab.example.test.
after A 192.0.2.99
"""

INCLUDED = """inc1 A 192.0.2.120
$ORIGIN other.example.test.
x 600 A 192.0.2.121
"""

LAB = """host A 192.0.2.130
   AAAA 2001:db8::130
"""


def record_set(zone: dns.zone.Zone) -> set[tuple[str, int, int, frozenset[bytes]]]:
    return {
        (name.to_text().lower(), rdataset.rdtype, rdataset.ttl, frozenset(rd.to_wire() for rd in rdataset))
        for name, rdataset in zone.iterate_rdatasets()
    }


def ours(path: Path) -> set[tuple[str, int, int, frozenset[bytes]]]:
    state = ParseState(str(path), ORIGIN)
    builder = ZoneBuilder()
    parse_file(path, state, ORIGIN.to_wire(), lambda o, t, ttl, rd, line: builder.add(o, t, ttl, rd, line))
    assert state.problems == [] and state.out_of_zone == []
    zone = builder.build(ORIGIN)
    return {
        (rrset.name.to_text(), rrset.rdtype, rrset.ttl, frozenset(rd.to_wire() for rd in rrset))
        for rrset in zone.rrsets()
    }


def test_every_syntax_feature_parses_as_dnspython_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "example.test.zone"
    path.write_text(ZONE)
    (tmp_path / "inc.part").write_text(INCLUDED)
    (tmp_path / "lab.part").write_text(LAB)
    monkeypatch.chdir(tmp_path)  # dnspython opens $INCLUDE files from the working directory
    reference = dns.zone.from_text(ZONE, ORIGIN, relativize=False, allow_include=True)
    expected = record_set(reference)
    assert len(expected) > 30
    assert ours(path) == expected


def test_a_line_inside_parentheses_is_rdata_not_a_record(tmp_path: Path) -> None:
    path = tmp_path / "example.test.zone"
    path.write_text(ZONE)
    (tmp_path / "inc.part").write_text(INCLUDED)
    (tmp_path / "lab.part").write_text(LAB)
    names = {name for name, *_ in ours(path)}
    assert "txt2.example.test." in names and "host.example.test." not in names


def test_soa_minimum_and_last_ttl_without_dollar_ttl(tmp_path: Path) -> None:
    text = "$ORIGIN example.test.\n@ SOA ns1 h 1 2 3 4 77\n NS ns1\nns1 500 A 192.0.2.1\nns2 A 192.0.2.2\n"
    path = tmp_path / "example.test.zone"
    path.write_text(text)
    assert ours(path) == record_set(dns.zone.from_text(text, ORIGIN, relativize=False))


def test_problems_name_their_line_and_parsing_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "example.test.zone"
    path.write_text("$ORIGIN example.test.\n$TTL 60\nok A 192.0.2.1\nbad A 192.0.2\n"
                    "x IN NOPE 1\nfar.example.org. A 192.0.2.3\nq TXT \"open\nok2 A 192.0.2.4\n")
    state = ParseState(str(path), ORIGIN)
    seen: list[tuple[bytes, int]] = []
    parse_file(path, state, ORIGIN.to_wire(), lambda o, t, ttl, rd, line: seen.append((o, line)))
    assert state.problems == [
        (str(path), 4, "bad A rdata: '192.0.2' is not an IPv4 address"),
        (str(path), 5, "unknown record type 'NOPE'"),
        (str(path), 7, "newline in quoted string"),
    ]
    assert state.out_of_zone == [(str(path), 6, "far.example.org.")]
    assert [line for _, line in seen] == [3, 8]


def test_zonemd_of_a_private_scheme_keeps_its_digest_length(tmp_path: Path) -> None:
    """RFC 8976 appendix A.3: the zone with several digests, one of a private-use scheme
    (241) with hash 1 and a digest of 20 octets, loads (Knot DNS loads it too); a SIMPLE
    digest of the wrong length, or one shorter than 12 octets, is refused at its line."""
    path = tmp_path / "example.zone"
    path.write_text(
        "example. 86400 IN SOA ns1 admin 2018031900 1800 900 604800 86400\n"
        "example. 86400 IN NS ns1\n"
        "example. 86400 IN ZONEMD 2018031900 241 1 (\n"
        "    e1846540e33a9e41 89792d18d5d131f6 ; a comment\n"
        "    05fc283e )\n"
        "example. 86400 IN ZONEMD 2018031900 1 1 e1846540e33a9e4189792d18d5d131f605fc283e\n"
        "example. 86400 IN ZONEMD 2018031900 241 1 e1846540e33a9e41\n"
        "example. 86400 IN ZONEMD \\# 26 7848b91cf101e1846540e33a9e4189792d18d5d131f605fc283e\n")
    origin = dns.name.from_text("example.")
    state = ParseState(str(path), origin)
    seen: list[tuple[int, bytes, int]] = []
    parse_file(path, state, origin.to_wire(), lambda o, t, ttl, rd, line: seen.append((t, rd, line)))
    digest = bytes.fromhex("7848b91c f101 e1846540e33a9e4189792d18d5d131f605fc283e")
    assert (63, digest, 3) in seen and (63, digest, 8) in seen  # also in RFC 3597 form
    assert [(line, message.split(":")[0]) for _, line, message in state.problems] == [
        (6, "bad ZONEMD rdata"), (7, "bad ZONEMD rdata")]
    assert "48 octets" in state.problems[0][2] and "12 octets" in state.problems[1][2]
