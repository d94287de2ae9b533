"""Immutable in-memory zone in compact wire form: the data the resolver walks.

A zone holds one bytes object per owner name: its records back to back as
`type (2) ttl (4) rdlength (2) rdata`, keyed by the owner's lowercase wire name (names
compare case-insensitively, RFC 4343). A million-record zone is then two million small
objects instead of tens of millions of dnspython ones. `node()` turns one owner into
dnspython RRsets when the slow path needs it; the answer cache in front means that
happens once per name, not once per query, and a small memo keeps one query from
decoding the same owner twice.

Built once (by `gslb.load.zonefile` through `ZoneBuilder`) and never mutated, so a snapshot is shared by every query without locks.
"""

from __future__ import annotations

from array import array
from itertools import compress, repeat
from typing import Callable, Iterator, Mapping

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

# The blob format and its readers are in gslb.dns.blob; they are imported here too, where
# most callers look for them (from gslb.dns.zone import RECORD, iter_records, ...).
from gslb.dns.blob import RECORD, SIGS, iter_records, parent_of, record_types, sigs_key
from gslb.dns.denial import Denial

Name = dns.name.Name
Node = Mapping[int, dns.rrset.RRset]
NS = dns.rdatatype.NS
SOA = dns.rdatatype.SOA
DNAME = dns.rdatatype.DNAME
RRSIG = dns.rdatatype.RRSIG
SOA_COVERED = SOA.to_bytes(2, "big")  # the first field of an RRSIG over the SOA
NSEC = dns.rdatatype.NSEC
NSEC3 = dns.rdatatype.NSEC3
IN = dns.rdataclass.IN
MEMO_SIZE = 512  # materialised nodes kept per generation (two generations)
# What most zones of a server of thousands hold, shared rather than one object per zone
# (an empty set is 216 bytes, an empty dict 64): no name set, no NSEC3 chain, no memo
# yet. Never written to: a zone replaces its memo before adding to it (`_memo`).
_NO_NAMES: frozenset[bytes] = frozenset()
_NO_HASHED: dict[bytes, bytes] = {}
_NO_MEMO: dict[bytes, dict[int, dns.rrset.RRset]] = {}


def to_wire(item: Name | dns.rdata.Rdata) -> bytes:
    """`item.to_wire()`: dnspython annotates it `bytes | None` because it returns None
    when told to write into a file, which this never asks for."""
    wire = item.to_wire()
    assert wire is not None
    return wire


def _key(name: Name) -> bytes:
    return to_wire(name).lower()


