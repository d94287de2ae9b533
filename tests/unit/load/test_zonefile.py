"""Zone file loading and validation: the exact `file:line: message` list is the contract."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import dns.name
import dns.rdatatype
import pytest

from gslb.load import zonefile, zoneparse
from gslb.load.zonefile import load_zone_file, load_zones

HEAD = """\
$ORIGIN example.test.
$TTL 300
@    IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300
     IN NS  ns1.example.test.
ns1  IN A   192.0.2.53
"""  # lines 1-5; test bodies start on line 6


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    """The problems `gslb check --strict` reports (warnings included)."""
    zone, problems = load_zone_file(path, strict=True)
    assert (zone is None) == bool(problems), "a zone with problems must not load"
    return [str(p) for p in problems]


def test_valid_zone_loads_with_its_records(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone", HEAD + "www IN A 192.0.2.80\nwww IN A 192.0.2.81\n")
    zone, problems = load_zone_file(path)
    assert problems == []
    assert zone is not None
    assert zone.origin == dns.name.from_text("example.test.")
    assert zone.serial() == 1 and zone.source == str(path)
    www = zone.get(dns.name.from_text("www.example.test."), dns.rdatatype.A)
    assert www is not None and sorted(rd.to_text() for rd in www) == ["192.0.2.80", "192.0.2.81"]


def test_missing_soa(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone",
                 "$ORIGIN example.test.\n$TTL 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\n")
    assert problems_of(path) == [f"{path}:3: zone example.test. has no SOA record at its apex"]


def test_missing_apex_ns(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone",
                 "$ORIGIN example.test.\n$TTL 300\n\n@ IN SOA ns1 h 1 2 3 4 5\nns1 IN A 192.0.2.53\n")
    assert problems_of(path) == [f"{path}:4: zone example.test. has no NS records at its apex: no resolver can find its name servers"]


def test_ns_below_the_apex_does_not_count_as_apex_ns(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone",
                 "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 h 1 2 3 4 5\n"
                 "sub IN NS ns.elsewhere.invalid.\n")
    assert problems_of(path) == [f"{path}:3: zone example.test. has no NS records at its apex: no resolver can find its name servers"]


def test_cname_beside_other_data(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone", HEAD
                 + "www IN A 192.0.2.80\nwww IN CNAME web\nwww IN TXT \"x\"\nweb IN A 192.0.2.81\n")
    assert problems_of(path) == [f"{path}:7: CNAME at www.example.test. beside other data (A, TXT)"]


def test_two_cnames(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone", HEAD
                 + "www IN CNAME web1\nweb1 IN A 192.0.2.1\nwww IN CNAME web2\nweb2 IN A 192.0.2.2\n")
    assert problems_of(path) == [f"{path}:8: more than one CNAME record at www.example.test."]


def test_out_of_zone_data_is_skipped_with_a_warning(tmp_path: Path) -> None:
    """As Knot DNS: "ignoring out-of-zone data", and the rest of the zone loads."""
    path = write(tmp_path, "example.test.zone", HEAD
                 + "www.example.org. IN A 192.0.2.1\nok IN A 192.0.2.2\nexample.test.evil. IN TXT \"x\"\n")
    warnings: list = []
    zone, problems = load_zone_file(path, warnings)
    assert problems == [] and zone is not None
    assert [str(w) for w in warnings] == [
        f"{path}:6: ignoring out-of-zone data www.example.org. (outside the zone example.test.)",
        f"{path}:8: ignoring out-of-zone data example.test.evil. (outside the zone example.test.)",
    ]
    assert zone.exists(dns.name.from_text("ok.example.test."))
    assert zone.record_count() == 4
    assert [str(w) for w in load_zones(tmp_path).warnings] == [str(w) for w in warnings]


def test_quoted_include_with_a_space(tmp_path: Path) -> None:
    write(tmp_path, "my hosts.inc", "inc IN TXT \"included\"\n")
    path = write(tmp_path, "example.test.zone", HEAD + '$INCLUDE "my hosts.inc"\n')
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None
    assert zone.exists(dns.name.from_text("inc.example.test."))


def test_generate_without_ttl_takes_the_last_stated_ttl(tmp_path: Path) -> None:
    """No $TTL: a $GENERATE record gets the last explicit TTL, as BIND and dnspython
    give it (and as plain records get it), not the SOA MINIMUM."""
    path = write(tmp_path, "gen.test.zone", "$ORIGIN gen.test.\n@ 600 SOA ns1 h 1 2 3 4 5\n"
                 "@ NS ns1\nns1 120 A 192.0.2.1\n$GENERATE 1-2 host$ A 192.0.2.$\n")
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None
    rrset = zone.get(dns.name.from_text("host2.gen.test."), dns.rdatatype.A)
    assert rrset is not None and rrset.ttl == 120


def test_bind_dump_takes_its_apex_from_the_soa(tmp_path: Path) -> None:
    """`$ORIGIN .` then absolute names (named-compilezone -s full output): the apex is
    the SOA's owner, whatever the file is called, as `kzonecheck -o` reads it."""
    path = write(tmp_path, "dump.db.zone", """\
$ORIGIN .
$TTL 3600\t; 1 hour
example.test\t\tIN SOA\tns1.example.test. hostmaster.example.test. (
\t\t\t\t2026112901 ; serial
\t\t\t\t3600 600 86400 300 )
\t\t\tNS\tns1.example.test.
$ORIGIN example.test.
ns1\t\t\tA\t192.0.2.1
www\t\t\tA\t192.0.2.2
""")
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None
    assert zone.origin == dns.name.from_text("example.test.") and zone.serial() == 2026112901
    assert zone.exists(dns.name.from_text("www.example.test."))


