"""Malformed and hostile packets against a real `gslb serve`, over UDP and TCP.

Hand-made cases assert the exact rcode RFC 1035/6891/7871 call for; seeded fuzzing
(random bytes, bit flips, truncations, random counts) asserts only that every reply is a
well-formed response to the packet that provoked it and that response packets are never
answered. Afterwards the server must still answer, be alive, have logged no traceback,
and not have grown its memory.
"""

from __future__ import annotations

import os
import random
import socket
import struct
from typing import Iterator

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from tests.e2e import rawdns as raw
from tests.e2e.rawdns import (
    BADVERS, FORMERR, NOTIMP, QR, UdpClient, ecs, header, opt_rr, option, query, question,
)
from tests.servers import DEMO_ZONES, GslbProcess

SEED = 20261124
FUZZ_UDP = 1200
FUZZ_TCP = 150
PROBE_ID = 0xBEEF


@pytest.fixture(scope="module")
def server(udp_path: str) -> Iterator[GslbProcess]:
    # One process: the fuzz test measures this PID's memory, so it must be the one serving.
    proc = GslbProcess(DEMO_ZONES, ["--nsid", "fuzz", "--workers", "1"])
    proc.start(["example.com.", "sub.example.com.", "example.net."])
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def udp(server: GslbProcess) -> Iterator[UdpClient]:
    with UdpClient(server.host, server.port) as client:
        yield client


# --- hand-made cases: (id, packet, expected rcode) -----------------------------------

Q = question()  # example.com. IN A


