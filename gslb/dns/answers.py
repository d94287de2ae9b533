"""The answer cache: rendered responses reused with the ID, flags and question patched.

Every response is rendered once by the full path (`resolve` + `render`) and then served
from here. Two kinds of entry:

- exact: the query name exists (or is a zone cut asked for DS). The response for another
  query with the same name in any case differs only in the ID, the RD/CD bits and the
  question's case, because compression pointers go to the question case-insensitively.
- anchored: the query name does not exist or lies below a zone cut. The response is then
  the same for every name under the same *anchor* (closest encloser, or the cut), except
  that pointers into the question move with its length. `render` registers only the
  whole query name and the anchor's suffixes for compression, so the body never points
  into the varying labels, and records its pointer positions so they can be moved.
  A random-subdomain flood therefore hits one entry per anchor and never grows the cache.

An answer whose bytes name the query name itself is anchored at the query name: then it
is only ever an exact entry (DNAME rewrites). With DO, a signed zone's denial or wildcard
proof also depends on where the name falls in the NSEC or NSEC3 chain: such an anchored
entry's key carries that gap (`Denial.gap`, the covering record's owner), so names in
one gap share it. The native table computes the same gap (native/denial.c).

Keys include the reply *variant* (size limit, EDNS, DO, NSID, ECS shape): the DO bit is
`variant[2]`, so an answer with RRSIGs and proofs never serves a query without DO, nor
the other way round. An ECS address
sits at the very end of the message and is patched too, and so is a DNS cookie (the
COOKIE option comes just before the ECS option: its value lies at a fixed distance
from the end, `Entry.cookie_at`). The cache is bounded by two
generations of dicts: a full young generation becomes the old one, a cheap LRU.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol

from gslb.dns.tally import UNLABELLED, Label
from gslb.dns.zone import Zone

HEADER_SIZE = 12
RD_CD = 0x0110
MAX_POINTER = 0x3FFF
DS = 43
ROOT = b"\x00"

# (limit, payload, DO, NSID, ECS family, ECS source, cookie), then a steering bucket
Variant = tuple[int, int, bool, bytes | None, int, int, bool]
COOKIE_REPLY = 24  # the reply's COOKIE option value: client cookie, server cookie


def label_offsets(name_wire: bytes) -> Iterator[int]:
    """Start of every suffix of an uncompressed wire name, longest first (root excluded)."""
    offset = 0
    while name_wire[offset]:
        yield offset
        offset += name_wire[offset] + 1


class WireIndex:
    """The served zones keyed by lowercase wire origin, for the cache's anchor walk.

    It mirrors `resolver.Zones.for_question` and the walk of `resolver._lookup`; tests
    compare the anchors of both over the conformance corpus."""

    def __init__(self, zones: Iterable[Zone]) -> None:
        self.zones: dict[bytes, Zone] = {zone.origin_wire: zone for zone in zones}

    def gap(self, qname: bytes, anchor: bytes) -> bytes | bool:
        """With DO, what besides the anchor a missing name's answer depends on: the
        signed zone's `Denial.gap`; False (the plain anchored key) in an unsigned zone
        and below a cut (a referral's DS proof is the cut's own)."""
        zone = self._find(anchor)
        if zone is None or zone.denial is None or not zone.signed or anchor in zone.cuts:
            return False
        return zone.denial.gap(qname, anchor) or False

    def _find(self, qname: bytes) -> Zone | None:
        for offset in label_offsets(qname):
            zone = self.zones.get(qname[offset:])
            if zone is not None:
                return zone
        return self.zones.get(ROOT)

    def anchor(self, qname: bytes, qtype: int) -> bytes:
        """The name the answer depends on: the query name itself, its closest encloser,
        the zone cut above it, or the root when no served zone holds it (REFUSED).

        This runs for every query that misses the exact cache (a random-subdomain flood
        is nothing but such queries), so it walks label offsets by hand."""
        offsets = []
        offset = 0
        while qname[offset]:
            offsets.append(offset)
            offset += qname[offset] + 1
        zones = self.zones
        below = 0  # how many of the name's suffixes lie below the zone apex
        for below, offset in enumerate(offsets):
            zone = zones.get(qname[offset:])
            if zone is not None:
                break
        else:
            below = len(offsets)
            zone = zones.get(ROOT)
            if zone is None:
                return ROOT
        if qtype == DS and below == 0 and qname != ROOT:
            parent = self._find(qname[qname[0] + 1 :])
            if parent is not None:  # DS at a child apex is the parent's (RFC 4035 3.1.4.1)
                zone = parent
                below = len(offsets) - sum(1 for _ in label_offsets(parent.origin_wire))
        apex = zone.origin_wire
        dnames = zone.dnames
        if below and apex in dnames:
            return qname  # the answer spells the query's own labels: never shared
        cuts = zone.cuts
        has = zone.has
        previous = apex
        for index in range(below - 1, -1, -1):
            name = qname[offsets[index] :]
            if name in cuts and not (index == 0 and qtype == DS):
                return name
            if not has(name):
                return previous
            if index and name in dnames:
                return qname
            previous = name
        return qname


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes  # everything after the question
    flags: int
    pointers: tuple[tuple[int, int], ...]  # (position in body, target) of movable pointers
    anchor_offset: int  # where the anchor starts in the question of the rendered query
    ecs_length: int  # trailing ECS address bytes to replace per query
    label: Label = UNLABELLED  # what this answer is counted under (gslb.dns.tally)
    cookie_at: int = 0  # where the COOKIE value starts, counted back from the end; 0: none


class NativeStore(Protocol):
    """Where entries go instead of this cache's dicts when a native table serves them
    (gslb.server.fastpath.TableStore): `store` returns False for an entry it does not
    take (a TCP or steered variant), which then stays here."""

    def store(self, key: tuple, entry: Entry) -> bool: ...


class AnswerCache:
    def __init__(self, index: WireIndex, capacity: int = 50_000) -> None:
        self.index = index
        self.capacity = capacity
        self.young: dict[tuple, Entry] = {}
        self.old: dict[tuple, Entry] = {}
        self.hits = 0
        self.misses = 0
        self.native: NativeStore | None = None

    def __len__(self) -> int:
        return len(self.young) + len(self.old)

    def _get(self, key: tuple) -> Entry | None:
        entry = self.young.get(key)
        if entry is None:
            entry = self.old.get(key)
            if entry is not None:
                self._put(key, entry)
        return entry

    def _put(self, key: tuple, entry: Entry) -> None:
        if len(self.young) >= self.capacity:
            self.old = self.young
            self.young = {}
        self.young[key] = entry

    def lookup(
        self, data: bytes, question_end: int, qtype: int, variant: Variant, ecs_address: bytes,
        cookie: bytes = b"",
    ) -> tuple[bytes, Label] | None:
        """The cached response for this query, patched (its ECS address, its `cookie`
        value), with the entry's label; None on a miss."""
        qname = data[HEADER_SIZE : question_end - 4].lower()
        entry = self._get((qname, qtype, variant))
        if entry is None:
            anchor = self.index.anchor(qname, qtype)
            entry = (None if anchor == qname
                     else self._get(self._anchored_key(qname, anchor, qtype, variant)))
            if entry is None:
                self.misses += 1
                return None
            body = _relocate(entry, question_end - len(anchor) - 4)
            if question_end + len(body) - 6 > variant[0]:
                self.misses += 1
                return None  # a longer name no longer fits: the full path decides what does
        else:
            body = entry.body
        flags = entry.flags | (struct.unpack_from("!H", data, 2)[0] & RD_CD)
        head = data[:2] + struct.pack("!H", flags) + data[4:6] + body[:6]
        # body[:6] carries ANCOUNT, NSCOUNT, ARCOUNT; see `store`.
        message = head + data[HEADER_SIZE:question_end] + body[6:]
        if entry.ecs_length:
            message = message[: -entry.ecs_length] + ecs_address
        if entry.cookie_at:
            at = len(message) - entry.cookie_at
            message = message[:at] + cookie + message[at + COOKIE_REPLY:]
        self.hits += 1
        return message, entry.label

    def store(
        self,
        data: bytes,
        question_end: int,
        qtype: int,
        variant: Variant,
        anchor: bytes,
        wire: bytes,
        pointers: Iterable[tuple[int, int]] | None,
        ecs_length: int,
        label: Label = UNLABELLED,
    ) -> None:
        """Remember a response the full path rendered for this query, with the label the
        metrics count its hits under.

        `pointers` is None when the response lost records to the size limit: a longer or
        shorter name would change what fits, so it is kept for this exact name only."""
        qname = data[HEADER_SIZE : question_end - 4].lower()
        if anchor != qname and self.index.anchor(qname, qtype) != anchor:
            return  # the full path and the walk disagree: never serve a guess
        flags = struct.unpack_from("!H", wire, 2)[0] & ~RD_CD
        counts_and_body = wire[6:HEADER_SIZE] + wire[question_end:]
        cookie_at = 0
        if variant[6]:  # the COOKIE option, then the ECS option (8 bytes and the address)
            cookie_at = COOKIE_REPLY + (8 + ecs_length if variant[4] else 0)
        if anchor == qname or pointers is None:
            self._keep((qname, qtype, variant), Entry(counts_and_body, flags, (), 0, ecs_length,
                                                           label, cookie_at))
            return
        anchor_offset = question_end - 4 - len(anchor)
        movable = []
        for position, target in pointers:
            if target < anchor_offset:
                return  # points into labels this name does not share: never reuse it
            movable.append((position - question_end + 6, target))
        if len(wire) > MAX_POINTER // 2:
            return
        entry = Entry(counts_and_body, flags, tuple(movable), anchor_offset, ecs_length, label,
                      cookie_at)
        self._keep(self._anchored_key(qname, anchor, qtype, variant), entry)

    def _anchored_key(self, qname: bytes, anchor: bytes, qtype: int, variant: Variant) -> tuple:
        """The key an anchored entry is stored and found under: with DO (`variant[2]`),
        a signed zone's gap as well (see `WireIndex.gap`), else False."""
        gap = self.index.gap(qname, anchor) if variant[2] else False
        return (anchor, qtype, variant, gap)

    def _keep(self, key: tuple, entry: Entry) -> None:
        """A new entry: into the native table when one serves this variant, else here."""
        if self.native is None or not self.native.store(key, entry):
            self._put(key, entry)


def _relocate(entry: Entry, anchor_offset: int) -> bytes:
    """The body with every pointer at or past the anchor moved by the length change."""
    delta = anchor_offset - entry.anchor_offset
    if not delta:
        return entry.body
    body = bytearray(entry.body)
    for position, target in entry.pointers:
        struct.pack_into("!H", body, position, 0xC000 | (target + delta))
    return bytes(body)