def test_missing_glue_for_in_bailiwick_ns(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone", HEAD
                 + "child IN NS ns1.child.example.test.\n"
                 "child IN NS ns.elsewhere.invalid.\n"  # out of bailiwick: no glue needed
                 "other IN NS ns1.child.example.test.\n")
    assert problems_of(path) == [
        f"{path}:6: NS ns1.child.example.test. for child.example.test. has no glue (A or AAAA) in the zone",
        f"{path}:8: NS ns1.child.example.test. for other.example.test. has no glue (A or AAAA) in the zone",
    ]


def test_glue_as_aaaa_is_enough(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone", HEAD
                 + "child IN NS ns1.child\nns1.child IN AAAA 2001:db8::1\n")
    assert problems_of(path) == []


def test_apex_ns_inside_the_zone_needs_an_address(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone",
                 "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\n@ IN NS ns2\n"
                 "ns1 IN A 192.0.2.1\n")
    assert problems_of(path) == [
        f"{path}:5: NS ns2.example.test. for example.test. has no address record (A or AAAA) in the zone",
    ]


def test_soa_not_at_apex(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone", HEAD + "sub IN SOA ns1 h 1 2 3 4 5\n")
    assert problems_of(path) == [f"{path}:6: SOA record at sub.example.test., which is not the zone apex"]


def test_two_soas_at_apex(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone", HEAD + "@ IN SOA ns1 h 2 2 3 4 5\n")
    assert problems_of(path) == [f"{path}:6: more than one SOA record at the apex"]


@pytest.mark.parametrize("line,message", [
    ("www IN A 999.1.1.1", "bad A rdata: '999.1.1.1' is not an IPv4 address"),
    ("www IN AAAA 2001:db8::1::2", "bad AAAA rdata: '2001:db8::1::2' is not an IPv6 address"),
    ("www IN A 192.0.2.1 192.0.2.2", "bad A rdata: expected one IPv4 address, found 2 fields"),
    ("mx IN MX foo", "bad MX rdata: expecting an integer"),
    ("x IN BOGUS 1", "unknown record type 'BOGUS'"),
    ("y IN A", "bad A rdata: no IPv4 address"),
    ('z IN TXT "unterminated', "newline in quoted string"),
])
def test_unparsable_record_is_reported_at_its_own_line(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, "example.test.zone", HEAD + line + "\nok IN A 192.0.2.2\n")
    assert problems_of(path) == [f"{path}:6: {message}"]


def test_unparsable_multiline_record_is_reported_at_its_first_line(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone", HEAD
                 + "sub IN SOA ns1 h (\n  1 2 3\n  4 notattl )\nok IN A 192.0.2.2\nok IN CNAME x\n")
    assert problems_of(path) == [
        f"{path}:6: bad SOA rdata: DNS TTL value is not well-formed.",
        f"{path}:10: CNAME at ok.example.test. beside other data (A)",
    ]


def test_every_problem_in_a_file_is_reported_in_line_order(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone", "\n".join([
        "$ORIGIN example.test.",                   # 1
        "$TTL 300",                                # 2
        "@ IN NS ns1",                             # 3  no SOA anywhere
        "ns1 IN A 192.0.2.1",                      # 4
        "www IN CNAME a",                          # 5
        "www IN CNAME b",                          # 6
        "bad IN A 300.0.0.1",                      # 7
        "stray.example.org. IN A 192.0.2.1",       # 8
        "child IN NS ns.child",                    # 9
        "www IN TXT \"beside\"",                   # 10
        "mx IN MX ten mail",                       # 11
        "",
    ]))
    assert problems_of(path) == [
        f"{path}:3: zone example.test. has no SOA record at its apex",
        f"{path}:5: CNAME at www.example.test. beside other data (TXT)",
        f"{path}:6: more than one CNAME record at www.example.test.",
        f"{path}:7: bad A rdata: '300.0.0.1' is not an IPv4 address",
        f"{path}:9: NS ns.child.example.test. for child.example.test. has no glue (A or AAAA) in the zone",
        f"{path}:11: bad MX rdata: expecting an integer",
    ]


