"""No zone text makes loading crash: every outcome is a zone or `file:line: message` lines.

Hypothesis writes zone files from pieces real files are made of (directives, owners, TTLs,
classes, every kind of type, rdata tokens) and from broken pieces (stray quotes and
parentheses, escapes, bad numbers, control characters, non-ASCII). `gslb check` and `gslb
serve` load zones through `load_zones`, so what holds here holds for both; the last test
runs the real `gslb check` on a few generated folders.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import dns.name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gslb.dns.resolver import Zones, resolve
from gslb.load.zonefile import load_zones

OWNERS = ["@", "www", "a.b", "*.wild", "*", "x.example.test.", "other.org.", ".", "ns1",
          "a\\.b", "\\046", "-", "very." * 20 + "long", "x" * 70, "é", "_srv._tcp", ""]
TTLS = ["", "300", "0", "1h", "1w2d", "4294967295", "2147483648", "-1", "1x", "99999999999"]
CLASSES = ["", "IN", "in", "CH", "ANY", "CLASS1"]
TYPES = ["A", "AAAA", "NS", "CNAME", "DNAME", "MX", "TXT", "SRV", "PTR", "SOA", "CAA", "DS",
         "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM", "DNSKEY", "HTTPS", "SVCB", "TLSA", "LOC",
         "NAPTR", "HINFO", "TYPE65280", "TYPE0", "BOGUS", "OPT", "ANY", "AXFR"]
TOKENS = ["192.0.2.1", "2001:db8::1", "300.1.1.1", "ns1", "www.example.test.", "10", "-5",
          "65536", '"text"', '"unterminated', "(", ")", "\\#", "0", "4", "0a000001", "\\",
          "@", ".", "1", "13", "2", "3", "abcd", "AAECAw==", "20261213000000", "issue",
          '"ca"', "alpn=h2", "port=x", "mandatory=alpn", ";comment", "\t", "\x00", "\x7f"]
DIRECTIVES = ["$TTL 300", "$TTL", "$TTL bad", "$ORIGIN example.test.", "$ORIGIN sub",
              "$ORIGIN .", "$ORIGIN", "$INCLUDE missing.inc", '$INCLUDE "a b.inc"',
              "$INCLUDE /dev/null", "$INCLUDE", "$GENERATE 1-3 h$ A 192.0.2.$",
              "$GENERATE 3-1 h$ A 192.0.2.$", "$GENERATE 1-2 h${0,3,x} A 192.0.2.$",
              "$GENERATE 1-100000000 h$ A 192.0.2.1", "$GENERATE 1-5/0 h$ A 192.0.2.1", "$GENERATE junk", "$BOGUS x"]
HEAD = ("$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n"
        "@ NS ns1\nns1 A 192.0.2.53\n")
PROBLEM = re.compile(r"^.+:\d+: \S.*$")

record = st.builds(
    lambda owner, ttl, cls, rdtype, rdata, indent: (
        ("\t" if indent else owner) + " " + " ".join(p for p in (ttl, cls, rdtype, *rdata) if p)),
    st.sampled_from(OWNERS), st.sampled_from(TTLS), st.sampled_from(CLASSES),
    st.sampled_from(TYPES), st.lists(st.sampled_from(TOKENS), max_size=7), st.booleans())
line = st.one_of(record, st.sampled_from(DIRECTIVES),
                 st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
zone_text = st.builds(lambda head, lines: (HEAD if head else "") + "\n".join(lines) + "\n",
                      st.booleans(), st.lists(line, max_size=25))


def load(directory: Path, text: str) -> tuple[list, list]:
    (directory / "example.test.zone").write_text(text, encoding="utf-8")
    report = load_zones(directory)
    return report.zones, [str(p) for p in report.problems + report.warnings]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone_text)
def test_generated_zone_text_loads_or_says_where(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        zones, problems = load(Path(folder), text)
    assert all(PROBLEM.match(problem) for problem in problems), problems
    for zone in zones:  # a zone that loads also answers, and transfers
        for owner in list(zone.records)[:5]:
            resolve(Zones([zone]), dns.name.from_wire(owner, 0)[0], 1, dnssec=True)
        assert sum(1 for _ in zone.rrsets()) >= 2


@settings(max_examples=5, deadline=None)
@given(zone_text)
def test_gslb_check_prints_no_traceback(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "example.test.zone").write_text(text, encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "gslb.cli", "check", "--zones", folder],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1) and "Traceback" not in done.stdout + done.stderr
    assert all(PROBLEM.match(line) or line.endswith(": ok")
               for line in done.stdout.splitlines()), done.stdout
