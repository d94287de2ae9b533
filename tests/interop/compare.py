"""What the differential tests share: a query as a value, asking a server, and comparing
two replies part by part (rcode, AA, TC, each section, Extended DNS Errors)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Callable

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
import dns.tsigkeyring

Message = dns.message.Message


@dataclass(frozen=True)
class Query:
    name: str
    rdtype: str
    tcp: bool
    edns: bool
    payload: int = 1232
    dnssec_ok: bool = False
    rdclass: str = "IN"
    source: str | None = None  # the client address, when not 127.0.0.1
    ixfr_serial: int | None = None  # the client's SOA serial, in the authority section
    tsig: bool = False  # signed with a key the servers do not hold (RFC 8945)

    def label(self) -> str:
        how = ("tcp" if self.tcp else "udp") + (f"+edns({self.payload})" if self.edns else "")
        extra = (" +do" if self.dnssec_ok else "") + (f" from {self.source}" if self.source else "")
        extra += f" serial {self.ixfr_serial}" if self.ixfr_serial is not None else ""
        extra += " +tsig" if self.tsig else ""
        kind = self.rdtype if self.rdclass == "IN" else f"{self.rdclass} {self.rdtype}"
        return f"{self.name} {kind} {how}{extra}"


def message_for(query: Query) -> Message:
    message = dns.message.make_query(query.name, query.rdtype, query.rdclass,
                                     use_edns=0 if query.edns else False,
                                     payload=query.payload, want_dnssec=query.dnssec_ok)
    message.flags = 0  # no RD: both are authoritative only
    if query.ixfr_serial is not None:
        message.authority.append(dns.rrset.from_text(
            query.name, 0, "IN", "SOA", f"ns1.{query.name} hostmaster.{query.name} "
            f"{query.ixfr_serial} 3600 600 86400 60"))
    if query.tsig:
        message.use_tsig(UNKNOWN_KEY, keyname="unknown-key.")
    return message


UNKNOWN_KEY = dns.tsigkeyring.from_text({"unknown-key.": "c2VjcmV0c2VjcmV0c2VjcmV0"})


def ask(host: str, port: int, query: Query) -> Message:
    """The reply; one that does not parse is read as its header alone (NSD answers an IXFR
    without the client's SOA with a FORMERR header that claims a question it lacks)."""
    wire = message_for(query).to_wire()
    family_source = (query.source, 0) if query.source else None
    if query.tcp:
        with socket.create_connection((host, port), timeout=3, source_address=family_source) as sock:
            sock.sendall(struct.pack("!H", len(wire)) + wire)
            data = read_exactly(sock, struct.unpack("!H", read_exactly(sock, 2))[0])
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3)
            if family_source:
                sock.bind(family_source)
            sock.sendto(wire, (host, port))
            data = sock.recv(65535)
    try:
        return dns.message.from_wire(data, ignore_trailing=True)
    except dns.exception.FormError:
        return dns.message.from_wire(data[:4] + bytes(8))
    except dns.message.UnknownTSIGKey:
        return _signed_reply(data)


def _signed_reply(data: bytes) -> Message:
    """A reply that ends in a TSIG record: its sections without it, and the TSIG's error
    code (RFC 8945 section 4.2) as `reply_tsig_error`."""
    arcount = struct.unpack_from("!H", data, 10)[0]
    unsigned = data[:10] + struct.pack("!H", arcount - 1) + data[12:]
    message = dns.message.from_wire(unsigned, ignore_trailing=True)
    message.reply_tsig_error = struct.unpack("!H", data[-4:-2])[0]  # then OTHER LEN, 0 here
    return message


def read_exactly(sock: socket.socket, count: int) -> bytes:
    """`count` bytes of a TCP stream (a DNS message or its length), however the kernel
    splits them."""
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection mid-reply")
        data += chunk
    return data


def section_set(rrsets) -> frozenset:
    """RRsets as comparable values: lowercased owner, type, TTL and sorted rdata."""
    return frozenset(
        (rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype), rrset.ttl,
         tuple(sorted(rd.to_text().lower() for rd in rrset)))
        for rrset in rrsets
    )


def ede_codes(message: Message) -> list[int]:
    """The Extended DNS Error INFO-CODEs (RFC 8914) of a reply, in order."""
    return [o.code for o in message.options if o.otype == dns.edns.OptionType.EDE]


def differing_parts(ours: Message, theirs: Message) -> set[str]:
    parts = set()
    if ours.rcode() != theirs.rcode():
        parts.add("rcode")
    for flag, part in ((dns.flags.AA, "aa"), (dns.flags.TC, "tc")):
        if ours.flags & flag != theirs.flags & flag:
            parts.add(part)
    if section_set(ours.answer) != section_set(theirs.answer):
        parts.add("answer")
    if section_set(ours.authority) != section_set(theirs.authority):
        parts.add("authority")
    # Additional data is filled in as space allows (RFC 2181 section 9), so a truncated
    # reply's additional section says nothing; every other one is compared (glue, and
    # MX/SRV/NS targets).
    truncated = ours.flags & theirs.flags & dns.flags.TC
    if not truncated and section_set(ours.additional) != section_set(theirs.additional):
        parts.add("additional")
    if sorted(ede_codes(ours)) != sorted(ede_codes(theirs)):
        parts.add("ede")
    if getattr(ours, "reply_tsig_error", None) != getattr(theirs, "reply_tsig_error", None):
        parts.add("tsig")
    return parts


@dataclass(frozen=True)
class Known:
    """A difference we keep on purpose: which queries, which parts differ, how gslb's
    reply must look instead, and the RFC reason it is right."""

    name: str  # absolute, case-insensitive
    rdtypes: tuple[str, ...]  # () means every type
    parts: frozenset[str]
    check: Callable[[Message, Message], bool]
    reason: str

    def covers(self, outcome: "Outcome") -> bool:
        query = outcome.query
        return (
            self.name.lower() == query.name.lower()
            and (not self.rdtypes or query.rdtype in self.rdtypes)
            and outcome.parts <= self.parts
            and self.check(outcome.ours, outcome.theirs)
        )


@dataclass
class Outcome:
    query: Query
    parts: set[str]
    ours: Message
    theirs: Message
    peer: str = "knot"

    def report(self) -> str:
        return (f"=== {self.query.label()}: {', '.join(sorted(self.parts))} differ\n"
                f"--- gslb\n{self.ours.to_text()}\n--- {self.peer}\n{self.theirs.to_text()}\n")


def assert_only_known(outcomes: list[Outcome], known: list[Known], peer: str) -> None:
    """Every difference is in the table, with its reason; both replies printed if not."""
    differ = [o for o in outcomes if o.parts and not any(k.covers(o) for k in known)]
    assert not differ, (f"{len(differ)} of {len(outcomes)} replies differ from {peer}:\n\n"
                        + "\n".join(o.report() for o in differ))


def assert_none_stale(outcomes: list[Outcome], known: list[Known]) -> None:
    """A table entry that no longer matches any difference is stale: delete it."""
    stale = [k for k in known if not any(o.parts and k.covers(o) for o in outcomes)]
    assert not stale, "known differences that no longer occur:\n" + "\n".join(map(str, stale))
