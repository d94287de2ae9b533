"""Raw DNS packets for the e2e tests: hand-built queries and plain-socket exchanges.

dnspython refuses to build most of what these tests need to send (bad label lengths,
two OPT records, pointer loops), so queries are assembled byte by byte here. Replies
are decoded with a small header reader, and with dnspython when they should be valid.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

HEADER = struct.Struct("!HHHHHH")
QR = 0x8000
TC = 0x0200
OPT = 41

FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, NOTAUTH = 1, 2, 3, 4, 5, 9
BADVERS = 16


def name_wire(name: str) -> bytes:
    """Uncompressed wire form of a dotted name ("" or "." is the root)."""
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def header(qid: int, flags: int = 0, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return HEADER.pack(qid, flags, qd, an, ns, ar)


def question(name: str = "example.com", qtype: int = 1, qclass: int = 1) -> bytes:
    return name_wire(name) + struct.pack("!HH", qtype, qclass)


def opt_rr(payload: int = 1232, version: int = 0, do: bool = False, options: bytes = b"",
           owner: bytes = b"\x00", rdlength: int | None = None, ext_rcode: int = 0) -> bytes:
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    length = len(options) if rdlength is None else rdlength
    return owner + struct.pack("!HHIH", OPT, payload, ttl, length) + options


def option(code: int, value: bytes, length: int | None = None) -> bytes:
    return struct.pack("!HH", code, len(value) if length is None else length) + value


def ecs(family: int, source: int, scope: int, address: bytes) -> bytes:
    return option(8, struct.pack("!HBB", family, source, scope) + address)


def query(qid: int, name: str = "example.com", qtype: int = 1, flags: int = 0,
          edns: bytes | None = None) -> bytes:
    """A well-formed query, optionally with one additional (OPT) record."""
    return header(qid, flags, 1, 0, 0, 1 if edns else 0) + question(name, qtype) + (edns or b"")


@dataclass
class Reply:
    """The header of a reply, plus the OPT's extended rcode when there is one."""

    wire: bytes
    id: int
    flags: int
    qd: int
    an: int
    ns: int
    ar: int

    @property
    def qr(self) -> bool:
        return bool(self.flags & QR)

    @property
    def tc(self) -> bool:
        return bool(self.flags & TC)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rcode(self) -> int:
        """The full rcode, with the OPT's upper bits (parsed with dnspython)."""
        import dns.message

        low = self.flags & 0xF
        if not self.ar:
            return low
        msg = dns.message.from_wire(self.wire)
        return msg.rcode()

    @property
    def has_opt(self) -> bool:
        import dns.message

        return self.ar > 0 and dns.message.from_wire(self.wire).opt is not None


def parse_reply(wire: bytes) -> Reply:
    assert len(wire) >= 12, f"reply shorter than a header: {wire!r}"
    return Reply(wire, *HEADER.unpack_from(wire))


class UdpClient:
    """One UDP socket to the server, with a probe to tell 'no reply' from 'slow reply'."""

    def __init__(self, host: str, port: int, timeout: float = 2.0):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "UdpClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exchange(self, data: bytes) -> Reply:
        """Send and wait for the reply with the same ID (raises on timeout)."""
        self.sock.send(data)
        qid = struct.unpack_from("!H", data)[0]
        while True:
            reply = parse_reply(self.sock.recv(65535))
            if reply.id == qid:
                return reply

    def send_then_probe(self, data: bytes, probe_id: int) -> list[Reply]:
        """Send `data`, then a valid probe query; every reply that came before the probe's.

        The server handles datagrams in order, so once the probe is answered anything
        `data` provoked has already arrived: silence is proven without waiting out a
        timeout.
        """
        self.sock.send(data)
        self.sock.send(query(probe_id, "probe.example.com", 1))
        before: list[Reply] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            wire = self.sock.recv(65535)
            reply = parse_reply(wire)
            if reply.id == probe_id and reply.qr and b"\x05probe\x07example\x03com\x00" in wire.lower():
                return before
            before.append(reply)
        raise AssertionError("probe query was never answered")


def tcp_frame(message: bytes) -> bytes:
    return struct.pack("!H", len(message)) + message


def recv_exact(sock: socket.socket, count: int) -> bytes | None:
    """Exactly `count` bytes, or None if the peer closed first."""
    chunks = b""
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return chunks


def tcp_read_message(sock: socket.socket) -> bytes | None:
    length = recv_exact(sock, 2)
    if length is None:
        return None
    body = recv_exact(sock, struct.unpack("!H", length)[0])
    return body


def tcp_connect(host: str, port: int, timeout: float = 3.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS line")
