"""Response rate limiting (RRL), the pure part: which class a reply is in, and the
token buckets that decide whether it goes out.

The native loop does the same in C (gslb/server/native/rrl.c): the same classes, the
same names, the same bucket arithmetic, so both loops limit alike (tests compare them).

A reply is classified from its own bytes, after it is built:

- positive: NOERROR with answers; counted under its qname and qtype (the same answer);
- nodata: NOERROR, no answers, authoritative (or no authority records); its qname;
- nxdomain: under the zone (the owner of the authority SOA), so a flood of random
  names in one zone fills one bucket;
- referral: NOERROR, no answers, not authoritative, with authority records; under the
  delegation (the owner of the authority NS);
- error: any other rcode, one bucket per network.

Each (class, client network, qtype, name) has a bucket of `rate * window` responses,
refilled at `rate` a second; a reply that finds it empty is limited: dropped, or every
`slip`th one truncated (TC set, the question only) so a real client retries over TCP.
Buckets count thousandths of a response, in integers, as the C code does.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable

CLASSES = ("positive", "nodata", "nxdomain", "referral", "error")
POSITIVE, NODATA, NXDOMAIN, REFERRAL, ERROR = range(5)
PASS, DROP, SLIP = "pass", "drop", "slip"
MILLI = 1000
TABLE_ENTRIES = 1 << 16  # buckets kept; the least recently used goes first
LOG_PER_SECOND = 5  # log lines about limited networks, for the whole node
AA, TC = 0x04, 0x02
TYPE_NS, TYPE_SOA = 2, 6


@dataclass(frozen=True)
class RrlSettings:
    """`--rrl-*`: the limits (rate 0: off)."""

    rate: int = 0
    slip: int = 2
    window: int = 4
    ipv4_prefix: int = 24
    ipv6_prefix: int = 56
    exempt: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=())


def _skip_name(m: bytes, at: int) -> int:
    """Past a (possibly compressed) name at `at`; 0 when it runs off the message."""
    n = len(m)
    while at < n:
        label = m[at]
        if label >= 0xC0:
            return at + 2 if at + 2 <= n else 0
        if label > 63:
            return 0
        at += label + 1
        if label == 0:
            return at
    return 0


def _read_name(m: bytes, at: int) -> bytes | None:
    """The lowercase wire name at `at`, pointers followed; None when malformed."""
    out = bytearray()
    hops = 0
    n = len(m)
    while at < n:
        label = m[at]
        if label >= 0xC0:
            hops += 1
            if at + 1 >= n or hops > 16:
                return None
            at = (label & 0x3F) << 8 | m[at + 1]
            continue
        if label > 63 or at + 1 + label > n or len(out) + 1 + label > 255:
            return None
        out += m[at : at + 1 + label]
        if label == 0:
            return bytes(out.lower())
        at += label + 1
    return None


def classify(m: bytes) -> tuple[int, bytes, int, int]:
    """(class, name, qtype, question_end) of a reply: the name (and for a positive
    answer the type) it is counted under, the root when the reply does not say; where
    its truncated form ends."""
    n = len(m)
    if n < 12 or m[4:6] != b"\x00\x01":
        return ERROR, b"\x00", 0, min(n, 12)
    rcode = m[3] & 0x0F
    at = _skip_name(m, 12)
    if at == 0 or at + 4 > n or rcode not in (0, 3):
        return ERROR, b"\x00", 0, 12
    end = at + 4
    qname = _read_name(m, 12)
    if qname is None:
        return ERROR, b"\x00", 0, end
    answers = m[6] << 8 | m[7]
    authority = m[8] << 8 | m[9]
    if rcode == 0 and answers:
        return POSITIVE, qname, m[at] << 8 | m[at + 1], end
    if rcode == 0 and (m[2] & AA or not authority):
        return NODATA, qname, 0, end
    cls, want = (REFERRAL, TYPE_NS) if rcode == 0 else (NXDOMAIN, TYPE_SOA)
    at = end
    for index in range(answers + authority):
        owner = at
        at = _skip_name(m, at)
        if at == 0 or at + 10 > n:
            break
        if index >= answers and (m[at] << 8 | m[at + 1]) == want:
            return cls, _read_name(m, owner) or b"\x00", 0, end
        at += 10 + (m[at + 8] << 8 | m[at + 9])
    return cls, b"\x00", 0, end


class Buckets:
    """The limiter's state and verdicts; the caller passes the time (ms) in.

    `counts[(action, class)]`: limited replies, dropped or slipped. `limited`: called
    with (network, class, name) when a bucket is limited and its line is due (once a
    window per bucket, LOG_PER_SECOND for the node)."""

    def __init__(self, settings: RrlSettings,
                 limited: Callable[[bytes, str, bytes], None] | None = None) -> None:
        self.settings = settings
        self.capacity = settings.rate * settings.window * MILLI
        self.exempt = settings.exempt
        self.table: dict[tuple, list[int]] = {}  # key -> [tokens, time, limited, logged]
        self.counts: dict[tuple[str, str], int] = {}
        self.limited = limited
        self.log_second = 0
        self.log_count = 0

    def network(self, address: bytes) -> bytes:
        prefix = self.settings.ipv4_prefix if len(address) == 4 else self.settings.ipv6_prefix
        value = int.from_bytes(address, "big")
        bits = len(address) * 8
        masked = value >> (bits - prefix) << (bits - prefix) if prefix else 0
        return masked.to_bytes(len(address), "big")

    def check(self, reply: bytes, address: bytes, now: int) -> tuple[str, bytes | None]:
        """(verdict, the reply to send: itself, its truncated form, or None)."""
        if self.exempt:
            ip = ipaddress.ip_address(address)
            if any(ip in network for network in self.exempt):
                return PASS, reply
        cls, name, qtype, end = classify(reply)
        network = self.network(address)
        key = (cls, len(address), network, qtype, name)
        settings = self.settings
        bucket = self.table.pop(key, None)
        if bucket is None:
            if len(self.table) >= TABLE_ENTRIES:
                del self.table[next(iter(self.table))]  # the least recently used
            bucket = [self.capacity, now, 0, 0]
        elif now > bucket[1]:
            elapsed = min(now - bucket[1], settings.window * MILLI)
            bucket[0] = min(self.capacity, bucket[0] + elapsed * settings.rate)
        bucket[1] = now
        self.table[key] = bucket
        if bucket[0] >= MILLI:
            bucket[0] -= MILLI
            return PASS, reply
        bucket[2] += 1
        self._log(bucket, network, cls, name, now)
        if settings.slip and bucket[2] % settings.slip == 0 and len(reply) >= 12:
            self._count("slipped", cls)
            header = bytes([reply[0], reply[1], reply[2] | TC, reply[3], 0, int(end > 12)])
            return SLIP, header + bytes(6) + reply[12:end]
        self._count("dropped", cls)
        return DROP, None

    def _count(self, action: str, cls: int) -> None:
        key = (action, CLASSES[cls])
        self.counts[key] = self.counts.get(key, 0) + 1

    def _log(self, bucket: list[int], network: bytes, cls: int, name: bytes, now: int) -> None:
        second = now // 1000 + 1
        if self.limited is None or (bucket[3] and second - bucket[3] < self.settings.window):
            return
        if self.log_second != second:
            self.log_second, self.log_count = second, 0
        if self.log_count >= LOG_PER_SECOND:
            return
        self.log_count += 1
        bucket[3] = second
        self.limited(network, CLASSES[cls], name)