def test_origin_from_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "named.test.zone",
                 "$TTL 300\n@ IN SOA ns1 h 1 2 3 4 5\n  IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.2\n")
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None
    assert zone.origin == dns.name.from_text("named.test.")
    assert zone.get(dns.name.from_text("www.named.test."), dns.rdatatype.A) is not None


def test_origin_from_dollar_origin_wins_over_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "named.test.zone",
                 "; comment first\n$TTL 300\n$ORIGIN other.test.\n"
                 "@ IN SOA ns1 h 1 2 3 4 5\n  IN NS ns1\nns1 IN A 192.0.2.1\n")
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None
    assert zone.origin == dns.name.from_text("other.test.")


def test_file_name_origin_with_data_for_another_name(tmp_path: Path) -> None:
    path = write(tmp_path, "named.test.zone", "$TTL 300\nexample.test. IN SOA ns1 h 1 2 3 4 5\n")
    assert problems_of(path) == [
        f"{path}:1: zone named.test. has no SOA record at its apex",  # no records: line 1
        f"{path}:1: zone named.test. has no NS records at its apex: no resolver can find its name servers",
    ]
    warnings: list = []
    load_zone_file(path, warnings)
    assert [str(w) for w in warnings] == [
        f"{path}:2: ignoring out-of-zone data example.test. (outside the zone named.test.)",
        f"{path}:1: zone named.test. has no NS records at its apex: no resolver can find its "
        "name servers"]


def test_what_knot_loads_with_a_warning_loads_and_strict_refuses_it(tmp_path: Path) -> None:
    """No NS at the apex, a name server without an address, and an AXFR dump's repeated
    SOA: Knot DNS and NSD load such zones (warning about the first two), so does gslb."""
    soa = "@ IN SOA ns1 h 1 2 3 4 5\n"
    path = write(tmp_path, "loose.test.zone",
                 "$ORIGIN loose.test.\n$TTL 300\n" + soa + "sub IN NS ns.sub\nwww IN A 192.0.2.1\n"
                 + soa)
    warnings: list = []
    zone, problems = load_zone_file(path, warnings)
    assert problems == [] and zone is not None
    assert [w.message for w in warnings] == [
        "zone loose.test. has no NS records at its apex: no resolver can find its name servers",
        "NS ns.sub.loose.test. for sub.loose.test. has no glue (A or AAAA) in the zone"]
    assert len(problems_of(path)) == 2  # gslb check --strict


