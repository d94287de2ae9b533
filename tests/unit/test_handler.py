"""Bytes in, bytes out: `Responder.respond` on queries built with dnspython, no sockets."""

from __future__ import annotations

import struct
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import pytest

from gslb.snapshot import Snapshot

from gslb.dns.handler import Options, Responder
from gslb.dns.resolver import Zones
from tests.unit.test_resolver import load_served_zones

# 40 addresses: about 660 bytes, more than 512, well under 1232.
BIG = "\n".join(f"big IN A 192.0.2.{i}" for i in range(1, 41))
ZONE = f"""\
$ORIGIN example.test.
$TTL 3600
@     IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300
      IN NS  ns1.example.test.
ns1   IN A   192.0.2.53
www   IN A   192.0.2.80
*.wild IN A  192.0.2.100
mid   IN A   198.51.100.1
mid   IN A   198.51.100.2
mid   IN A   198.51.100.3
mid   IN A   198.51.100.4
mid   IN A   198.51.100.5
mid   IN A   198.51.100.6
mid   IN A   198.51.100.7
mid   IN A   198.51.100.8
tobig IN CNAME big.example.test.
{BIG}
"""
CLIENT = "192.0.2.200"


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """The served state (zones plus the answer cache), as the server hands it over."""
    return Snapshot(load_served_zones(tmp_path_factory.mktemp("handler"), {"example.test.zone": ZONE}))


def ask(zones: Snapshot, query: dns.message.Message | bytes, options: Options | None = None,
        tcp: bool = False, client: str = CLIENT) -> list[dns.message.Message]:
    wire = query if isinstance(query, bytes) else query.to_wire()
    return [dns.message.from_wire(m) for m in Responder(options).respond(zones, wire, tcp, client)]


def ask_one(zones: Snapshot, query: dns.message.Message | bytes, options: Options | None = None,
            tcp: bool = False, client: str = CLIENT) -> dns.message.Message:
    replies = ask(zones, query, options, tcp, client)
    assert len(replies) == 1
    return replies[0]


def test_answer_echoes_question_case_in_question_and_answer_owner(zones: Zones) -> None:
    query = dns.message.make_query("WwW.ExAmPlE.TeSt.", "A")
    reply = ask_one(zones, query)
    assert reply.id == query.id
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.QR and reply.flags & dns.flags.AA
    assert reply.flags & dns.flags.RD  # copied from the query
    assert not reply.flags & dns.flags.RA
    assert reply.question[0].name.to_text() == "WwW.ExAmPlE.TeSt."
    assert [r.name.to_text() for r in reply.answer] == ["WwW.ExAmPlE.TeSt."]
    assert [rd.to_text() for rd in reply.answer[0]] == ["192.0.2.80"]


def test_wildcard_answer_owner_is_the_question_as_spelled(zones: Zones) -> None:
    reply = ask_one(zones, dns.message.make_query("Foo.WILD.example.test.", "A"))
    assert reply.question[0].name.to_text() == "Foo.WILD.example.test."
    assert [r.name.to_text() for r in reply.answer] == ["Foo.WILD.example.test."]


@pytest.mark.parametrize("do", [False, True])
def test_edns_is_echoed_with_our_payload_and_the_do_bit(zones: Zones, do: bool) -> None:
    query = dns.message.make_query("www.example.test.", "A", use_edns=0, payload=4096, want_dnssec=do)
    reply = ask_one(zones, query)
    assert reply.edns == 0
    assert reply.payload == 1232
    assert bool(reply.ednsflags & dns.flags.DO) is do
    assert reply.rcode() == dns.rcode.NOERROR


def test_no_opt_in_reply_without_edns_in_query(zones: Zones) -> None:
    reply = ask_one(zones, dns.message.make_query("www.example.test.", "A", use_edns=False))
    assert reply.edns == -1


def test_unknown_edns_version_is_badvers(zones: Zones) -> None:
    query = dns.message.make_query("www.example.test.", "A", use_edns=1)
    reply = ask_one(zones, query)
    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0  # we answer with the version we do speak (RFC 6891 6.1.3)
    assert reply.answer == []


NSID_QUERY = [dns.edns.GenericOption(dns.edns.NSID, b"")]