def _hand_made() -> list[tuple[str, bytes, int]]:
    cases: list[tuple[str, bytes, int]] = [
        # Question section.
        ("qdcount 0", header(1, qd=0), FORMERR),
        ("qdcount 0 with an OPT", header(1, qd=0, ar=1) + opt_rr(), FORMERR),
        ("qdcount 2", header(1, qd=2) + Q + question("example.net"), FORMERR),
        ("qdcount 2 with one question", header(1, qd=2) + Q, FORMERR),
        ("qdcount 65535", header(1, qd=0xFFFF) + Q, FORMERR),
        ("compression pointer as qname", header(1) + b"\xc0\x0c" + b"\x00\x01\x00\x01", FORMERR),
        ("compression pointer after a label",
         header(1) + b"\x03www\xc0\x0c" + b"\x00\x01\x00\x01", FORMERR),
        ("label length 64", header(1) + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01", FORMERR),
        ("extended label type 0x40", header(1) + b"\x41" + b"\x00\x00\x01\x00\x01", FORMERR),
        ("label overruns the packet", header(1) + b"\x3fabc", FORMERR),
        ("name without terminating root", header(1) + b"\x07example\x03com", FORMERR),
        ("name longer than 255",
         header(1) + (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01", FORMERR),
        ("question missing type and class", header(1) + raw.name_wire("example.com"), FORMERR),
        ("question missing class", header(1) + raw.name_wire("example.com") + b"\x00\x01", FORMERR),
        ("header only, qdcount 1", header(1), FORMERR),
        # Trailing data and lying counts.
        ("trailing garbage", query(1) + b"\xde\xad\xbe\xef", FORMERR),
        ("one trailing zero byte", query(1) + b"\x00", FORMERR),
        ("trailing garbage after OPT", query(1, edns=opt_rr()) + b"junk", FORMERR),
        ("ancount 1, no answer", header(1, an=1) + Q, FORMERR),
        ("nscount 3, no authority", header(1, ns=3) + Q, FORMERR),
        ("arcount 2, one OPT", header(1, ar=2) + Q + opt_rr(), FORMERR),
        ("arcount 65535", header(1, ar=0xFFFF) + Q, FORMERR),
        ("answer RR rdlength overruns",
         header(1, an=1) + Q + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 0, 200) + b"\x01\x02", FORMERR),
        # Compression pointers in the other sections.
        ("pointer loop in answer owner",
         header(1, an=1) + Q + b"\xc0\x1d" + struct.pack("!HHIH", 1, 1, 0, 4) + b"\x7f\x00\x00\x01",
         FORMERR),
        ("two-pointer loop in additional",
         header(1, ar=1) + Q + b"\x01a\xc0\x1d" + struct.pack("!HHIH", 1, 1, 0, 0)
         + b"", FORMERR),
        ("forward pointer in authority",
         header(1, ns=1) + Q + b"\xc0\xff" + struct.pack("!HHIH", 1, 1, 0, 0), FORMERR),
        ("pointer past the end in answer",
         header(1, an=1) + Q + b"\xc3\xff" + struct.pack("!HHIH", 1, 1, 0, 0), FORMERR),
        ("pointer into the header in answer",
         header(1, an=1) + Q + b"\xc0\x02" + struct.pack("!HHIH", 1, 1, 0, 0), FORMERR),
        # OPT (RFC 6891 section 6.1.1).
        ("two OPT records", header(1, ar=2) + Q + opt_rr() + opt_rr(), FORMERR),
        ("OPT with non-root owner", header(1, ar=1) + Q + opt_rr(owner=raw.name_wire("example.com")),
         FORMERR),
        ("OPT owner is a pointer", header(1, ar=1) + Q + opt_rr(owner=b"\xc0\x0c"), FORMERR),
        ("OPT rdlength overruns", header(1, ar=1) + Q + opt_rr(rdlength=10), FORMERR),
        ("OPT option header truncated", query(1, edns=opt_rr(options=b"\x00\x03\x00")), FORMERR),
        ("OPT option length overruns",
         query(1, edns=opt_rr(options=option(10, b"\x01\x02", length=9))), FORMERR),
        ("OPT option length short of the rdata",
         query(1, edns=opt_rr(options=option(10, b"\x01\x02\x03\x04", length=2))), FORMERR),
        ("NSID with data in a query", query(1, edns=opt_rr(options=option(3, b"x"))), FORMERR),
        # Client subnet (RFC 7871 sections 6 and 7.1.2).
        ("ECS family 3", query(1, edns=opt_rr(options=ecs(3, 24, 0, b"\xc0\x00\x02"))), FORMERR),
        ("ECS family 0", query(1, edns=opt_rr(options=ecs(0, 0, 0, b""))), FORMERR),
        ("ECS IPv4 source 33", query(1, edns=opt_rr(options=ecs(1, 33, 0, b"\xc0\x00\x02\x01\x00"))),
         FORMERR),
        ("ECS IPv6 source 129", query(1, edns=opt_rr(options=ecs(2, 129, 0, b"\x20" + b"\x00" * 16))),
         FORMERR),
        ("ECS address too long", query(1, edns=opt_rr(options=ecs(1, 24, 0, b"\xc0\x00\x02\x01"))),
         FORMERR),
        ("ECS address too short", query(1, edns=opt_rr(options=ecs(1, 24, 0, b"\xc0\x00"))), FORMERR),
        ("ECS IPv6 address too short", query(1, edns=opt_rr(options=ecs(2, 56, 0, b"\x20\x01"))),
         FORMERR),
        ("ECS bits beyond the prefix", query(1, edns=opt_rr(options=ecs(1, 23, 0, b"\xc0\x00\x03"))),
         FORMERR),
        ("ECS IPv6 bits beyond the prefix",
         query(1, edns=opt_rr(options=ecs(2, 33, 0, b"\x20\x01\x0d\xb8\x7f"))), FORMERR),
        ("ECS non-zero scope", query(1, edns=opt_rr(options=ecs(1, 24, 24, b"\xc0\x00\x02"))), FORMERR),
        ("ECS option shorter than its fixed part", query(1, edns=opt_rr(options=option(8, b"\x00\x01"))),
         FORMERR),
        ("two ECS options",
         query(1, edns=opt_rr(options=ecs(1, 24, 0, b"\xc0\x00\x02") * 2)), FORMERR),
        # EDNS version (RFC 6891 section 6.1.3).
        ("EDNS version 1", query(1, edns=opt_rr(version=1)), BADVERS),
        ("EDNS version 255 with DO", query(1, edns=opt_rr(version=255, do=True)), BADVERS),
        # Opcodes other than QUERY.
        *[(f"opcode {op}", query(1, flags=op << 11), NOTIMP) for op in (1, 2, 3, 4, 5, 6, 15)],
        ("UPDATE with zone section", header(1, 5 << 11, qd=1) + question("example.com", 6), NOTIMP),
        ("opcode 3 with garbage body", header(1, 3 << 11, qd=0) + b"\xff" * 20, NOTIMP),
    ]
    return cases


HAND_MADE = _hand_made()


@pytest.mark.parametrize("packet,expected", [(p, e) for _, p, e in HAND_MADE],
                         ids=[name for name, _, _ in HAND_MADE])
def test_hand_made_udp(udp: UdpClient, packet: bytes, expected: int) -> None:
    reply = udp.exchange(packet)
    assert reply.qr
    assert reply.opcode == (struct.unpack_from("!H", packet, 2)[0] >> 11) & 0xF
    assert reply.rcode == expected, dns.rcode.to_text(reply.rcode)
    if expected == BADVERS:
        assert reply.has_opt, "BADVERS needs an OPT record to carry the extended rcode"
        assert reply.an == 0


@pytest.mark.parametrize("packet,expected", [(p, e) for _, p, e in HAND_MADE[::3]],
                         ids=[name for name, _, _ in HAND_MADE[::3]])
def test_hand_made_tcp(server: GslbProcess, packet: bytes, expected: int) -> None:
    with raw.tcp_connect(server.host, server.port) as sock:
        sock.sendall(raw.tcp_frame(packet))
        wire = raw.tcp_read_message(sock)
    assert wire is not None, "server closed the connection instead of answering"
    reply = raw.parse_reply(wire)
    assert reply.qr and reply.id == 1
    assert reply.rcode == expected


def test_valid_edns_and_ecs_still_answer(udp: UdpClient) -> None:
    """The FORMERR checks above must not catch well-formed options."""
    for options in (b"", option(3, b""), ecs(1, 24, 0, b"\xc0\x00\x02"), ecs(1, 0, 0, b""),
                    ecs(2, 56, 0, b"\x20\x01\x0d\xb8\x00\x00\x00"), option(65001, b"unknown"),
                    ecs(1, 20, 0, b"\xc0\x00\x00")):
        reply = udp.exchange(query(7, "www.example.com", 1, edns=opt_rr(options=options)))
        assert reply.rcode == 0, options
        assert reply.an >= 2  # the CNAME and the A records


def test_valid_compression_in_other_sections_is_accepted(udp: UdpClient) -> None:
    """Pointers back to the question, or to a label of it, are fine in skipped records."""
    rr = struct.pack("!HHIH", 1, 1, 60, 4) + b"\x7f\x00\x00\x01"
    packets = [
        header(21, an=1) + Q + b"\xc0\x0c" + rr,  # owner = the question name
        header(22, ns=1) + Q + b"\x03www\xc0\x14" + rr,  # www + "com" from the question
        # A chain: the second owner points at the first, which points at the question.
        header(23, an=2) + Q + b"\x01a\xc0\x0c" + rr + b"\x01b\xc0\x1d" + rr,
        header(24, an=1, ar=1) + Q + b"\xc0\x0c" + rr + opt_rr(),
    ]
    for packet in packets:
        reply = udp.exchange(packet)
        assert reply.rcode == 0, packet.hex()
        assert reply.an >= 1


@pytest.mark.parametrize("packet", [
    query(9, flags=QR),
    query(9, flags=QR | 0x0400),
    query(9, flags=QR, edns=opt_rr(version=1)),
    header(9, QR | 1, qd=0),
    header(9, QR | (5 << 11), qd=0),
    header(9, QR, qd=2) + b"\xff" * 30,
    header(9, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF),
], ids=["query with QR", "QR+AA", "QR with EDNS v1", "FORMERR-shaped response",
        "QR with opcode 5", "QR garbage", "all bits set"])
def test_responses_are_never_answered(udp: UdpClient, server: GslbProcess, packet: bytes) -> None:
    assert udp.send_then_probe(packet, PROBE_ID) == []
    with raw.tcp_connect(server.host, server.port) as sock:
        sock.sendall(raw.tcp_frame(packet) + raw.tcp_frame(query(PROBE_ID, "probe.example.com")))
        wire = raw.tcp_read_message(sock)
    assert wire is not None and raw.parse_reply(wire).id == PROBE_ID


@pytest.mark.parametrize("length", [0, 1, 2, 11])
def test_short_packets_get_no_reply(udp: UdpClient, length: int) -> None:
    assert udp.send_then_probe(query(0x1234)[:length], PROBE_ID) == []


# --- seeded fuzzing ----------------------------------------------------------------

NAMES = ["example.com", "www.example.com", "x.apps.example.com", "ext.example.com",
         "sub.example.com", "nope.example.net", "version.bind", "a.b.deep.example.com"]


def _valid(rng: random.Random) -> bytes:
    edns = None
    roll = rng.random()
    if roll < 0.3:
        edns = opt_rr(payload=rng.choice([0, 512, 1232, 4096, 65535]), do=rng.random() < 0.5)
    elif roll < 0.6:
        edns = opt_rr(options=ecs(1, 24, 0, bytes([rng.randrange(256) for _ in range(3)]))
                      + option(3, b""))
    qtype = rng.choice([1, 2, 5, 6, 15, 16, 28, 33, 255, 252, 251, 41, 0, 65535])
    return query(rng.randrange(65536), rng.choice(NAMES), qtype, edns=edns)


def _fuzz_packet(rng: random.Random) -> bytes:
    kind = rng.randrange(7)
    if kind == 0:  # random bytes
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
    elif kind == 1:  # bit flips
        data = bytearray(_valid(rng))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        data = bytes(data)
    elif kind == 2:  # truncation
        data = _valid(rng)
        data = data[: rng.randrange(len(data))]
    elif kind == 3:  # random header counts
        data = bytearray(_valid(rng))
        struct.pack_into("!HHHH", data, 4, *(rng.choice([0, 1, 2, rng.randrange(65536)])
                                             for _ in range(4)))
        data = bytes(data)
    elif kind == 4:  # random labels (lengths, pointers, binary)
        body = b""
        for _ in range(rng.randint(0, 6)):
            length = rng.choice([0, 1, 5, 63, 64, 0x40, 0x80, 0xC0, 0xFF, rng.randrange(256)])
            body += bytes([length]) + bytes(rng.randrange(256) for _ in range(min(length, 20)))
        data = header(rng.randrange(65536), rng.randrange(65536) & ~QR) + body + b"\x00\x01\x00\x01"
    elif kind == 5:  # spliced random tail
        data = _valid(rng) + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30)))
    else:  # random OPT / option contents
        options = b"".join(
            option(rng.choice([3, 8, 10, 12, rng.randrange(65536)]),
                   bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12))),
                   length=rng.choice([None, None, rng.randrange(40)]))
            for _ in range(rng.randint(1, 3))
        )
        data = query(rng.randrange(65536), rng.choice(NAMES),
                     edns=opt_rr(version=rng.choice([0, 0, 0, 1]), options=options,
                                 payload=rng.randrange(65536)))
    if rng.random() < 0.5 and len(data) >= 4:
        # Most fuzz should look like a query, or it is only testing the QR check.
        data = data[:2] + bytes([data[2] & 0x7F]) + data[3:]
    return data


