"""Meta query types, transfers asked the wrong way, and Extended DNS Errors, as `dig`
shows them from a real `gslb serve` (the same cases go to Knot DNS and NSD in
tests/interop/test_knot_diff.py)."""

from __future__ import annotations

import dns.edns
import dns.message
import dns.query
import dns.rcode
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import pytest

from tests.e2e.test_smoke import dig
from tests.servers import GslbProcess


@pytest.mark.parametrize("qtype", ["MAILA", "MAILB", "TYPE41", "TSIG", "TKEY", "TYPE200"])
def test_meta_types_are_answered_from_the_zone(demo_server: GslbProcess, qtype: str) -> None:
    reply = dig(demo_server, "web.example.com", qtype)
    assert reply.status == "NOERROR" and "aa" in reply.flags
    assert reply.records("ANSWER") == []
    assert [r.split()[3] for r in reply.records("AUTHORITY")] == ["SOA"]
    reply = dig(demo_server, "www.example.com", qtype)  # a CNAME: followed, as for any type
    assert reply.records("ANSWER") == ["www.example.com. 3600 IN CNAME web.example.com."]
    assert dig(demo_server, "nothere.example.com", qtype).status == "NXDOMAIN"


def test_refused_outside_our_zones_carries_ede_not_authoritative(demo_server: GslbProcess) -> None:
    reply = dig(demo_server, "www.example.org", "A")
    assert reply.status == "REFUSED" and "aa" not in reply.flags
    assert "; EDE: 20 (Not Authoritative)" in reply.text
    reply = dig(demo_server, "+noedns", "www.example.org", "A")
    assert reply.status == "REFUSED" and "EDE" not in reply.text and "OPT PSEUDOSECTION" not in reply.text


def test_transfer_over_udp_and_refused_transfers(demo_server: GslbProcess,
                                                start_server) -> None:
    out = dig(demo_server, "+notcp", "example.com", "IXFR=2026112401").text
    soa = [line for line in out.splitlines() if "\tSOA\t" in line]
    assert len(soa) == 1 and "2026112401" in soa[0] and "(UDP)" in out
    closed = start_server(demo_server.zones, ["--xfr-allow", "192.0.2.0/24", "--workers", "1"],
                          ["example.com."])
    assert "Transfer failed" in dig(closed, "example.com", "AXFR").text
    for qtype, tcp in (("AXFR", True), ("IXFR", True), ("IXFR", False)):
        query = dns.message.make_query("example.com", qtype, use_edns=0)
        query.authority.append(dns.rrset.from_text(
            "example.com.", 0, "IN", "SOA", "ns1.example.com. h.example.com. 1 1 1 1 1"))
        send = dns.query.tcp if tcp else dns.query.udp
        reply = send(query, closed.host, port=closed.port, timeout=3)
        assert reply.rcode() == dns.rcode.REFUSED and not reply.answer
        assert [(o.otype, o.code) for o in reply.options] == [(dns.edns.OptionType.EDE, 18)]


def test_a_class_we_do_not_serve_is_refused_as_not_supported(demo_server: GslbProcess) -> None:
    reply = dig(demo_server, "-c", "HS", "example.com", "SOA")
    assert reply.status == "REFUSED" and "; EDE: 21 (Not Supported)" in reply.text


def test_a_signed_query_or_transfer_is_told_the_key_is_unknown(demo_server: GslbProcess) -> None:
    """gslb holds no TSIG keys: NOTAUTH and BADKEY (RFC 8945 section 5.2.2), which
    dnspython's clients report as PeerBadKey, over UDP and for a transfer over TCP."""
    keyring = dns.tsigkeyring.from_text({"xfr-key.": "c2VjcmV0c2VjcmV0c2VjcmV0"})
    query = dns.message.make_query("www.example.com", "A")
    query.use_tsig(keyring, keyname="xfr-key.")
    with pytest.raises(dns.tsig.PeerBadKey):
        dns.query.udp(query, demo_server.host, port=demo_server.port, timeout=3)
    with pytest.raises(dns.tsig.PeerBadKey):
        list(dns.query.xfr(demo_server.host, "example.com", port=demo_server.port, timeout=3,
                           keyring=keyring, keyname="xfr-key."))