class Zone:
    """One zone: every owner's records, the names that exist, and the delegation points.

    `ents` are the empty non-terminals between owners and the apex (RFC 4592 section
    2.2.2: they exist), `cuts` the owners below the apex with NS, where a child zone
    starts, and `dnames` the owners with a DNAME (the apex included).

    A pre-signed zone also has `hashed`: every NSEC3 record and the RRSIGs over it, by
    owner. They are kept out of `records` because they are no name's data: an owner
    that holds nothing else is no name of the zone (RFC 5155 section 7.2.8: a query for
    one is answered as for any missing name), and one that also holds data of its own
    (RFC 5155 Appendix A's `2t7b4g4vsa5smi47k61mv5bv1a22bojr.example. A`) keeps only
    that data in `records`, so a question for its NSEC3 type is NODATA (section 7.2.3).
    A transfer sends them and denial proofs quote them (`chain_node`). `denial` indexes
    the NSEC or NSEC3 chain for those proofs; `signed` says the apex carries signatures,
    so DO queries get RRSIGs."""

    __slots__ = ("origin", "origin_wire", "source", "records", "hashed", "ents", "cuts",
                 "dnames", "_soa", "signed", "denial", "_count", "_young", "_old")

    def __init__(self, origin: Name, records: dict[bytes, bytes], source: str = "",
                 count: int | None = None, typed: Mapping[int, set[bytes]] | None = None,
                 hashed: dict[bytes, bytes] | None = None,
                 ents: set[bytes] | None = None) -> None:
        """`typed`, when the builder knows it, gives the owners with NS, DNAME, NSEC and
        NSEC3, which spares a pass over every blob. `hashed` (the NSEC3 records) is
        split out of `records` here when it is not given. `ents`, the empty
        non-terminals, when the loader found them in C (gslb.load: a pass over every
        owner here costs a sixth of a second per million)."""
        self.origin = origin
        self.origin_wire = _same_key(records, _key(origin))
        self.source = source
        self._count = count
        self._young = self._old = _NO_MEMO
        apex = self.origin_wire
        apex_length = len(apex)
        if typed is None:
            typed = _typed(records)
        if hashed is None:
            records, hashed = _split_hashed(records, typed.get(NSEC3, set()))
        self.records = records
        self.hashed = hashed
        cuts = set(typed[NS])
        cuts.discard(apex)
        dnames = set(typed[DNAME])
        if ents is None or hashed:  # the loader's are of every owner, NSEC3 ones too
            ents = set()
            for owner in records:
                # the common case, a child of the apex, has no name in between
                if len(owner) - owner[0] - 1 <= apex_length:
                    continue
                name = parent_of(owner)
                while len(name) > apex_length and name not in records and name not in ents:
                    ents.add(name)
                    name = parent_of(name)
        self.ents, self.cuts, self.dnames = _frozen(ents), _frozen(cuts), _frozen(dnames)
        # The apex is read, not materialised: a server of thousands of zones would pay a
        # dnspython object per apex record of every zone before answering anything.
        apex_records = [(rdtype, rdata) for rdtype, _, rdata in iter_records(records[apex])]
        if not any(rdtype == SOA for rdtype, _ in apex_records):
            raise KeyError(f"{origin}: no SOA at the apex")
        self._soa: dns.rrset.RRset | None = None
        self.signed = any(rdtype == RRSIG and rdata[:2] == SOA_COVERED
                          for rdtype, rdata in apex_records)
        self.denial: Denial | None = None
        if self.signed:  # only signed zones pay for the chain index
            self.denial = Denial.build(records, hashed, apex, typed.get(NSEC, set()))

    def with_records(self, changed: Mapping[bytes, bytes | None]) -> "Zone":
        """A new zone with the given owners' blobs replaced, added or (None) removed; the
        rest shared.

        The incremental path (API changes, steering stand-ins): the records dict is
        copied once (a C-speed copy, no per-record Python work) and the names that
        exist, the cuts and the DNAMEs are updated around the changed owners only, so the
        cost does not grow with the zone in Python. A signed zone is rebuilt whole: its
        denial chain index depends on every owner."""
        if self.signed:
            records = {k: v for k, v in {**self.records, **changed}.items() if v is not None}
            return Zone(self.origin, records, self.source, hashed=self.hashed)
        records = dict(self.records)
        ents, cuts, dnames = set(self.ents), set(self.cuts), set(self.dnames)
        count = self._count
        for key, blob in changed.items():
            if count is not None:
                count += _count(blob or b"") - _count(records.get(key, b""))
            _change_owner(self.origin_wire, records, ents, key, blob)
            types = record_types(blob) if blob else set()
            cuts.discard(key)
            dnames.discard(key)
            if NS in types and key != self.origin_wire:
                cuts.add(key)
            if DNAME in types:
                dnames.add(key)
        return _assembled(self.origin, self.origin_wire, self.source, records, self.hashed,
                          ents, cuts, dnames, False, None, count)

    def __reduce__(self) -> tuple[Callable[..., "Zone"], tuple]:
        """Pickled (a loader's second process hands its zones back): the data without
        the memo of materialised nodes, the empty containers shared again on arrival."""
        return _assembled, (self.origin, self.origin_wire, self.source, self.records,
                            self.hashed, self.ents, self.cuts, self.dnames, self.signed,
                            self.denial, self._count)

    def with_owner(self, key: bytes, blob: bytes | None) -> "Zone":
        """A new zone with one owner's records replaced (`None` removes the owner)."""
        return self.with_records({key: blob})

    # -- wire-keyed lookups (the answer cache's fast path)

    def has(self, name_wire: bytes) -> bool:
        """True for owners and empty non-terminals alike (lowercase wire name)."""
        return name_wire in self.records or name_wire in self.ents

    # -- name-based helpers (the resolver's slow path)

    def exists(self, name: Name) -> bool:
        return self.has(_key(name))

    def is_cut(self, name: Name) -> bool:
        return _key(name) in self.cuts

    def has_dname(self, name: Name) -> bool:
        return _key(name) in self.dnames

    def get(self, name: Name, rdtype: int) -> dns.rrset.RRset | None:
        return self.node(name).get(rdtype)

    def node(self, name: Name) -> dict[int, dns.rrset.RRset]:
        """The owner's RRsets as dnspython objects (empty for a missing name).

        Memoised in two bounded generations, so the RRsets of one query are the same
        objects each time it asks (the resolver compares them by identity)."""
        return self.node_at(_key(name))

    def node_at(self, key: bytes) -> dict[int, dns.rrset.RRset]:
        """`node` by lowercase wire name."""
        return self._memo(key, key, self.records)

    def chain_node(self, key: bytes) -> dict[int, dns.rrset.RRset]:
        """The NSEC3 RRset (and its RRSIGs) owned by `key`, for a denial proof: not the
        data the same owner may hold as a name of the zone (`node_at`)."""
        # Memoised beside the names: a zero octet then a name is no name's wire form.
        return self._memo(b"\x00" + key, key, self.hashed)

    def _memo(self, memo_key: bytes, key: bytes,
              blobs: Mapping[bytes, bytes]) -> dict[int, dns.rrset.RRset]:
        node = self._young.get(memo_key)
        if node is not None:
            return node
        node = self._old.get(memo_key)
        if node is None:
            blob = blobs.get(key)
            if blob is None:
                return {}
            node = _materialise(dns.name.from_wire(key, 0)[0], blob)
        young = self._young
        if young is _NO_MEMO:
            young = self._young = {}
        elif len(young) >= MEMO_SIZE:
            self._old, young = young, {}
            self._young = young
        young[memo_key] = node
        return node

    @property
    def soa(self) -> dns.rrset.RRset:
        """The SOA RRset, materialised alone on first use (not the whole apex)."""
        soa = self._soa
        if soa is None:
            soa = self._soa = _materialise(self.origin, _only(self.records[self.origin_wire],
                                                              SOA))[SOA]
        return soa

    def _soa_wire(self) -> tuple[int, bytes]:
        """The SOA record's TTL and rdata, straight from the apex blob (its five numbers
        end the rdata: serial, refresh, retry, expire, minimum)."""
        for rdtype, ttl, rdata in iter_records(self.records[self.origin_wire]):
            if rdtype == SOA:
                return ttl, rdata
        raise KeyError(f"{self.origin}: no SOA at the apex")

    @property
    def negative_ttl(self) -> int:
        """RFC 2308 section 5: the lesser of the SOA TTL and its MINIMUM field."""
        ttl, rdata = self._soa_wire()
        return min(ttl, int.from_bytes(rdata[-4:], "big"))

    def serial(self) -> int:
        return int.from_bytes(self._soa_wire()[1][-20:-16], "big")

    def record_count(self) -> int:
        if self._count is None:
            blobs = [*self.records.values(), *self.hashed.values()]
            self._count = sum(1 for blob in blobs for _ in iter_records(blob))
        return self._count

    def rrsets(self) -> Iterator[dns.rrset.RRset]:
        """Every RRset for AXFR: the SOA first, then the rest in no particular order.

        Nodes are decoded one at a time and not memoised, so a transfer streams."""
        apex = self.origin_wire
        yield self.soa
        for rdtype, rrset in _materialise(self.origin, self.records[apex]).items():
            if rdtype != SOA:
                yield rrset
        for owners in (self.records, self.hashed):
            for owner, blob in owners.items():
                if owner != apex:
                    yield from _materialise(dns.name.from_wire(owner, 0)[0], blob).values()