def test_include_is_relative_to_the_zone_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zones = tmp_path / "zones"
    write(zones, "parts/hosts.inc", "www IN A 192.0.2.80\nmail IN A 192.0.2.25\n")
    path = write(zones, "example.test.zone", HEAD + "$INCLUDE parts/hosts.inc\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    zone, problems = load_zone_file(path)
    assert [str(p) for p in problems] == []
    assert zone is not None
    assert zone.get(dns.name.from_text("mail.example.test."), dns.rdatatype.A) is not None
    assert Path.cwd() == elsewhere  # the working directory is restored


def test_include_with_an_origin(tmp_path: Path) -> None:
    write(tmp_path, "lab.inc", "host IN A 192.0.2.7\n")
    path = write(tmp_path, "example.test.zone", HEAD + "$INCLUDE lab.inc lab.example.test.\n")
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None
    assert zone.get(dns.name.from_text("host.lab.example.test."), dns.rdatatype.A) is not None


def test_problems_in_an_included_file_name_that_file_and_its_line(tmp_path: Path) -> None:
    inc = write(tmp_path, "hosts.inc", "ok IN A 192.0.2.1\nwww IN CNAME ok\nwww IN A 192.0.2.2\nbad IN A 1\n")
    path = write(tmp_path, "example.test.zone", HEAD + "$INCLUDE hosts.inc\nx IN CNAME ok\nx IN TXT \"y\"\n")
    assert problems_of(path) == [
        f"{path}:7: CNAME at x.example.test. beside other data (TXT)",
        f"{inc}:2: CNAME at www.example.test. beside other data (A)",
        f"{inc}:4: bad A rdata: '1' is not an IPv4 address",
    ]


def test_missing_include_file(tmp_path: Path) -> None:
    path = write(tmp_path, "example.test.zone", HEAD + "$INCLUDE nothere.inc\n")
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:6: $INCLUDE failed: ")
    assert "nothere.inc" in problems[0]


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.test.zone"
    path.write_bytes(b"\xff\xfe\x00garbage")
    problems = problems_of(path)
    assert len(problems) == 1 and problems[0].startswith(f"{path}:1: cannot read zone file: ")


def test_the_zone_file_is_opened_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser reads on after the head the loader read for the origin."""
    path = write(tmp_path, "example.test.zone", HEAD + "www IN A 192.0.2.80\n")
    opened = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        opened.append(args[0])
        return open(*args, **kwargs)

    monkeypatch.setattr(zonefile, "open", counting, raising=False)
    monkeypatch.setattr(zoneparse, "open", counting, raising=False)
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None and opened == [path]
    assert zone.get(dns.name.from_text("www.example.test."), dns.rdatatype.A) is not None


def test_a_file_that_stops_decoding_past_its_head_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "example.test.zone"
    hosts = "".join(f"h{i} A 192.0.2.1\n" for i in range(5000))
    path.write_bytes((HEAD + hosts).encode() + b"\xff\n")
    zone, problems = load_zone_file(path)
    assert zone is None
    assert str(problems[0]).startswith(f"{path}:1: cannot read zone file: ")


def test_duplicate_zones_in_two_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.zone", HEAD)
    second = write(tmp_path, "b.zone", HEAD + "www IN A 192.0.2.80\n")
    report = load_zones(tmp_path)
    assert [str(p) for p in report.problems] == [
        f"{second}:1: zone example.test. is already loaded from {first}",
    ]
    assert [z.source for z in report.zones] == [str(first)]
    assert not report.ok


def test_duplicate_by_file_name_and_origin(tmp_path: Path) -> None:
    first = write(tmp_path, "example.test.zone", HEAD)
    second = write(tmp_path, "other.zone", HEAD)
    report = load_zones(tmp_path)
    assert [str(p) for p in report.problems] == [
        f"{second}:1: zone example.test. is already loaded from {first}",
    ]


def test_load_zones_keeps_good_zones_and_reports_bad_ones(tmp_path: Path) -> None:
    good = write(tmp_path, "example.test.zone", HEAD)
    bad = write(tmp_path, "broken.test.zone", "$TTL 300\n@ IN NS ns.elsewhere.invalid.\n")
    write(tmp_path, "README.txt", "not a zone\n")
    report = load_zones(tmp_path)
    assert [str(p) for p in report.problems] == [f"{bad}:2: zone broken.test. has no SOA record at its apex"]
    assert [z.source for z in report.zones] == [str(good)]


def test_load_zones_empty_directory(tmp_path: Path) -> None:
    report = load_zones(tmp_path)
    assert [str(p) for p in report.problems] == [f"{tmp_path}:0: no *.zone files found"]


def test_load_zones_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    report = load_zones(missing)
    assert [str(p) for p in report.problems] == [f"{missing}:0: zones directory does not exist"]


def test_demo_zones_are_valid() -> None:
    report = load_zones(Path(__file__).resolve().parents[3] / "zones")
    assert [str(p) for p in report.problems] == []
    assert sorted(z.origin.to_text() for z in report.zones) == [
        "example.com.", "example.net.", "sub.example.com."]


def test_data_a_delegation_hides_is_warned_about(tmp_path: Path) -> None:
    """Knot's semantic check: at a cut only NS and DS are answered, below it only the
    named servers' addresses (glue); the rest is occluded."""
    path = write(tmp_path, "example.test.zone", HEAD + "sub IN NS ns.sub\nsub IN A 192.0.2.9\n"
                 "ns.sub IN A 192.0.2.53\nwww.sub IN A 192.0.2.80\nwww.sub IN TXT hidden\n")
    warnings: list = []
    zone, problems = load_zone_file(path, warnings)
    assert problems == [] and zone is not None
    assert sorted(w.message for w in warnings) == [
        "sub.example.test. A at the delegation sub.example.test. is occluded: never answered",
        "www.sub.example.test. A, TXT below the delegation sub.example.test. is occluded: "
        "never answered"]


def test_loc_altitude_keeps_its_centimetres(tmp_path: Path) -> None:
    """42849672.91 m is 4284967290.9999995 cm as a float: it was cut to .90 m."""
    path = write(tmp_path, "example.test.zone",
                 HEAD + "here IN LOC 60 9 0.000 N 24 39 0.000 E 42849672.91m 30m 100m 10m\n")
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None
    loc = zone.node(dns.name.from_text("here.example.test."))[dns.rdatatype.LOC]
    assert " E 42849672.91m " in loc[0].to_text()


def test_names_below_a_dname_are_refused(tmp_path: Path) -> None:
    """RFC 6672 2.3, as Knot DNS refuses them."""
    path = write(tmp_path, "example.test.zone", HEAD + "old IN DNAME new.example.test.\n"
                 "www.old IN A 192.0.2.80\nold IN TXT fine-at-the-owner\n")
    assert problems_of(path) == [
        f"{path}:7: www.old.example.test. is below the DNAME at old.example.test.: a DNAME's "
        "owner has no descendants (RFC 6672 section 2.3)"]


def test_a_first_origin_below_the_named_zone_is_only_a_base(tmp_path: Path) -> None:
    """BIND, Knot and NSD take the zone from their configuration (here: the file name):
    a file that starts with `$ORIGIN www.example.test.` is still example.test."""
    path = write(tmp_path, "example.test.zone", "$ORIGIN www.example.test.\n$TTL 300\n"
                 "@ IN A 192.0.2.80\n$ORIGIN example.test.\n@ IN SOA ns1 h 1 2 3 4 5\n"
                 "@ IN NS ns1\nns1 IN A 192.0.2.53\n")
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None and zone.origin.to_text() == "example.test."
    assert zone.node(dns.name.from_text("www.example.test."))


def test_an_owner_longer_than_255_octets_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """A relative owner under an origin near 255 octets: refused at its line (it used to
    load, and then `gslb serve` died building the native table)."""
    origin = ".".join(["a" * 60] * 4)  # 244 octets in wire form
    path = write(tmp_path, f"{origin}.zone", "$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n"
                 "ns A 192.0.2.1\nlongerlabel A 192.0.2.2\nlongerlabel TXT x\n")
    problems = problems_of(path)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "name 'longerlabel' is longer than 255 octets with the origin"] * 2, problems