def nsid_of(reply: dns.message.Message) -> list[bytes]:
    return [o.to_wire() for o in reply.options if o.otype == dns.edns.NSID]


def test_nsid_when_configured_and_asked(zones: Zones) -> None:
    query = dns.message.make_query("www.example.test.", "A", use_edns=0, options=NSID_QUERY)
    assert nsid_of(ask_one(zones, query, Options(nsid=b"gslb-1"))) == [b"gslb-1"]


def test_nsid_only_when_asked(zones: Zones) -> None:
    query = dns.message.make_query("www.example.test.", "A", use_edns=0)
    assert nsid_of(ask_one(zones, query, Options(nsid=b"gslb-1"))) == []


def test_nsid_not_sent_when_not_configured(zones: Zones) -> None:
    query = dns.message.make_query("www.example.test.", "A", use_edns=0, options=NSID_QUERY)
    reply = ask_one(zones, query, Options())
    assert nsid_of(reply) == [] and reply.rcode() == dns.rcode.NOERROR


def test_udp_without_edns_truncates_to_512_with_whole_rrsets(zones: Zones) -> None:
    query = dns.message.make_query("tobig.example.test.", "A", use_edns=False)
    wire = Responder().respond(zones, query.to_wire(), False, CLIENT)[0]
    assert len(wire) <= 512
    reply = dns.message.from_wire(wire)
    assert reply.flags & dns.flags.TC
    # the CNAME fits and is whole; the 40-record RRset does not fit and is left out entirely
    assert [(r.rdtype, len(r)) for r in reply.answer] in (
        [(dns.rdatatype.CNAME, 1)],
        [],
    )


@pytest.mark.parametrize("tcp,edns", [(False, 0), (True, False)], ids=["udp-edns", "tcp"])
def test_big_answer_fits_with_edns_or_tcp(zones: Zones, tcp: bool, edns: int | bool) -> None:
    query = dns.message.make_query("tobig.example.test.", "A", use_edns=edns, payload=1232)
    reply = ask_one(zones, query, tcp=tcp)
    assert not reply.flags & dns.flags.TC
    assert [(r.rdtype, len(r)) for r in reply.answer] == [(dns.rdatatype.CNAME, 1), (dns.rdatatype.A, 40)]


def test_edns_payload_below_512_counts_as_512(zones: Zones) -> None:
    """RFC 6891 section 6.2.5: a payload under 512 is treated as 512."""
    query = dns.message.make_query("mid.example.test.", "A", use_edns=0, payload=100)
    wire = Responder().respond(zones, query.to_wire(), False, CLIENT)[0]
    assert 100 < len(wire) <= 512
    reply = dns.message.from_wire(wire)
    assert not reply.flags & dns.flags.TC
    assert [len(r) for r in reply.answer] == [8]


def chaos(name: str, rdtype: str = "TXT") -> dns.message.Message:
    return dns.message.make_query(name, rdtype, rdclass=dns.rdataclass.CH)