def _typed(records: Mapping[bytes, bytes]) -> dict[int, set[bytes]]:
    """The owners with each of the types a zone indexes (see `ZoneBuilder.typed`)."""
    typed: dict[int, set[bytes]] = {rdtype: set() for rdtype in INDEXED}
    for owner, blob in records.items():
        for rdtype in record_types(blob) & INDEXED:
            typed[rdtype].add(owner)
    return typed


def _split_hashed(records: dict[bytes, bytes],
                  nsec3_owners: set[bytes]) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    """(records, hashed): every NSEC3 record and the RRSIGs over NSEC3 move to `hashed`;
    an owner left with nothing leaves `records`, one with data of its own keeps it."""
    hashed: dict[bytes, bytes] = {}
    rest: dict[bytes, bytes] = {}
    for owner in nsec3_owners:
        blob = records.get(owner)
        if blob is None:
            continue
        chain = own = b""
        for rdtype, ttl, rdata in iter_records(blob):
            record = RECORD.pack(rdtype, ttl, len(rdata)) + rdata
            if rdtype == NSEC3 or (rdtype == RRSIG and rdata[:2] == b"\x00\x32"):
                chain += record
            else:
                own += record
        if chain:
            hashed[owner] = chain
            rest[owner] = own
    if not hashed:
        return records, _NO_HASHED
    return {owner: rest.get(owner, blob) for owner, blob in records.items()
            if owner not in rest or rest[owner]}, hashed