def test_a_first_origin_above_the_named_zone_is_only_a_base(tmp_path: Path) -> None:
    """NSD's test zones start `$ORIGIN com.` then `example SOA ...`: Knot and NSD, told
    the zone is example.com., load it; so does gslb for a file named after it."""
    path = write(tmp_path, "example.test.zone", "$ORIGIN test.\nexample 300 IN SOA ns1.example "
                 "h 1 2 3 4 5\n$ORIGIN example.test.\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\n")
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None and zone.origin.to_text() == "example.test."
    assert zone.get(dns.name.from_text("ns1.example.test."), dns.rdatatype.A) is not None


def test_the_nsec3_chain_below_an_apex_dname_is_not_below_it(tmp_path: Path) -> None:
    """A DNAME at the apex of an NSEC3-signed zone (NSD's nsec3_dname test zone): the
    chain's hashed names sit one label below the apex, but they are no names of the zone's
    tree (Knot keeps them apart and loads the zone); a real name there is still refused."""
    chain = ("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom IN NSEC3 1 0 0 - 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom "
             "NS SOA DNAME RRSIG\n0p9mhaveqvm6t7vbl5lop2u3t2rp3tom IN RRSIG NSEC3 8 3 300 "
             "20300101000000 20200101000000 1 example.test. AAAA\n")
    head = "$TTL 300\n@ IN SOA ns.example.net. h 1 2 3 4 5\n@ IN NS ns.example.net.\n"
    path = write(tmp_path, "example.test.zone", head + "@ IN DNAME example.net.\n" + chain)
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None
    path = write(tmp_path, "example.test.zone", head + "@ IN DNAME example.net.\n" + chain
                 + "www IN A 192.0.2.80\n")
    assert problems_of(path) == [
        f"{path}:7: www.example.test. is below the DNAME at example.test.: a DNAME's owner has "
        "no descendants (RFC 6672 section 2.3)"]


