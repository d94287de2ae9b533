"""The dig-based smoke suite: real `gslb serve` on the demo zones, real `dig`, parsed answers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest

if shutil.which("dig") is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("dig (bind9-dnsutils) is required in CI")
    pytest.skip("dig (bind9-dnsutils) not installed", allow_module_level=True)

SECTION = re.compile(r";; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:")


@dataclass
class Dig:
    """dig's reply, parsed: status, header flags and each section's records as text."""

    status: str
    flags: set[str]
    sections: dict[str, list[str]] = field(default_factory=dict)
    text: str = ""

    def records(self, section: str) -> list[str]:
        """`name ttl class type rdata` with whitespace folded, names lowercased."""
        return self.sections.get(section, [])


def dig(server, *args: str) -> Dig:
    out = subprocess.run(
        ["dig", f"@{server.host}", "-p", str(server.port), "+norec", "+tries=1", "+time=2",
         "+nocookie", *args],
        capture_output=True, text=True, timeout=15, check=True,
    ).stdout
    status = re.search(r"status: (\w+)", out)
    flags = re.search(r";; flags: ([a-z ]*);", out)
    reply = Dig(status.group(1) if status else "", set(flags.group(1).split()) if flags else set(),
                text=out)
    current = None
    for line in out.splitlines():
        match = SECTION.match(line)
        if match:
            current = match.group(1)
            reply.sections[current] = []
        elif not line.strip():
            current = None
        elif current and not line.startswith(";"):
            name, rest = line.split(None, 1)
            reply.sections[current].append(" ".join([name.lower(), *rest.split()]))
    return reply


def test_soa_answer_is_authoritative(demo_server):
    reply = dig(demo_server, "example.com", "SOA")
    assert reply.status == "NOERROR"
    assert "aa" in reply.flags
    assert reply.records("ANSWER") == [
        "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. "
        "2026112401 7200 3600 1209600 300"
    ]


def test_cname_chain_is_followed(demo_server):
    reply = dig(demo_server, "app.example.com", "A")
    assert reply.status == "NOERROR" and "aa" in reply.flags
    answer = reply.records("ANSWER")
    assert answer[:2] == [  # the chain in order, then the addresses in any order
        "app.example.com. 3600 IN CNAME www.example.com.",
        "www.example.com. 3600 IN CNAME web.example.com.",
    ]
    assert sorted(answer[2:]) == [
        "web.example.com. 3600 IN A 192.0.2.80",
        "web.example.com. 3600 IN A 192.0.2.81",
    ]


def test_wildcard_synthesises_the_query_name(demo_server):
    reply = dig(demo_server, "Anything.Apps.Example.com", "A")
    assert reply.status == "NOERROR"
    assert reply.records("ANSWER") == ["anything.apps.example.com. 3600 IN A 192.0.2.100"]
    assert ";Anything.Apps.Example.com.\t" in reply.text  # the case is echoed as sent


def test_nxdomain_carries_soa_at_negative_ttl(demo_server):
    reply = dig(demo_server, "missing.example.com", "A")
    assert reply.status == "NXDOMAIN" and "aa" in reply.flags
    assert reply.records("ANSWER") == []
    assert reply.records("AUTHORITY") == [
        "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. "
        "2026112401 7200 3600 1209600 300"
    ]


def test_nodata_at_empty_non_terminal(demo_server):
    reply = dig(demo_server, "deep.example.com", "A")
    assert reply.status == "NOERROR" and reply.records("ANSWER") == []
    assert reply.records("AUTHORITY")[0].startswith("example.com. 300 IN SOA")


def test_referral_has_glue_and_no_aa(demo_server):
    reply = dig(demo_server, "www.ext.example.com", "A")
    assert reply.status == "NOERROR" and "aa" not in reply.flags
    assert sorted(reply.records("AUTHORITY")) == [
        "ext.example.com. 3600 IN NS ns1.ext.example.com.",
        "ext.example.com. 3600 IN NS ns2.ext.example.com.",
    ]
    assert sorted(reply.records("ADDITIONAL")) == [
        "ns1.ext.example.com. 3600 IN A 203.0.113.1",
        "ns2.ext.example.com. 3600 IN A 203.0.113.2",
    ]


def test_child_zone_answers_for_its_names(demo_server):
    reply = dig(demo_server, "api.sub.example.com", "AAAA")
    assert reply.status == "NOERROR" and "aa" in reply.flags
    assert reply.records("ANSWER") == ["api.sub.example.com. 600 IN AAAA 2001:db8::90"]


def test_mx_target_address_in_additional(demo_server):
    reply = dig(demo_server, "example.com", "MX")
    assert reply.records("ANSWER") == ["example.com. 3600 IN MX 10 mail.example.com."]
    assert reply.records("ADDITIONAL") == ["mail.example.com. 3600 IN A 192.0.2.25"]


def test_outside_every_zone_is_refused(demo_server):
    reply = dig(demo_server, "example.org", "A")
    assert reply.status == "REFUSED" and "aa" not in reply.flags


def test_tcp_answers_like_udp(demo_server):
    udp = dig(demo_server, "web.example.com", "A")
    tcp = dig(demo_server, "+tcp", "web.example.com", "A")
    assert sorted(tcp.records("ANSWER")) == sorted(udp.records("ANSWER"))
    assert len(tcp.records("ANSWER")) == 2


def test_nsid_and_chaos_identity(demo_server):
    reply = dig(demo_server, "+nsid", "example.com", "SOA")
    assert 'NSID: 67 73 6c 62 2d 74 65 73 74 ("gslb-test")' in reply.text
    chaos = dig(demo_server, "id.server", "TXT", "CH")
    assert chaos.records("ANSWER") == ['id.server. 0 CH TXT "ns-test"']


def test_axfr_from_loopback(demo_server):
    out = subprocess.run(
        ["dig", f"@{demo_server.host}", "-p", str(demo_server.port), "example.net", "AXFR",
         "+nocookie"], capture_output=True, text=True, timeout=15, check=True,
    ).stdout
    records = [line.split() for line in out.splitlines() if line and not line.startswith(";")]
    assert [r[3] for r in records].count("SOA") == 2  # SOA first and last
    assert records[0][3] == "SOA" and records[-1][3] == "SOA"
    assert ["docs.example.net.", "1800", "IN", "A", "192.0.2.110"] in records


def test_any_gets_one_rrset(demo_server):
    reply = dig(demo_server, "example.com", "ANY")
    assert reply.status == "NOERROR"
    types = {record.split()[3] for record in reply.records("ANSWER")}
    assert len(types) == 1
