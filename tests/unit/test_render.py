"""`render` / `render_tracked` and the message writer under them, checked on the bytes.

Every message is walked by hand (`walk`): each compression pointer must go backwards to
a label written literally before it, at an offset up to 0x3FFF, and `render_tracked`
must report exactly the pointers the message holds (apart from the answer owners it
writes as a pointer to the question when the anchor differs from the query name).
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from gslb.dns.edns import BADVERS
from gslb.dns.message import MAX_POINTER, MessageWriter, TooBig, name_wire
from gslb.dns.render import render, render_tracked
from gslb.dns.resolver import Kind, Result, Zones, resolve
from gslb.dns.wire import parse_query
from tests.zonesets import INTEROP_ZONES, load_zone_dir

COMPRESSIBLE = {dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR, dns.rdatatype.MX,
                dns.rdatatype.SOA}


def rrset(name: str, rdtype: str, *rdatas: str, ttl: int = 300) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(name, ttl, "IN", rdtype, list(rdatas))


def query_for(name: str, rdtype: str = "A", **kwargs) -> tuple[bytes, object]:
    wire = dns.message.make_query(name, rdtype, **kwargs).to_wire()
    query = parse_query(wire)
    assert query is not None and query.error is None
    return wire, query


@dataclass
class Walked:
    pointers: list[tuple[int, int]] = field(default_factory=list)  # (position, target)
    labels: set[int] = field(default_factory=set)  # where literal labels start
    rdata: dict[int, bytes] = field(default_factory=dict)  # record start -> raw rdata
    counts: tuple[int, int, int, int] = (0, 0, 0, 0)


def walk(wire: bytes) -> Walked:
    """Every name in the message, checked: pointers backwards, to a literal label."""
    walked = Walked(counts=struct.unpack_from("!HHHH", wire, 4))

    def name(offset: int) -> int:
        start = offset
        while True:
            length = wire[offset]
            if length & 0xC0 == 0xC0:
                target = struct.unpack_from("!H", wire, offset)[0] & 0x3FFF
                assert target < start, f"pointer at {offset} goes forward to {target}"
                assert 12 <= target <= MAX_POINTER
                assert target in walked.labels, f"pointer at {offset} into the middle of a label"
                walked.pointers.append((offset, target))
                return offset + 2
            walked.labels.add(offset)
            if length == 0:
                return offset + 1
            offset += length + 1

    offset = 12
    qd, an, ns, ar = walked.counts
    for _ in range(qd):
        offset = name(offset) + 4
    for _ in range(an + ns + ar):
        record = offset
        offset = name(offset)
        rdtype, _, _, rdlength = struct.unpack_from("!HHIH", wire, offset)
        offset += 10
        end = offset + rdlength
        walked.rdata[record] = wire[offset:end]
        if rdtype in (dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR):
            assert name(offset) == end
        elif rdtype == dns.rdatatype.MX:
            assert name(offset + 2) == end
        elif rdtype == dns.rdatatype.SOA:
            assert name(name(offset)) + 20 == end
        offset = end
    assert offset == len(wire)
    return walked


@pytest.fixture(scope="module")
def zones() -> Zones:
    return load_zone_dir(INTEROP_ZONES)


def corpus(zones: Zones) -> list[str]:
    rng = random.Random(5)
    names = {"nowhere.invalid.", "."}
    for zone in zones:
        for owner in zone.records:
            text = dns.name.from_wire(owner, 0)[0].to_text()
            names.update({text, f"nx{rng.randrange(999)}.{text}", f"Deep.Er.{text}".upper()})
    return sorted(names)


def test_corpus_pointers_are_valid_backwards_and_reported(zones: Zones) -> None:
    rng = random.Random(11)
    checked = 0
    for name in corpus(zones):
        for rdtype in rng.sample(["A", "AAAA", "MX", "NS", "SOA", "TXT", "CNAME", "DS", "ANY", "SRV"], 4):
            limit = rng.choice([512, 1232, 65535])
            wire, query = query_for(name, rdtype, use_edns=0, payload=limit)
            result = resolve(zones, query.qname, query.qtype)
            message, pointers = render_tracked(query, result, limit, 1232, b"nsid")
            assert len(message) <= limit
            walked = walk(message)
            parsed = dns.message.from_wire(message)  # dnspython agrees it is well formed
            assert parsed.question[0].name.to_text() == query.qname.to_text()
            assert parsed.opt is not None
            if pointers is None:
                assert parsed.flags & dns.flags.TC or len(parsed.additional) < len(result.additional)
                continue
            for position, target in pointers:
                assert struct.unpack_from("!H", message, position)[0] == 0xC000 | target
            unreported = set(walked.pointers) - set(pointers)
            assert set(pointers) <= set(walked.pointers)
            if result.anchor is not None and result.anchor != query.qname:
                assert {target for _, target in unreported} <= {12}
                anchor_offset = len(wire[:query.question_end]) - 4 - len(result.anchor.to_wire())
                assert all(target >= anchor_offset for _, target in pointers)
            else:
                assert not unreported
            checked += 1
    assert checked > 800, checked


def test_rrsets_owned_by_the_query_name_below_the_anchor_point_at_the_question() -> None:
    _, query = query_for("a.b.Wild.example.test.")
    answer = rrset("a.b.wild.example.test.", "A", "192.0.2.1", "192.0.2.2")
    result = Result(Kind.ANSWER, answer=[answer], anchor=dns.name.from_text("wild.example.test."))
    message, pointers = render_tracked(query, result, 512, 1232)
    walked = walk(message)
    owners = [position for position in walked.rdata]
    assert [message[p : p + 2] for p in owners] == [b"\xc0\x0c", b"\xc0\x0c"]
    assert pointers == []


def test_only_the_anchor_suffixes_of_the_query_name_can_be_pointed_at() -> None:
    _, query = query_for("x.y.example.test.", "MX")
    anchor = dns.name.from_text("example.test.")
    soa = rrset("example.test.", "SOA", "ns.example.test. host.example.test. 1 2 3 4 5")
    # names equal to the query name and to the labels between it and the anchor
    mx = rrset("example.test.", "MX", "10 x.y.example.test.", "20 y.example.test.")
    result = Result(Kind.NXDOMAIN, rcode=dns.rcode.NXDOMAIN, authority=[soa, mx], anchor=anchor)
    message, pointers = render_tracked(query, result, 512, 1232)
    anchor_offset = 12 + 4  # "x" and "y" labels come first
    assert pointers and all(target >= anchor_offset for _, target in pointers)
    assert set(pointers) == set(walk(message).pointers)
    parsed = dns.message.from_wire(message)
    assert [rd.exchange.to_text() for rd in parsed.authority[1]] == ["x.y.example.test.", "y.example.test."]


def test_compression_is_case_insensitive_and_keeps_the_case_written_first() -> None:
    _, query = query_for("WWW.Example.TEST.", "CNAME")
    answer = rrset("www.example.test.", "CNAME", "web.EXAMPLE.test.")
    result = Result(Kind.ANSWER, answer=[answer], anchor=dns.name.from_text("www.example.test."))
    message, pointers = render_tracked(query, result, 512, 1232)
    parsed = dns.message.from_wire(message)
    assert parsed.answer[0].name.to_text() == "WWW.Example.TEST."
    assert parsed.answer[0][0].target.to_text() == "web.Example.TEST."  # its suffix points back
    # question at 12 ("WWW" 12, "Example" 16), answer owner at 34, rdata at 46 ("web" + pointer)
    assert pointers == [(34, 12), (50, 16)]


def test_names_inside_other_types_are_never_compressed_nor_pointed_at() -> None:
    _, query = query_for("example.test.", "ANY")
    records = [
        rrset("example.test.", "SRV", "0 0 53 example.test."),
        rrset("example.test.", "DNAME", "example.test."),
        dns.rrset.from_rdata("example.test.", 300, dns.rdata.GenericRdata(
            dns.rdataclass.IN, 65280, name_wire(dns.name.from_text("example.test.")))),
        rrset("example.test.", "NS", "ns.srv.example.test."),
    ]
    result = Result(Kind.ANSWER, answer=records, anchor=dns.name.from_text("example.test."))
    message, pointers = render_tracked(query, result, 512, 1232)
    walked = walk(message)
    rdatas = list(walked.rdata.values())
    assert rdatas[0] == records[0][0].to_wire()
    assert rdatas[1] == records[1][0].to_wire()
    assert rdatas[2] == name_wire(dns.name.from_text("example.test."))
    # the NS target may point at the question, never into the SRV/DNAME/unknown rdata
    targets = {target for _, target in walked.pointers}
    assert targets <= {12}
    assert dns.message.from_wire(message).answer[3][0].target.to_text() == "ns.srv.example.test."


def test_opt_always_fits_and_the_answer_is_truncated_whole() -> None:
    _, query = query_for("big.example.test.", use_edns=0, payload=512,
                         options=[dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")])
    big = rrset("big.example.test.", "TXT", *[f'"{i}{"x" * 200}"' for i in range(3)])
    result = Result(Kind.ANSWER, answer=[big], anchor=dns.name.from_text("big.example.test."))
    message, pointers = render_tracked(query, result, 512, 1232, nsid=b"n" * 40)
    parsed = dns.message.from_wire(message)
    assert pointers is None
    assert parsed.flags & dns.flags.TC and not parsed.answer
    assert parsed.opt is not None and parsed.opt[0].options[0].to_wire() == b"n" * 40
    assert len(message) <= 512


def test_truncation_boundary_is_exact() -> None:
    _, query = query_for("mid.example.test.", use_edns=0, payload=4096)
    answer = rrset("mid.example.test.", "A", *[f"198.51.100.{i}" for i in range(1, 9)])
    extra = rrset("ns.example.test.", "A", "192.0.2.53")
    result = Result(Kind.ANSWER, answer=[answer], additional=[extra],
                    anchor=dns.name.from_text("mid.example.test."))
    full, _ = render_tracked(query, result, 4096, 1232)
    without_extra = len(render(query, Result(Kind.ANSWER, answer=[answer], anchor=result.anchor),
                               4096, 1232))
    assert without_extra < len(full)
    message, pointers = render_tracked(query, result, len(full), 1232)
    assert message == full and pointers is not None
    # one byte short: the additional RRset is dropped silently, no TC
    message, pointers = render_tracked(query, result, len(full) - 1, 1232)
    parsed = dns.message.from_wire(message)
    assert len(message) == without_extra and pointers is None
    assert not parsed.flags & dns.flags.TC and len(parsed.answer[0]) == 8 and not parsed.additional
    assert parsed.opt is not None
    # the answer exactly fits, then does not: whole RRset out, TC set
    message, _ = render_tracked(query, result, without_extra, 1232)
    assert len(dns.message.from_wire(message).answer) == 1
    message, pointers = render_tracked(query, result, without_extra - 1, 1232)
    parsed = dns.message.from_wire(message)
    assert parsed.flags & dns.flags.TC and not parsed.answer and pointers is None
    assert parsed.opt is not None


def test_referral_without_room_for_in_domain_glue_is_truncated() -> None:
    _, query = query_for("www.child.example.test.")
    ns = rrset("child.example.test.", "NS", *[f"ns{i}.child.example.test." for i in range(8)])
    glue = [rrset(f"ns{i}.child.example.test.", "AAAA", *[f"2001:db8::{i}:{j}" for j in range(4)])
            for i in range(8)]
    result = Result(Kind.REFERRAL, aa=False, authority=[ns], additional=glue,
                    anchor=dns.name.from_text("child.example.test."))
    message, pointers = render_tracked(query, result, 512, 1232)
    parsed = dns.message.from_wire(message)
    assert pointers is None and parsed.flags & dns.flags.TC and not parsed.flags & dns.flags.AA
    assert parsed.authority and 0 < len(parsed.additional) < len(glue)
    # out-of-domain "glue" that does not fit is additional data: no TC
    result.additional = [rrset(f"ns{i}.other.test.", "AAAA", *[f"2001:db8::{i}:{j}" for j in range(4)])
                         for i in range(8)]
    parsed = dns.message.from_wire(render(query, result, 512, 1232))
    assert not parsed.flags & dns.flags.TC


def test_flags_rcode_and_extended_rcode() -> None:
    query = dns.message.make_query("example.test.", "A", use_edns=0)
    query.flags = dns.flags.RD | dns.flags.CD
    parsed_query = parse_query(query.to_wire())
    result = Result(Kind.REFUSED, rcode=BADVERS, aa=False)
    parsed = dns.message.from_wire(render(parsed_query, result, 512, 1232))
    assert parsed.rcode() == BADVERS
    assert parsed.flags & (dns.flags.RD | dns.flags.CD) == dns.flags.RD | dns.flags.CD
    assert parsed.flags & dns.flags.QR and not parsed.flags & dns.flags.AA
    assert parsed.id == query.id and parsed.question[0].name == query.question[0].name


def test_pointers_only_to_offsets_up_to_0x3fff() -> None:
    _, query = query_for("example.test.", "ANY")
    # about 20 KB of answer before names that would otherwise be registered past 0x3FFF
    big = rrset("example.test.", "TXT", *[f'"{i:03d}{"x" * 250}"' for i in range(80)])
    ns = rrset("ns.example.test.", "NS", *[f"n{i}.far.example.test." for i in range(20)])
    mx = rrset("mx.far.example.test.", "MX", *[f"{i} n{i}.far.example.test." for i in range(20)])
    result = Result(Kind.ANSWER, answer=[big, ns, mx], anchor=dns.name.from_text("example.test."))
    message, pointers = render_tracked(query, result, 65535, 1232)
    assert len(message) > 0x4000
    walked = walk(message)
    assert all(target <= MAX_POINTER for _, target in walked.pointers)
    assert sorted(pointers) == sorted(walked.pointers)
    parsed = dns.message.from_wire(message)
    assert [rd.exchange.to_text() for rd in parsed.answer[2]][:2] == ["n0.far.example.test.",
                                                                       "n1.far.example.test."]


def test_rendering_is_deterministic_and_keeps_record_order() -> None:
    _, query = query_for("mid.example.test.")
    order = [f"198.51.100.{i}" for i in (7, 1, 5, 3, 8, 2, 6, 4)]
    result = Result(Kind.ANSWER, answer=[rrset("mid.example.test.", "A", *order)],
                    anchor=dns.name.from_text("mid.example.test."))
    first = render(query, result, 512, 1232)
    assert all(render(query, result, 512, 1232) == first for _ in range(20))
    assert [rd.to_text() for rd in dns.message.from_wire(first).answer[0]] == order


def test_writer_rolls_back_a_record_set_that_does_not_fit() -> None:
    writer = MessageWriter(1, 0x8000, 100)
    writer.add_question(name_wire(dns.name.from_text("a.example.test.")), 1, 1)
    assert writer.add_rrset(1, rrset("a.example.test.", "CNAME", "b.example.test."))
    table, pointers, size = dict(writer.table), list(writer.pointers), len(writer.out)
    too_big = rrset("c.example.test.", "NS", *[f"n{i}.other.test." for i in range(9)])
    assert not writer.add_rrset(2, too_big)
    assert (writer.table, writer.pointers, len(writer.out)) == (table, pointers, size)
    assert writer.counts == [1, 1, 0, 0]
    with pytest.raises(TooBig):
        writer.reserve(1000)