def test_a_ttl_an_included_file_sets_goes_on_applying(tmp_path: Path) -> None:
    """RFC 1035 section 5.1: an `$INCLUDE` never changes the parent's origin; nothing says
    the TTL comes back, and in NSD a `$TTL` (or a TTL stated) in the included file applies
    after it (NSD's zonec test includes its SOA with `$TTL 1H` first; Knot restores the
    TTL, and falls back on its default of 3600). It was 'no TTL given and no $TTL before
    this record'."""
    write(tmp_path, "soa.inc", "$TTL 1H\n@ IN SOA ns1 h 1 2 3 4 5\n")
    write(tmp_path, "more.inc", "$ORIGIN sub.example.test.\nhost IN A 192.0.2.9\n")
    path = write(tmp_path, "example.test.zone", "$INCLUDE soa.inc\n@ IN NS ns1\n"
                 "$INCLUDE more.inc\nns1 IN A 192.0.2.53\n")
    zone, problems = load_zone_file(path)
    assert [str(p) for p in problems] == [] and zone is not None
    ns1 = zone.node(dns.name.from_text("ns1.example.test."))[dns.rdatatype.A]
    assert ns1.ttl == 3600  # the origin came back from more.inc, the TTL stayed
    assert zone.get(dns.name.from_text("host.sub.example.test."), dns.rdatatype.A) is not None


KEY = "AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ=="
KEY_WIRE = "010351537986ed35533b6064478eeeb27b5bd74dae149b6e81ba3a0521af82ab7801"