def _check_fuzz_replies(packet: bytes, replies: list[raw.Reply]) -> None:
    is_response = len(packet) >= 3 and packet[2] & 0x80
    if len(packet) < 12 or is_response:
        assert replies == [], f"answered a packet that must get no reply: {packet.hex()}"
        return
    assert len(replies) <= 1, packet.hex()
    for reply in replies:
        assert reply.id == struct.unpack_from("!H", packet)[0], packet.hex()
        assert reply.qr, packet.hex()
        assert reply.flags & 0xF != 2, f"SERVFAIL (internal error) for {packet.hex()}"
        message = dns.message.from_wire(reply.wire)  # well-formed, or this raises
        assert message.opcode() == (packet[2] >> 3) & 0xF
        assert message.rcode() in (0, 1, 3, 4, 5, 9, 16), (dns.rcode.to_text(message.rcode()),
                                                           packet.hex())


def test_udp_fuzz(server: GslbProcess, udp: UdpClient) -> None:
    rng = random.Random(SEED)
    udp.exchange(query(1, "www.example.com"))
    rss_before = raw.rss_kib(server.pid)
    answered = 0
    for round_ in range(FUZZ_UDP):
        packet = _fuzz_packet(rng)
        probe_id = PROBE_ID if packet[:2] != struct.pack("!H", PROBE_ID) else PROBE_ID + 1
        replies = udp.send_then_probe(packet, probe_id)
        _check_fuzz_replies(packet, replies)
        answered += len(replies)
    # A second pass over the same packets: memory must be flat once caches are warm.
    rss_mid = raw.rss_kib(server.pid)
    rng = random.Random(SEED)
    for _ in range(FUZZ_UDP):
        udp.send_then_probe(_fuzz_packet(rng), PROBE_ID)
    rss_after = raw.rss_kib(server.pid)
    assert answered > FUZZ_UDP // 3, "fuzzing barely got any replies: is it testing anything?"
    if not os.environ.get("GSLB_TEST_ASAN"):  # AddressSanitizer's quarantine grows memory
        assert rss_after - rss_before < 20 * 1024, (rss_before, rss_mid, rss_after)
        assert rss_after - rss_mid < 4 * 1024, (rss_before, rss_mid, rss_after)