def _same_key(records: Mapping[bytes, bytes], key: bytes) -> bytes:
    """`key`, or the equal key object `records` holds when it comes first (the SOA
    leads most zone files): a server of thousands of zones keeps one apex name per zone,
    not two."""
    first = next(iter(records), None)
    return first if first == key and first is not None else key


def _frozen(names: set[bytes] | frozenset[bytes]) -> frozenset[bytes]:
    return frozenset(names) if names else _NO_NAMES


def _count(blob: bytes) -> int:
    return sum(1 for _ in iter_records(blob))


def _change_owner(apex: bytes, records: dict[bytes, bytes], ents: set[bytes], key: bytes,
                  blob: bytes | None) -> None:
    """Set (or remove) one owner, keeping the empty non-terminals between it and the apex
    right (RFC 4592 2.2.2: they exist while some name below them does). An empty blob
    is a name that exists with no data (a steering stand-in with nothing to transfer)."""
    if blob is not None:
        records[key] = blob
        ents.discard(key)
        name = parent_of(key) if key != apex else apex
        while len(name) > len(apex) and name not in records and name not in ents:
            ents.add(name)
            name = parent_of(name)
        return
    records.pop(key, None)
    if key != apex and _has_descendant(records, key):
        ents.add(key)
    name = parent_of(key) if key != apex else apex
    while len(name) > len(apex) and name in ents and not _has_descendant(records, name):
        ents.discard(name)
        name = parent_of(name)


def _has_descendant(records: Mapping[bytes, bytes], name: bytes) -> bool:
    """Is some owner strictly below `name` (lowercase wire names)? The owners ending in
    its bytes are picked out in C (`compress` over `bytes.endswith`); only those are
    checked for a label boundary in Python."""
    size = len(name)
    for owner in compress(records, map(bytes.endswith, records, repeat(name))):
        if len(owner) > size:
            offset = 0
            while len(owner) - offset > size:
                offset += owner[offset] + 1
            if offset == len(owner) - size:
                return True
    return False


def _only(blob: bytes, rdtype: int) -> bytes:
    """The records of one type from an owner's blob, as a blob."""
    return b"".join(RECORD.pack(t, ttl, len(rdata)) + rdata
                    for t, ttl, rdata in iter_records(blob) if t == rdtype)


def _materialise(owner: Name, blob: bytes) -> dict[int, dns.rrset.RRset]:
    """dnspython RRsets of one owner; an RRset's TTL is its lowest record TTL.

    RRSIGs go into one RRset per covered type, under `sigs_key(covered)`."""
    node: dict[int, dns.rrset.RRset] = {}
    from_wire = dns.rdata.from_wire
    for rdtype, ttl, rdata in iter_records(blob):
        key = rdtype
        if rdtype == RRSIG and len(rdata) >= 2:
            key = sigs_key(int.from_bytes(rdata[:2], "big"))
        rrset = node.get(key)
        if rrset is None:
            rdtype_enum = dns.rdatatype.RdataType(rdtype)
            covers = dns.rdatatype.RdataType(key & 0xFFFF) if key != rdtype else dns.rdatatype.NONE
            rrset = node[key] = dns.rrset.RRset(owner, IN, rdtype_enum, covers)
        try:
            rd = from_wire(IN, rrset.rdtype, rdata, 0, len(rdata))
        except dns.exception.FormError:
            # rdata the loader takes and dnspython's reader refuses (a ZONEMD digest of a
            # private-use scheme, RFC 8976 appendix A.3): served as the bytes it is
            rd = dns.rdata.GenericRdata(IN, rrset.rdtype, rdata)
        rrset.add(rd, ttl)
    return node