def test_ipseckey_with_every_gateway_type_and_without_a_key(tmp_path: Path) -> None:
    """RFC 4025's examples (section 3.3) and records without a public key (optional,
    section 2.6; NSD's test zones write `10 0 0 .`), which dnspython refused and Knot DNS
    loads: the rdata is the RFC's wire form, as Knot serves it."""
    path = write(tmp_path, "example.test.zone", HEAD + f"""\
38.2.0.192.in-addr.arpa 7200 IN IPSECKEY ( 10 1 2 192.0.2.38
                                           {KEY} )
none   IPSECKEY ( 10 0 2 . {KEY} )
name   IPSECKEY ( 10 3 2 mygateway.example.com. {KEY} )
rel    IPSECKEY 10 3 2 mygateway {KEY[:20]} {KEY[20:]}
v6     IPSECKEY ( 10 2 2 2001:0DB8:0:8002::2000:1 {KEY} )
nokey  IPSECKEY 10 0 0 .
nokey  IPSECKEY 20 1 0 192.0.2.38
nokey  IPSECKEY 30 3 1 gw
nokey  IPSECKEY 40 2 0 2001:db8::1
generic IPSECKEY \\# 3 0a0000
""")
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None

    def wire(owner: str) -> list[str]:
        rrset = zone.get(dns.name.from_text(f"{owner}.example.test."), dns.rdatatype.IPSECKEY)
        assert rrset is not None
        return sorted(rd.to_wire().hex() for rd in rrset)

    assert wire("38.2.0.192.in-addr.arpa") == ["0a0102c0000226" + KEY_WIRE]
    assert wire("none") == ["0a0002" + KEY_WIRE]
    assert wire("name") == ["0a0302096d7967617465776179076578616d706c6503636f6d00" + KEY_WIRE]
    assert wire("rel") == ["0a0302096d796761746577617907" "6578616d706c650474657374" "00"
                           + KEY_WIRE]
    assert wire("v6") == ["0a020220010db8000080020000000020000001" + KEY_WIRE]
    assert wire("nokey") == ["0a0000", "140100c0000226", "1e0301026777076578616d706c650474657374"
                             "00", "28020020010db8000000000000000000000001"]
    assert wire("generic") == ["0a0000"]


@pytest.mark.parametrize("rdata,message", [
    (f"10 4 2 . {KEY}", "invalid IPSECKEY gateway type: 4"),
    (f"10 0 2 gw.example. {KEY}", "invalid IPSECKEY gateway for type 0"),
    (f"10 2 2 192.0.2.1 {KEY}", "Text input is malformed."),
    ("10 0 2 . AQI", "Incorrect padding"),
    ("256 0 0 .", "256 is not an unsigned 8-bit integer"),
    ("10 1 2", "expecting a string"),
])
def test_ipseckey_that_knot_refuses_is_a_problem_at_its_line(tmp_path: Path, rdata: str,
                                                            message: str) -> None:
    path = write(tmp_path, "example.test.zone", HEAD + f"gw IN IPSECKEY {rdata}\n")
    assert problems_of(path) == [f"{path}:6: bad IPSECKEY rdata: {message}"]


def many_zones(directory: Path, count: int) -> Path:
    """`count` zone files, some broken, some with warnings, one origin twice (in files
    far apart, so in different halves of a parallel load), one signed."""
    signed = Path(__file__).resolve().parents[2] / "interop" / "signed" / "rfc5155" / "example.zone"
    for i in range(count):
        text = HEAD.replace("example.test.", f"z{i:04d}.test.") + f"h IN A 192.0.2.{i % 250}\n"
        if i % 97 == 5:
            text += "bad IN A 300.0.0.1\n"  # a problem: not loaded
        if i % 89 == 7:
            text += "@ IN NS ns9\n"  # a warning: no address for ns9
        write(directory, f"z{i:04d}.test.zone", text)
    write(directory, "zzzz.test.zone", HEAD.replace("example.test.", "z0003.test."))
    write(directory, signed.name, signed.read_text())  # NSEC3-signed: its denial index too
    return directory