@pytest.mark.parametrize("name,text", [
    ("id.server.", "ns-test"),
    ("hostname.bind.", "ns-test"),
    ("version.bind.", "gslb 9.9"),
    ("version.server.", "gslb 9.9"),
])
def test_chaos_identity_and_version_when_configured(zones: Zones, name: str, text: str) -> None:
    reply = ask_one(zones, chaos(name), Options(identity="ns-test", version="gslb 9.9"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert len(reply.answer) == 1
    rrset = reply.answer[0]
    assert (rrset.rdclass, rrset.rdtype) == (dns.rdataclass.CH, dns.rdatatype.TXT)
    assert [b"".join(rd.strings).decode() for rd in rrset] == [text]


@pytest.mark.parametrize("name", ["id.server.", "version.bind.", "hostname.bind.", "version.server."])
def test_chaos_refused_when_not_configured(zones: Zones, name: str) -> None:
    reply = ask_one(zones, chaos(name), Options())
    assert reply.rcode() == dns.rcode.REFUSED
    assert reply.answer == []


def test_chaos_unknown_name_refused(zones: Zones) -> None:
    reply = ask_one(zones, chaos("authors.bind."), Options(identity="x", version="y"))
    assert reply.rcode() == dns.rcode.REFUSED


def test_in_question_outside_our_zones_is_refused(zones: Zones) -> None:
    reply = ask_one(zones, dns.message.make_query("www.example.org.", "A"))
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA
    assert reply.answer == reply.authority == []


@pytest.mark.parametrize("name", ["example.test.", "www.example.test.", "example.org."])
def test_axfr_over_udp_is_not_implemented(zones: Zones, name: str) -> None:
    """As Knot DNS and NSD: NOTIMP for any name, whoever asks (RFC 5936 section 4.2)."""
    reply = ask_one(zones, dns.message.make_query(name, "AXFR"), tcp=False, client="127.0.0.1")
    assert reply.rcode() == dns.rcode.NOTIMP
    assert reply.answer == [] and not reply.flags & dns.flags.AA and eds(reply) == []


@pytest.mark.parametrize("qtype, tcp", [("AXFR", True), ("IXFR", True), ("IXFR", False)])
def test_transfer_from_a_client_not_allowed_is_refused_as_prohibited(
        zones: Zones, qtype: str, tcp: bool) -> None:
    reply = ask_one(zones, ixfr_query(1) if qtype == "IXFR" else
                    dns.message.make_query("example.test.", qtype, use_edns=0), tcp=tcp,
                    client=CLIENT)
    assert reply.rcode() == dns.rcode.REFUSED and reply.answer == []
    assert eds(reply) == [18]  # Prohibited (RFC 8914 section 4.19), as NSD sends it


def ixfr_query(serial: int | None, use_edns: int | bool = 0) -> dns.message.Message:
    query = dns.message.make_query("example.test.", "IXFR", use_edns=use_edns)
    if serial is not None:
        query.authority.append(dns.rrset.from_text(
            "example.test.", 0, "IN", "SOA", f"ns1.example.test. h.example.test. {serial} 1 1 1 1"))
    return query


@pytest.mark.parametrize("tcp", [False, True])
def test_ixfr_without_the_clients_soa_is_formerr(zones: Zones, tcp: bool) -> None:
    """RFC 1995 section 3: the query's authority section holds the client's SOA."""
    reply = ask_one(zones, ixfr_query(None), tcp=tcp, client="127.0.0.1")
    assert reply.rcode() == dns.rcode.FORMERR and reply.answer == []


@pytest.mark.parametrize("serial, tcp, full", [
    (1, True, False),            # the zone's own serial: up to date, the SOA alone
    (2, True, False),            # newer than ours: nothing to send either
    (2**32 - 5, True, True),     # before 1 in serial arithmetic (RFC 1982): the whole zone
    (0, True, True),
    (0, False, False),           # UDP: the SOA alone, come back over TCP (RFC 1995 section 4)
])
def test_ixfr_answers_by_the_clients_serial(zones: Zones, serial: int, tcp: bool,
                                            full: bool) -> None:
    replies = ask(zones, ixfr_query(serial), tcp=tcp, client="127.0.0.1")
    records = [rrset for reply in replies for rrset in reply.answer]
    assert all(r.rcode() == dns.rcode.NOERROR for r in replies)
    if full:
        assert records[0].rdtype == dns.rdatatype.SOA and len(records) > 5  # the zone
    else:
        assert len(replies) == 1 and [r.rdtype for r in records] == [dns.rdatatype.SOA]


def test_axfr_over_tcp_from_an_allowed_client_starts_and_ends_with_the_soa(zones: Zones) -> None:
    query = dns.message.make_query("example.test.", "AXFR")
    wires = Responder().respond(zones, query.to_wire(), True, "127.0.0.1")
    replies = [dns.message.from_wire(w, one_rr_per_rrset=True) for w in wires]
    records = [rrset for reply in replies for rrset in reply.answer]
    assert records[0].rdtype == records[-1].rdtype == dns.rdatatype.SOA
    assert sum(1 for r in records if r.rdtype == dns.rdatatype.SOA) == 2
    assert sum(1 for r in records if r.rdtype == dns.rdatatype.A) == 51


def test_response_is_never_answered(zones: Zones) -> None:
    query = dns.message.make_query("www.example.test.", "A")
    query.flags |= dns.flags.QR
    assert Responder().respond(zones, query.to_wire(), False, CLIENT) == []


@pytest.mark.parametrize("data", [b"", b"\x12\x34", b"\x00" * 11], ids=["empty", "2-bytes", "11-bytes"])
def test_shorter_than_a_header_is_silence(zones: Zones, data: bytes) -> None:
    assert Responder().respond(zones, data, False, CLIENT) == []


def header_only(qid: int, flags: int, qdcount: int) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qdcount, 0, 0, 0)


def raw_reply(zones: Zones, data: bytes) -> dns.message.Message:
    replies = Responder().respond(zones, data, False, CLIENT)
    assert len(replies) == 1
    return dns.message.from_wire(replies[0], question_only=True)


def test_no_question_is_formerr(zones: Zones) -> None:
    reply = raw_reply(zones, header_only(0xBEEF, 0x0100, 0))
    assert (reply.id, reply.rcode()) == (0xBEEF, dns.rcode.FORMERR)


def test_two_questions_is_formerr(zones: Zones) -> None:
    query = dns.message.make_query("www.example.test.", "A", use_edns=False)
    wire = bytearray(query.to_wire())
    question = bytes(wire[12:])
    wire[4:6] = b"\x00\x02"
    reply = raw_reply(zones, bytes(wire) + question)
    assert reply.rcode() == dns.rcode.FORMERR


def test_truncated_question_is_formerr(zones: Zones) -> None:
    wire = dns.message.make_query("www.example.test.", "A", use_edns=False).to_wire()
    reply = raw_reply(zones, wire[:-3])
    assert (reply.id, reply.rcode()) == (int.from_bytes(wire[:2], "big"), dns.rcode.FORMERR)


def test_trailing_garbage_is_formerr(zones: Zones) -> None:
    wire = dns.message.make_query("www.example.test.", "A", use_edns=False).to_wire()
    assert raw_reply(zones, wire + b"\x00\x00\x00").rcode() == dns.rcode.FORMERR


@pytest.mark.parametrize("opcode", [dns.opcode.IQUERY, dns.opcode.STATUS, dns.opcode.NOTIFY,
                                    dns.opcode.UPDATE])
def test_other_opcodes_are_notimp(zones: Zones, opcode: int) -> None:
    query = dns.message.make_query("example.test.", "SOA", use_edns=False)
    query.set_opcode(opcode)
    reply = raw_reply(zones, query.to_wire())
    assert reply.rcode() == dns.rcode.NOTIMP
    assert reply.opcode() == opcode


META = ["OPT", "TSIG", "TKEY", "MAILA", "MAILB", "TYPE128", "TYPE200"]


@pytest.mark.parametrize("qtype", META)
def test_meta_types_are_answered_like_a_type_the_zone_lacks(zones: Zones, qtype: str) -> None:
    """As Knot DNS and NSD do: NODATA at a name, the CNAME at an alias, NXDOMAIN below."""
    reply = ask_one(zones, dns.message.make_query("www.example.test.", qtype))
    assert (reply.rcode(), reply.answer) == (dns.rcode.NOERROR, [])
    assert reply.flags & dns.flags.AA and reply.authority[0].rdtype == dns.rdatatype.SOA
    reply = ask_one(zones, dns.message.make_query("tobig.example.test.", qtype))
    assert [r.rdtype for r in reply.answer] == [dns.rdatatype.CNAME]
    reply = ask_one(zones, dns.message.make_query("nothere.example.test.", qtype))
    assert reply.rcode() == dns.rcode.NXDOMAIN
    reply = ask_one(zones, dns.message.make_query("www.example.org.", qtype, use_edns=0))
    assert reply.rcode() == dns.rcode.REFUSED and eds(reply) == [20]


def eds(reply: dns.message.Message) -> list[int]:
    """The Extended DNS Error codes of a reply (RFC 8914)."""
    return [o.code for o in reply.options if o.otype == dns.edns.OptionType.EDE]


def test_refused_outside_our_zones_says_not_authoritative_to_edns_clients(zones: Zones) -> None:
    reply = ask_one(zones, dns.message.make_query("www.example.org.", "A", use_edns=0))
    assert reply.rcode() == dns.rcode.REFUSED and eds(reply) == [20]
    assert [o.text for o in reply.options if o.otype == dns.edns.OptionType.EDE] == [None]
    reply = ask_one(zones, dns.message.make_query("www.example.org.", "A", use_edns=False))
    assert reply.rcode() == dns.rcode.REFUSED and reply.edns == -1  # no OPT, no EDE
    ecs = dns.edns.ECSOption("198.51.100.0", 24)
    reply = ask_one(zones, dns.message.make_query("www.example.org.", "A", use_edns=0,
                                                  options=[ecs], want_dnssec=True))
    assert eds(reply) == [20] and reply.options[-1] == ecs  # ECS echoed, still last


def test_unknown_class_is_refused_as_not_supported(zones: Zones) -> None:
    query = dns.message.make_query("www.example.test.", "A", rdclass=dns.rdataclass.HS, use_edns=0)
    reply = ask_one(zones, query)
    assert reply.rcode() == dns.rcode.REFUSED and eds(reply) == [21]
    assert eds(ask_one(zones, chaos("id.server."), Options())) == []  # chaos() has no EDNS
    query = dns.message.make_query("id.server.", "TXT", rdclass=dns.rdataclass.CH, use_edns=0)
    assert eds(ask_one(zones, query, Options())) == [21]


def test_options_of_an_edns_version_we_lack_are_not_read(zones: Zones) -> None:
    """BADVERS even when an option would be malformed in version 0 (Knot DNS and NSD too)."""
    bad_ecs = dns.edns.GenericOption(dns.edns.OptionType.ECS, struct.pack("!HBB", 7, 0, 0))
    query = dns.message.make_query("www.example.test.", "A", use_edns=1, options=[bad_ecs])
    assert ask_one(zones, query).rcode() == dns.rcode.BADVERS


def test_demo_zones_answer_through_the_responder() -> None:
    """The shipped demo zones load and answer (the same files `make run` serves)."""
    from gslb.load.zonefile import load_zones

    report = load_zones(Path(__file__).resolve().parents[2] / "zones")
    assert report.problems == []
    reply = ask_one(Snapshot(Zones(report.zones)), dns.message.make_query("app.example.com.", "A"))
    assert [r.rdtype for r in reply.answer] == [dns.rdatatype.CNAME] * 2 + [dns.rdatatype.A]


KEYRING = dns.tsigkeyring.from_text({"some-key.": "c2VjcmV0c2VjcmV0c2VjcmV0"})


@pytest.mark.parametrize("name, qtype, tcp", [
    ("www.example.test.", "A", False), ("www.example.org.", "A", False),
    ("example.test.", "AXFR", True), ("example.test.", "AXFR", False),
])
def test_a_signed_query_gets_notauth_badkey(zones: Zones, name: str, qtype: str, tcp: bool) -> None:
    """No keys are held: RFC 8945 section 5.2.2, unsigned reply, the key echoed."""
    query = dns.message.make_query(name, qtype, use_edns=0)
    query.use_tsig(KEYRING, keyname="some-key.")
    wires = Responder().respond(zones, query.to_wire(), tcp, "127.0.0.1")
    assert len(wires) == 1
    with pytest.raises(dns.tsig.PeerBadKey):
        dns.message.from_wire(wires[0], keyring=KEYRING, request_mac=query.mac)
    reply = dns.message.from_wire(wires[0], keyring=False)
    assert reply.rcode() == dns.rcode.NOTAUTH and reply.answer == []
    assert reply.had_tsig and reply.keyname == dns.name.from_text("some-key.")
    assert reply.tsig_error == 17 and reply.mac == b""
    assert reply.tsig[0].original_id == query.id and reply.tsig[0].time_signed == query.tsig[0].time_signed


def test_a_tsig_record_that_is_not_last_is_formerr(zones: Zones) -> None:
    query = dns.message.make_query("www.example.test.", "A", use_edns=0)
    query.use_tsig(KEYRING, keyname="some-key.")
    wire = query.to_wire()
    # Move the OPT record (11 bytes, no options) after the TSIG: TSIG is no longer last.
    opt_at = wire.index(b"\x00\x00\x29")
    opt = wire[opt_at : opt_at + 11]
    moved = wire[:opt_at] + wire[opt_at + 11 :] + opt
    assert ask_one(zones, moved).rcode() == dns.rcode.FORMERR