def _assembled(origin: Name, origin_wire: bytes, source: str, records: dict[bytes, bytes],
               hashed: dict[bytes, bytes], ents: set[bytes] | frozenset[bytes],
               cuts: set[bytes] | frozenset[bytes], dnames: set[bytes] | frozenset[bytes],
               signed: bool, denial: Denial | None, count: int | None) -> Zone:
    """A zone of parts already worked out (`with_records`, an unpickled zone), without
    Zone's passes over the owners; no node materialised yet, the empty containers the
    shared ones."""
    zone = Zone.__new__(Zone)
    zone.origin, zone.origin_wire, zone.source = origin, origin_wire, source
    zone.records, zone.hashed = records, hashed or _NO_HASHED
    zone.ents, zone.cuts, zone.dnames = _frozen(ents), _frozen(cuts), _frozen(dnames)
    zone.signed, zone.denial, zone._count = signed, denial, count
    zone._young = zone._old = _NO_MEMO
    zone._soa = None
    return zone


class ZoneBuilder:
    """Collects records, as the zone-file parser emits them, into a `Zone`'s storage.

    Records of one owner keep their order; an exact duplicate (same type and rdata) is
    one record (RFC 2181 section 5) and keeps the lower TTL. `first_lines[i]` is the
    line given with the first record of the i-th owner (owners in insertion order), so
    a loader can point at an owner without keeping a line per record."""

    __slots__ = ("records", "count", "first_lines", "typed")

    def __init__(self) -> None:
        self.records: dict[bytes, bytes] = {}
        self.count = 0
        self.first_lines = array("I")
        self.typed: dict[int, set[bytes]] = {rdtype: set() for rdtype in INDEXED}

    def add(self, owner_wire: bytes, rdtype: int, ttl: int, rdata: bytes, line: int = 0) -> bool:
        """Add one record; True when it is the owner's first."""
        key = owner_wire.lower()
        record = RECORD.pack(rdtype, ttl, len(rdata)) + rdata
        records = self.records
        blob = records.get(key)
        if rdtype in self.typed:
            self.typed[rdtype].add(key)
        if blob is None:
            records[key] = record
            self.count += 1
            self.first_lines.append(line)
            return True
        merged = _merge(blob, record)
        if merged is not blob:
            records[key] = merged
            self.count += len(merged) > len(blob)
        return False

    def build(self, origin: Name, source: str = "", ents: set[bytes] | None = None) -> Zone:
        """The zone; `ents` as Zone takes them."""
        return Zone(origin, self.records, source, self.count, self.typed, ents=ents)


# The types whose owners the builder notes as it goes: cuts, DNAMEs, the denial chains.
INDEXED = frozenset({NS, DNAME, NSEC, NSEC3})


def _merge(blob: bytes, record: bytes) -> bytes:
    """`blob` with `record` appended, unless it is a duplicate (then the lower TTL wins)."""
    rdtype_part, data_part = record[:2], record[6:]
    offset = 0
    end = len(blob)
    if blob.find(data_part) >= 0:
        while offset < end:
            length = RECORD.unpack_from(blob, offset)[2]
            stop = offset + RECORD.size + length
            if blob[offset : offset + 2] == rdtype_part and blob[offset + 6 : stop] == data_part:
                old_ttl = RECORD.unpack_from(blob, offset)[1]
                new_ttl = RECORD.unpack_from(record, 0)[1]
                if new_ttl >= old_ttl:
                    return blob
                return blob[:offset] + record + blob[stop:]
            offset = stop
    return blob + record