def report_of(report: zonefile.LoadReport) -> tuple:
    return ([(z.origin, z.source, sorted(z.records.items()), z.ents, z.cuts, z.signed,
              z.denial and (z.denial.hashes, z.denial.hash_owner, z.denial.nsec_owners))
             for z in report.zones + report.partial],
            [str(p) for p in report.problems], [str(p) for p in report.warnings])


def test_a_parallel_load_gives_what_one_process_gives(tmp_path: Path) -> None:
    """Half of the files loaded by a forked process: the same zones (answering alike,
    with no memo shared between them), problems and warnings, in the same order."""
    folder = many_zones(tmp_path, zonefile.PARALLEL_FROM * 2)
    alone = load_zones(folder)
    parallel = load_zones(folder, parallel=True)
    assert report_of(parallel) == report_of(alone)
    assert len(alone.zones) > 300 and alone.problems and alone.warnings
    assert alone.zones[0].signed and alone.zones[0].denial is not None  # example., first
    assert any("already loaded" in str(p) for p in parallel.problems)
    last, before = parallel.zones[-1], parallel.zones[-2]  # from the child
    for zone in (last, before):
        assert zone.get(dns.name.from_text("h", zone.origin), dns.rdatatype.A) is not None
    assert last._young is not before._young  # each memoises its own nodes


def test_a_child_that_fails_leaves_its_half_to_the_parent(tmp_path: Path, monkeypatch:
                                                          pytest.MonkeyPatch) -> None:
    """A forked loader that raises, or is killed, hands back nothing: the parent loads
    its half as well, and the report is whole."""
    folder = many_zones(tmp_path, zonefile.PARALLEL_FROM)
    alone = load_zones(folder)
    parent = os.getpid()
    real = zonefile._load_each

    def failing_in_the_child(*args: Any) -> Any:
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        return real(*args)

    monkeypatch.setattr(zonefile, "_load_each", failing_in_the_child)
    assert report_of(load_zones(folder, parallel=True)) == report_of(alone)

    def killed_in_the_child(*args: Any) -> Any:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args)

    monkeypatch.setattr(zonefile, "_load_each", killed_in_the_child)
    assert report_of(load_zones(folder, parallel=True)) == report_of(alone)
    assert zonefile.forked(lambda: 1 / 0)() is None
    assert zonefile.forked(lambda: {"handed": [b"back"]})() == {"handed": [b"back"]}


def test_the_second_process_takes_half_the_bytes_in_small_files_only() -> None:
    small, large = 1_000, zonefile.SMALL_FILE + 1
    assert zonefile._handed([small] * 10) == {5, 6, 7, 8, 9}
    # a large zone stays here, whatever its place; the small ones go, up to half the bytes
    assert zonefile._handed([small] * 4 + [large] + [small] * 4) == {0, 1, 2, 3, 5, 6, 7, 8}
    assert zonefile._handed([large * 3, large, small, small]) == {2, 3}
    assert zonefile._handed([small, small, small * 3]) == {2}


def test_a_large_zone_file_loads_in_this_process(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Last by name, so in the second half by count: still loaded here, not pickled back;
    the report is the one a single process gives."""
    folder = many_zones(tmp_path / "zones", zonefile.PARALLEL_FROM * 2)
    big = write(folder, "zzzzz.test.zone", HEAD.replace("example.test.", "zzzzz.test.")
                + "".join(f"h{i} IN A 192.0.2.{i % 250}\n" for i in range(2_000)))
    monkeypatch.setattr(zonefile, "SMALL_FILE", big.stat().st_size - 1)
    alone = load_zones(folder)
    seen = tmp_path / "child-loaded"
    parent, real = os.getpid(), zonefile._load_each

    def noting(paths: list[str], *args: Any) -> Any:
        if os.getpid() != parent:
            seen.write_text("\n".join(paths))
        return real(paths, *args)

    monkeypatch.setattr(zonefile, "_load_each", noting)
    assert report_of(load_zones(folder, parallel=True)) == report_of(alone)
    handed = seen.read_text().splitlines()
    assert str(big) not in handed and len(handed) >= zonefile.PARALLEL_FROM // 2