def test_tcp_fuzz(server: GslbProcess) -> None:
    """Each fuzz message framed on its own connection, followed by a probe on the same one."""
    rng = random.Random(SEED + 1)
    closed_early = 0
    for _ in range(FUZZ_TCP):
        packet = _fuzz_packet(rng)
        probe = query(PROBE_ID, "probe.example.com")
        with raw.tcp_connect(server.host, server.port) as sock:
            sock.sendall(raw.tcp_frame(packet) + raw.tcp_frame(probe))
            replies = []
            while True:
                try:
                    wire = raw.tcp_read_message(sock)
                except ConnectionResetError:
                    wire = None
                if wire is None:
                    closed_early += 1
                    assert len(packet) < 12, f"connection dropped after {packet.hex()}"
                    break
                reply = raw.parse_reply(wire)
                if reply.id == PROBE_ID and b"\x05probe" in wire and reply.qr:
                    break
                replies.append(reply)
        _check_fuzz_replies(packet, replies)


def test_tcp_garbage_framing(server: GslbProcess) -> None:
    """A length prefix that announces less than a header: the connection is closed."""
    with raw.tcp_connect(server.host, server.port) as sock:
        sock.sendall(b"\x00\x03abc")
        try:
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass


def test_server_survives(server: GslbProcess, udp: UdpClient) -> None:
    """Run last in this module: everything above must have left the server healthy."""
    assert server.proc is not None and server.proc.poll() is None
    reply = server.query("www.example.com", "A")
    assert reply.rcode() == dns.rcode.NOERROR
    assert {rr.to_text() for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A
            for rr in rrset} == {"192.0.2.80", "192.0.2.81"}
    tcp_reply = server.query("example.net", "SOA", tcp=True)
    assert tcp_reply.answer
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
    assert "failed; answering SERVFAIL" not in log
