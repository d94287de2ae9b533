"""DNS over TCP against a real `gslb serve`: reuse, pipelining, framing, timeouts, the
connection cap, AXFR (multi-message, access control, errors) and UDP truncation."""

from __future__ import annotations

import random
import socket
import struct
import time
from pathlib import Path
from typing import Callable

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.query
import dns.zone
import pytest

from tests.e2e import rawdns as raw
from tests.e2e.rawdns import NOTAUTH, NOTIMP, REFUSED, opt_rr, query
from tests.servers import GslbProcess

BIG_ORIGIN = "big.test."
BIG_RECORDS = 4000
TXT_FAN = 60  # TXT records at one name: far more than a 1232-byte UDP answer holds


def _write_big_zone(directory: Path) -> Path:
    """A zone of several thousand records of mixed types, one huge RRset included."""
    rng = random.Random(7)
    lines = [
        f"$ORIGIN {BIG_ORIGIN}",
        "$TTL 300",
        "@ IN SOA ns1 hostmaster 2026010101 3600 600 86400 60",
        "@ IN NS ns1",
        "@ IN NS ns2.elsewhere.example.",
        "ns1 IN A 192.0.2.53",
        "@ IN MX 10 mail",
        "mail IN A 192.0.2.25",
    ]
    for i in range(BIG_RECORDS):
        kind = i % 4
        if kind == 0:
            lines.append(f"host{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        elif kind == 1:
            lines.append(f"host{i} IN AAAA 2001:db8::{i:x}")
        elif kind == 2:
            lines.append(f'txt{i} IN TXT "record {i} {rng.getrandbits(64):016x}"')
        else:
            lines.append(f"alias{i} IN CNAME host{i - 3}")
    for i in range(TXT_FAN):
        lines.append(f'fat IN TXT "fat record number {i:03d} with some padding to make it long"')
    for i in range(300):
        lines.append(f"many IN A 172.16.{i >> 8}.{i & 255}")
    path = directory / "big.test.zone"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def big_zone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bigzone")
    _write_big_zone(directory)
    return directory


@pytest.fixture(scope="module")
def big_server(big_zone_dir: Path, udp_path: str):
    server = GslbProcess(big_zone_dir)
    server.start([BIG_ORIGIN], timeout=30)
    yield server
    server.stop()


def _ask(sock: socket.socket, qid: int, name: str, qtype: int = 1) -> dns.message.Message:
    sock.sendall(raw.tcp_frame(query(qid, name, qtype)))
    wire = raw.tcp_read_message(sock)
    assert wire is not None, "server closed the connection"
    return dns.message.from_wire(wire)


def _is_closed(sock: socket.socket, wait: float = 2.0) -> bool:
    """True when the server has closed (EOF or reset) within `wait` seconds."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


# --- one connection, many queries ------------------------------------------------


def test_many_queries_on_one_connection(demo_server: GslbProcess) -> None:
    names = ["example.com", "www.example.com", "web.example.com", "nope.example.com",
             "x.apps.example.com", "example.net"]
    with raw.tcp_connect(demo_server.host, demo_server.port) as sock:
        for i in range(300):
            name = names[i % len(names)]
            reply = _ask(sock, i, name)
            assert reply.id == i
            assert reply.question[0].name == dns.name.from_text(name)
            expected = dns.rcode.NXDOMAIN if name.startswith("nope") else dns.rcode.NOERROR
            assert reply.rcode() == expected


def test_pipelining_20_queries(demo_server: GslbProcess) -> None:
    names = [f"h{i}.apps.example.com" for i in range(20)]  # the wildcard answers each one
    ids = random.Random(3).sample(range(65536), 20)
    burst = b"".join(raw.tcp_frame(query(qid, name)) for qid, name in zip(ids, names))
    with raw.tcp_connect(demo_server.host, demo_server.port) as sock:
        sock.sendall(burst)  # all 20 before reading anything
        replies = {}
        for _ in range(20):
            wire = raw.tcp_read_message(sock)
            assert wire is not None
            message = dns.message.from_wire(wire)
            replies[message.id] = message
    assert sorted(replies) == sorted(ids)
    for qid, name in zip(ids, names):
        reply = replies[qid]
        assert reply.question[0].name == dns.name.from_text(name)
        assert [rr.to_text() for rr in reply.answer[0]] == ["192.0.2.100"]


def test_message_split_across_segments(demo_server: GslbProcess) -> None:
    framed = raw.tcp_frame(query(4242, "www.example.com", edns=opt_rr()))
    cuts = [1, 2, 7, 20, len(framed) - 1]  # inside the length prefix, header, name, OPT
    with raw.tcp_connect(demo_server.host, demo_server.port) as sock:
        previous = 0
        for cut in cuts + [len(framed)]:
            sock.sendall(framed[previous:cut])
            previous = cut
            time.sleep(0.05)
        wire = raw.tcp_read_message(sock)
        assert wire is not None
        reply = dns.message.from_wire(wire)
        assert reply.id == 4242 and reply.rcode() == dns.rcode.NOERROR
        assert any(rrset.rdtype == dns.rdatatype.A for rrset in reply.answer)
        # Two messages in one segment with a third one's first byte: still in step.
        tail = raw.tcp_frame(query(3, "example.net"))
        sock.sendall(raw.tcp_frame(query(1, "example.com")) + raw.tcp_frame(query(2, "web.example.com"))
                     + tail[:1])
        time.sleep(0.1)
        sock.sendall(tail[1:])
        got = [dns.message.from_wire(raw.tcp_read_message(sock)).id for _ in range(3)]
        assert got == [1, 2, 3]


# --- idle timeout and the connection cap -----------------------------------------


def test_idle_timeout_closes_quiet_connection(start_server: Callable[..., GslbProcess]) -> None:
    server = start_server(Path(__file__).resolve().parents[2] / "zones",
                          ["--tcp-idle-timeout", "1"], ["example.com."])
    with raw.tcp_connect(server.host, server.port) as sock:
        opened = time.monotonic()
        assert _is_closed(sock, wait=5.0), "idle connection was never closed"
        elapsed = time.monotonic() - opened
    assert 0.8 <= elapsed <= 2.5, elapsed
    # A connection that keeps asking is not idle, however long it lives.
    with raw.tcp_connect(server.host, server.port) as sock:
        for i in range(5):
            assert _ask(sock, i, "example.com").rcode() == dns.rcode.NOERROR
            time.sleep(0.5)
        assert _ask(sock, 99, "example.com").rcode() == dns.rcode.NOERROR


def test_a_client_dribbling_bytes_is_cut_off(start_server: Callable[..., GslbProcess]) -> None:
    """One byte every 0.4 s never lets the 1 s idle timeout fire, but the message is not
    whole 1 s after its first byte: the connection is closed then, not 30 s later when the
    last byte would arrive. A message sent in slow pieces within the time is answered."""
    server = start_server(Path(__file__).resolve().parents[2] / "zones",
                          ["--tcp-idle-timeout", "1", "--tcp-message-timeout", "1",
                           "--workers", "1"], ["example.com."])
    framed = raw.tcp_frame(query(77, "a-rather-long-label-to-dribble-slowly.www.example.com"))
    assert len(framed) * 0.4 > 20
    with raw.tcp_connect(server.host, server.port) as sock:
        started = time.monotonic()
        closed_after = None
        for byte in framed:
            try:
                sock.sendall(bytes((byte,)))
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            if _is_closed(sock, wait=0.4):
                closed_after = time.monotonic() - started
                break
        assert closed_after is not None, "the dribbling client kept its connection"
        assert 0.8 <= closed_after <= 3.0, closed_after
    with raw.tcp_connect(server.host, server.port) as sock:
        for piece in (framed[:1], framed[1:9], framed[9:30], framed[30:]):
            sock.sendall(piece)
            time.sleep(0.2)  # 0.6 s in all: slow, but within the second
        wire = raw.tcp_read_message(sock)
        assert wire is not None and dns.message.from_wire(wire).id == 77


def test_connection_cap_evicts_oldest_idle(start_server: Callable[..., GslbProcess]) -> None:
    server = start_server(Path(__file__).resolve().parents[2] / "zones",
                          ["--tcp-max-connections", "3", "--tcp-idle-timeout", "30",
                           "--workers", "1"],  # the cap is per worker process
                          ["example.com."])
    time.sleep(0.3)  # let the readiness probe's TCP connection (if any) go away
    idle = []
    for i in range(3):
        sock = raw.tcp_connect(server.host, server.port)
        _ask(sock, i, "example.com")  # proves the server has accepted it
        idle.append(sock)
        time.sleep(0.1)
    try:
        with raw.tcp_connect(server.host, server.port) as fourth:
            for i in range(3):
                assert _ask(fourth, 100 + i, "www.example.com").rcode() == dns.rcode.NOERROR
            assert _is_closed(idle[0], wait=2.0), "the oldest idle connection is still open"
            for i, sock in enumerate(idle[1:], start=1):
                assert _ask(sock, 200 + i, "example.com").rcode() == dns.rcode.NOERROR
    finally:
        for sock in idle:
            sock.close()


# --- AXFR ------------------------------------------------------------------------


def _axfr_messages(server: GslbProcess, zone: str) -> list[dns.message.Message]:
    """Raw AXFR over one TCP connection: every message until the closing SOA."""
    messages = []
    soas = 0
    with raw.tcp_connect(server.host, server.port, timeout=10) as sock:
        sock.sendall(raw.tcp_frame(query(777, zone, dns.rdatatype.AXFR)))
        for _ in range(10000):
            wire = raw.tcp_read_message(sock)
            assert wire is not None, "connection closed mid-transfer"
            message = dns.message.from_wire(wire, xfr=True, one_rr_per_rrset=True)
            assert message.id == 777 and message.rcode() == dns.rcode.NOERROR
            messages.append(message)
            soas += sum(1 for rrset in message.answer if rrset.rdtype == dns.rdatatype.SOA)
            if soas >= 2 or message.rcode() != dns.rcode.NOERROR:
                break
        # The connection stays usable for ordinary queries after a transfer.
        assert _ask(sock, 778, zone, dns.rdatatype.SOA).rcode() == dns.rcode.NOERROR
    return messages


def _records(rrsets) -> list[tuple[str, int, str]]:
    return [
        (rrset.name.to_text().lower(), rrset.rdtype, rd.to_text().lower())
        for rrset in rrsets for rd in rrset
    ]


def test_axfr_multi_message(big_server: GslbProcess, big_zone_dir: Path) -> None:
    messages = _axfr_messages(big_server, BIG_ORIGIN)
    assert len(messages) > 1, "a zone of thousands of records should need several messages"
    assert messages[0].question and messages[0].question[0].rdtype == dns.rdatatype.AXFR
    assert all(not m.question for m in messages[1:])
    streamed = _records(rrset for m in messages for rrset in m.answer)
    assert streamed[0][1] == dns.rdatatype.SOA and streamed[-1][1] == dns.rdatatype.SOA
    assert streamed[0] == streamed[-1]
    zone = dns.zone.from_file(str(big_zone_dir / "big.test.zone"), origin=BIG_ORIGIN,
                              relativize=False)
    expected = sorted((name.to_text().lower(), rdata.rdtype, rdata.to_text().lower())
                      for name, _, rdata in zone.iterate_rdatas())
    body = streamed[1:-1]
    assert len(body) == len(set(body)), "a record was sent twice"
    assert sorted(body + [streamed[0]]) == expected
    assert len(expected) > BIG_RECORDS
    for message in messages:
        assert len(message.to_wire()) <= 65535


def test_axfr_refused_for_disallowed_client(start_server: Callable[..., GslbProcess],
                                            big_zone_dir: Path) -> None:
    server = start_server(big_zone_dir, ["--xfr-allow", "192.0.2.0/24"], [BIG_ORIGIN])
    with raw.tcp_connect(server.host, server.port) as sock:
        for qtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            reply = _ask(sock, 5, BIG_ORIGIN, qtype)
            assert reply.rcode() == dns.rcode.REFUSED, dns.rcode.to_text(reply.rcode())
            assert not reply.answer
        assert _ask(sock, 6, BIG_ORIGIN, dns.rdatatype.SOA).rcode() == dns.rcode.NOERROR


def test_axfr_over_udp_is_not_implemented(demo_server: GslbProcess) -> None:
    """As Knot DNS and NSD answer it (RFC 5936 section 4.2: AXFR is not defined over UDP)."""
    with raw.UdpClient(demo_server.host, demo_server.port) as udp:
        for qid, name in enumerate(["example.com", "www.example.com", "example.org"]):
            reply = udp.exchange(query(qid, name, dns.rdatatype.AXFR))
            assert reply.qr and reply.rcode == NOTIMP and reply.an == 0


@pytest.mark.parametrize("name", ["www.example.com", "ns1.example.com", "ext.example.com",
                                  "example.org", "com"])
def test_axfr_not_apex_is_notauth(demo_server: GslbProcess, name: str) -> None:
    with raw.tcp_connect(demo_server.host, demo_server.port) as sock:
        reply = _ask(sock, 12, name, dns.rdatatype.AXFR)
    assert reply.rcode() == NOTAUTH, dns.rcode.to_text(reply.rcode())
    assert not reply.answer


def test_axfr_of_child_zone_is_its_own(demo_server: GslbProcess) -> None:
    """sub.example.com is delegated in example.com and served itself: AXFR gives the child."""
    messages = _axfr_messages(demo_server, "sub.example.com.")
    records = _records(rrset for m in messages for rrset in m.answer)
    assert records[0][0] == "sub.example.com." and records[0][1] == dns.rdatatype.SOA
    assert all(name.endswith("sub.example.com.") for name, _, _ in records)


# --- UDP truncation, then TCP ----------------------------------------------------


@pytest.mark.parametrize("edns", [None, 1232, 4096], ids=["no-edns", "edns-1232", "edns-4096"])
def test_large_answer_truncated_on_udp_then_full_over_tcp(big_server: GslbProcess,
                                                          edns: int | None) -> None:
    packet = query(31, "fat.big.test", dns.rdatatype.TXT,
                   edns=opt_rr(payload=edns) if edns else None)
    with raw.UdpClient(big_server.host, big_server.port) as udp:
        reply = udp.exchange(packet)
    assert reply.tc, "an answer of this size must set TC over UDP"
    assert len(reply.wire) <= (512 if edns is None else 1232)  # server max is the default 1232
    with raw.tcp_connect(big_server.host, big_server.port) as sock:
        sock.sendall(raw.tcp_frame(packet))
        full = dns.message.from_wire(raw.tcp_read_message(sock))
    assert not full.flags & dns.flags.TC
    assert full.rcode() == dns.rcode.NOERROR
    assert sum(len(rrset) for rrset in full.answer) == TXT_FAN


def test_dnspython_falls_back_to_tcp(big_server: GslbProcess) -> None:
    """The everyday client path: dnspython's udp_with_fallback gets the whole RRset."""
    message = dns.message.make_query("many.big.test", "A", use_edns=0, payload=1232)
    reply, used_tcp = dns.query.udp_with_fallback(message, big_server.host, port=big_server.port,
                                                  timeout=3)
    assert used_tcp
    assert sum(len(rrset) for rrset in reply.answer) == 300


def test_tcp_length_prefix_is_exact(demo_server: GslbProcess) -> None:
    """Replies carry the right length prefix: two replies read back to back parse cleanly."""
    with raw.tcp_connect(demo_server.host, demo_server.port) as sock:
        sock.sendall(raw.tcp_frame(query(1, "example.com", 255)) + raw.tcp_frame(query(2, "example.com")))
        first = raw.tcp_read_message(sock)
        second = raw.tcp_read_message(sock)
    assert struct.unpack_from("!H", first)[0] == 1 and struct.unpack_from("!H", second)[0] == 2
    dns.message.from_wire(first)
    dns.message.from_wire(second)


def test_axfr_does_not_stall_other_clients(big_server: GslbProcess) -> None:
    """While a client sits on an unread transfer, UDP and TCP queries are answered promptly,
    and the transfer still completes once the client reads it."""
    with raw.tcp_connect(big_server.host, big_server.port, timeout=10) as xfr, \
            raw.UdpClient(big_server.host, big_server.port) as udp:
        xfr.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        xfr.sendall(raw.tcp_frame(query(901, BIG_ORIGIN, dns.rdatatype.AXFR)))
        latencies = []
        for i in range(40):
            started = time.monotonic()
            reply = udp.exchange(query(i, "host0.big.test"))
            latencies.append(time.monotonic() - started)
            assert reply.rcode == 0 and reply.an == 1
            time.sleep(0.01)
        assert max(latencies) < 0.4, f"queries stalled behind a transfer: {max(latencies):.3f}s"
        # Now read the whole transfer; a query pipelined behind it is answered after it.
        xfr.sendall(raw.tcp_frame(query(902, "host0.big.test")))
        soas, records = 0, 0
        while soas < 2:
            wire = raw.tcp_read_message(xfr)
            assert wire is not None
            message = dns.message.from_wire(wire, xfr=True, one_rr_per_rrset=True)
            assert message.id == 901
            soas += sum(1 for rrset in message.answer if rrset.rdtype == dns.rdatatype.SOA)
            records += len(message.answer)
        assert records > BIG_RECORDS
        after = dns.message.from_wire(raw.tcp_read_message(xfr))
        assert after.id == 902 and after.answer


def test_ixfr_is_answered_with_the_full_zone(big_server: GslbProcess, big_zone_dir: Path) -> None:
    """IXFR over TCP (with the client's SOA in authority) gets an AXFR-style full transfer
    (RFC 1995 section 4); dnspython's own xfr client accepts and applies it."""
    query_ixfr = dns.message.make_query(BIG_ORIGIN, dns.rdatatype.IXFR)
    query_ixfr.authority.append(dns.rrset.from_text(
        BIG_ORIGIN, 0, "IN", "SOA", "ns1.big.test. hostmaster.big.test. 1 1 1 1 1"))
    with raw.tcp_connect(big_server.host, big_server.port, timeout=10) as sock:
        sock.sendall(raw.tcp_frame(query_ixfr.to_wire()))
        first = dns.message.from_wire(raw.tcp_read_message(sock), xfr=True, one_rr_per_rrset=True)
    assert first.rcode() == dns.rcode.NOERROR
    assert first.question[0].rdtype == dns.rdatatype.IXFR
    assert first.answer[0].rdtype == dns.rdatatype.SOA
    assert first.answer[1].rdtype != dns.rdatatype.SOA  # AXFR-style, not an incremental diff
    transferred = dns.zone.from_xfr(dns.query.xfr(big_server.host, BIG_ORIGIN, port=big_server.port,
                                                  timeout=10, relativize=False), relativize=False)
    expected = dns.zone.from_file(str(big_zone_dir / "big.test.zone"), origin=BIG_ORIGIN,
                                  relativize=False)
    assert transferred == expected


def test_ixfr_over_udp_gets_the_soa(demo_server: GslbProcess) -> None:
    message = dns.message.make_query("example.com", dns.rdatatype.IXFR)
    message.authority.append(dns.rrset.from_text(
        "example.com.", 0, "IN", "SOA", "ns1.example.com. hostmaster.example.com. 1 1 1 1 1"))
    reply = dns.query.udp(message, demo_server.host, port=demo_server.port, timeout=2)
    assert reply.rcode() == dns.rcode.NOERROR
    assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.SOA]
    # Without the client's SOA (RFC 1995 section 3) the query is malformed, as Knot DNS
    # and NSD answer it.
    bare = dns.message.make_query("example.com", dns.rdatatype.IXFR)
    reply = dns.query.udp(bare, demo_server.host, port=demo_server.port, timeout=2)
    assert reply.rcode() == dns.rcode.FORMERR and not reply.answer


def test_ixfr_from_an_up_to_date_client_gets_the_soa_alone(demo_server: GslbProcess) -> None:
    """Over TCP too: nothing changed since the client's serial, so the SOA alone, as Knot
    DNS and NSD do, instead of the whole zone again."""
    message = dns.message.make_query("example.com", dns.rdatatype.IXFR)
    message.authority.append(dns.rrset.from_text(
        "example.com.", 0, "IN", "SOA",
        "ns1.example.com. hostmaster.example.com. 2026112401 1 1 1 1"))
    reply = dns.query.tcp(message, demo_server.host, port=demo_server.port, timeout=2)
    assert reply.rcode() == dns.rcode.NOERROR
    assert [(r.rdtype, len(r)) for r in reply.answer] == [(dns.rdatatype.SOA, 1)]
