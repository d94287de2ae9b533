"""The native fast path's Python side: load the C extension, fill its answer table.

`gslb.server._fastpath` (gslb/server/native/*.c, built by `pip install .`) holds a
table of rendered responses and a recvmmsg/sendmmsg socket loop that answers from it
without entering Python; on a miss it builds the common answers from the zone data
itself (native/render.c reads each zone's `records` dict in place) and hands only the
rest to Python. This module decides whether it is there (`available`, logged once when
it is not), builds a snapshot's table (the served zones, their names for the
per-anchor walk, their data, a signed zone's chain for the DO gap) and turns the answer
cache's entries into table entries: the answer cache hands every UDP entry it stores to
a `TableStore` instead of its own dicts.

The key format is a contract with `write_key` in native/answer.c: the lowercase wire
name, then `KEY_TAIL` (qtype, the size limit, the server's payload or 0, DO, NSID,
ECS family, ECS source or -1, cookie, anchored, and what follows: 0 nothing, 2 a signed zone's
chain gap, the owner of the covering NSEC or NSEC3 (`Denial.gap`, which
native/denial.c computes the same way), 1 a steering bucket). A steered key goes on with the
steering bucket (`STEER_BUCKET`, as `steer_bucket` in native/steer.c writes it): 0 for
a steered owner asked for a type nothing steers, else 1, the record's state version,
the matching rule (-1: none), the client's family, the ECS scope the rule holds on (the
matching block's length, capped at /24 or /56), the client network's `hash` slot
(65535: no `hash` policy) and the weighted draw's slot (255: not weighted); then, for a
record with `closest` or `latency`, its location classes (`LOCATION_BUCKET`: the
closest class and its scope, the latency network-key and region classes and their
scope; -1 and 255 for a policy not in the chain). A bucket C cannot compute (a client
only Python can place) stays with Python.
"""

from __future__ import annotations

import logging
import struct
from array import array
from functools import lru_cache
from types import ModuleType
from typing import Any, Iterable

import dns.name

from gslb.dns.answers import Entry
from gslb.dns.edns import OPTION_PROBE
from gslb.dns.handler import TCP_LIMIT, Options
from gslb.dns.message import name_wire
from gslb.dns.tally import Label
from gslb.server import probe
from gslb.steering.front import LOCATION_POLICIES, Steering

log = logging.getLogger("gslb.fastpath")

KEY_TAIL = struct.Struct("!HHHBBBhBBB")
STEER_BUCKET = struct.Struct("!BIiBBHB")  # native.h STEER_BUCKET: 14 bytes
LOCATION_BUCKET = struct.Struct("!iBiiB")  # native.h LOCATION_BUCKET: 14 bytes
NAME_EXISTS, NAME_CUT, NAME_DNAME = 1, 2, 4
PLAIN_VARIANT = 7  # (limit, payload, do, nsid, ecs family, ecs source, cookie): not steered
CNAME = 5

_module: ModuleType | None = None
_labels: list[Label | None] = [None]  # label id -> label; 0 is "not counted"
_label_ids: dict[Label, int] = {}
_failure: str | None = None
_probed = False


def native() -> ModuleType | None:
    """The extension module, or None (the reason logged once) when it cannot load."""
    global _module, _failure, _probed
    if not _probed:
        _probed = True
        try:
            from gslb.server import _fastpath  # type: ignore[attr-defined]
            _fastpath.set_probe(OPTION_PROBE, probe.KEY)  # /ready's queries count nowhere
            _module = _fastpath
        except ImportError as exc:
            _failure = str(exc)
            log.warning("native fast path unavailable (%s); UDP runs in the Python loop",
                        exc)
    return _module


def available() -> bool:
    return native() is not None


def map_large_blocks() -> None:
    """Before a first load: large blocks in mappings of their own (loop.c says why);
    nothing without the extension."""
    module = native()
    if module is not None:
        module.map_large_blocks()


class TableStore:
    """The answer cache's `native` store: UDP entries go to the C table, with the
    steering bucket for steered names; TCP entries, and steered ones whose bucket C
    cannot compute, stay in the cache's dicts."""

    __slots__ = ("table", "records", "steering")

    def __init__(self, table: Any, records: dict[tuple[str, str], int],
                 steering: Any) -> None:
        self.table = table
        self.records = records  # steered record key -> its index in the table
        self.steering = steering  # whose record versions the table holds

    def store(self, key: tuple, entry: Entry) -> bool:
        variant = key[2]
        if variant[0] == TCP_LIMIT:
            return False
        tail = key_tail(key[1], variant[:PLAIN_VARIANT], len(key) == 4)
        if len(key) == 4 and key[3] is not False:  # a signed zone's proof, by its chain gap
            tail = tail[:-1] + b"\x02" + key[3]
        elif len(variant) > PLAIN_VARIANT:
            bucket = steer_bucket(variant[PLAIN_VARIANT:])
            if bucket is None:
                return False
            tail = tail[:-1] + b"\x01" + bucket
        self.table.put(key[0] + tail, entry.flags, entry.body, entry.pointers,
                       entry.anchor_offset, entry.ecs_length, label_id(entry.label),
                       entry.cookie_at)
        return True

    def follow(self, steering: Any) -> None:
        """A live state change, or a replaced GeoIP database, kept the zones and this
        cache but brought a new Steering (new per-record versions, new rule maps, new
        location classes): give the table all of them. The versions go first: a batch
        answered between two of these calls keys a record whose classes change by a
        version nothing is stored under yet (Python stores under the steering still
        served until this returns), so it misses instead of finding an answer for the
        old classes; a rule map holds the same answers under any database."""
        if steering is self.steering or steering is None or not self.records:
            return
        versions = array("I", bytes(4 * len(self.records)))
        for key, index in self.records.items():
            versions[index] = steering.versions[key] & 0xFFFFFFFF
        self.table.set_versions(versions)
        old = self.steering
        if old is not None:
            for key, index in self.records.items():
                rule_map = steering.rule_maps[key]
                if rule_map is not old.rule_maps[key]:
                    self.table.set_blocks(index, *_blocks(rule_map, 4), *_blocks(rule_map, 6))
            if steering.locations is not None and steering.locations is not old.locations:
                set_locations(self.table, steering)
                for key, index in self.records.items():
                    closest = steering.closest.get(key)
                    if closest is not None and closest.obj is not old.closest[key].obj:
                        self.table.set_closest(index, closest.obj)
        if steering.latency is not None and (old is None or steering.latency is not old.latency):
            set_latency(self.table, steering)
        self.steering = steering


def label_id(label: Label | None) -> int:
    """The number the C table counts a label's hits under (0: not counted)."""
    if label is None:
        return 0
    number = _label_ids.get(label)
    if number is None:
        number = _label_ids[label] = len(_labels)
        _labels.append(label)
    return number


def set_cookies(secrets: Iterable[bytes], now: int = 0) -> None:
    """The process's DNS cookie secrets for the C path (the same as the responder's
    `Cookies`; the first signs); `now` fixes its clock (tests), 0 follows the real one."""
    module = native()
    if module is not None:
        module.set_cookies(list(secrets), now)


def add_native_counts(queries: dict[tuple, int], udp_latency: list[int]) -> None:
    """Add the answers given in C to a metrics report's query counts (as cache hits of
    their labels) and to its UDP latency histogram; nothing when C answered none."""
    if _module is None:
        return
    hits, latency, built = _module.native_counts()  # None: a buffer not allocated yet
    hits, latency = hits or b"", latency or b""
    for number, count in enumerate(array("Q", hits)[: len(_labels)]):
        label = _labels[number]
        if count and label is not None:
            key = (label.key, True)
            queries[key] = queries.get(key, 0) + count
    for origin, qtype, rcode, count, hit in built:
        # built from the zone data (a miss), or served from an entry built so (a hit)
        key = ((_zone_text(origin), qtype, rcode, False, ()), hit)
        queries[key] = queries.get(key, 0) + count
    for slot, count in enumerate(array("Q", latency)):
        udp_latency[slot] += count


@lru_cache(maxsize=65536)
def _zone_text(origin_wire: bytes) -> str:
    """A zone's name as the labels count it (`Zone.origin.to_text()`)."""
    return dns.name.from_wire(origin_wire, 0)[0].to_text()


def key_tail(qtype: int, variant: tuple, anchored: bool) -> bytes:
    limit, payload, do, nsid, family, source, cookie = variant
    return KEY_TAIL.pack(qtype, limit, payload, do, nsid is not None, family, source,
                         cookie, anchored, 0)


def steer_bucket(bucket: tuple) -> bytes | None:
    """`Steering.bucket` as the C code writes it; None for a bucket it cannot compute."""
    if bucket == ("static",):
        return b"\x00"
    version, rule, family, scope, hashed, location = bucket[:6]
    if type(location) is str:  # where only Python places the client
        return None
    slot = bucket[6] if len(bucket) == 7 else 0xFF
    head = STEER_BUCKET.pack(1, version & 0xFFFFFFFF, -1 if rule is None else rule,
                             family, scope, hashed, slot)
    return head if location is None else head + LOCATION_BUCKET.pack(*location)


def add_steering(table: Any, steering: Any) -> dict[tuple[str, str], int]:
    """The steered records (rule maps, versions) and owners into the table; the index
    of each record."""
    records: dict[tuple[str, str], int] = {}
    if steering is None:
        return records
    if steering.locations is not None:
        set_locations(table, steering)
    for key in steering.records:
        policies = steering.policy_names(key)
        rule_map = steering.rule_maps[key]
        located = bool(policies & LOCATION_POLICIES)
        closest = steering.closest.get(key)  # a view of bytes shared by records alike
        records[key] = table.add_record(steering.located or not located, steering.draws(key),
                                        "hash" in policies,
                                        *_blocks(rule_map, 4), *_blocks(rule_map, 6),
                                        located, None if closest is None else closest.obj,
                                        "latency" in policies)
    for owner, types in steering.by_owner.items():
        table.add_owner(owner, tuple((int(qtype), records[key]) for qtype, key in types.items()),
                        records[types[CNAME]] if CNAME in types else -1)
    TableStore(table, records, None).follow(steering)
    return records


def set_locations(table: Any, steering: Steering) -> None:
    """The location map's runs (`LocationMap`) into the native table."""
    locations = steering.locations
    assert locations is not None
    table.set_locations(*locations.arrays(4), *locations.arrays(6))


def set_latency(table: Any, steering: Steering) -> None:
    """The RTT table's classes (`LatencyClasses`) into the native table."""
    latency = steering.latency
    assert latency is not None
    nets = [part for version in (4, 6)
            for part in (*latency.nets[version], bytes(len(latency.nets[version][1]) // 4))]
    table.set_latency(latency.network_keys, latency.regions, *nets)


def _blocks(rule_map: Any, version: int) -> tuple[bytes, bytes, bytes]:
    """One family's blocks as the C code reads them (and the rule map keeps them):
    big-endian starts, prefixes, and native 32-bit rule indexes."""
    starts, prefixes, results = rule_map.arrays(version)
    return starts, prefixes, results


def build_table(zones: Iterable[Any], options: Options, capacity: int) -> Any:
    """A fresh table for these zones: their origins and names, no answers yet."""
    module = native()
    assert module is not None
    table = module.Table(capacity, options.max_udp_payload, options.nsid is not None,
                         cookies=options.cookies is not None)
    zones = list(zones)
    table.reserve_names(sum(len(zone.records) + len(zone.ents) for zone in zones))
    for zone in zones:
        index = table.add_zone(zone.origin_wire)
        table.zone_data(index, zone.records, zone.ents, name_wire(zone.origin), zone.signed)
        if zone.signed and zone.denial is not None:
            add_denial(table, index, zone.denial)
        add_names(table, index, zone)
    table.seal_names()
    return table


def add_names(table: Any, index: int, zone: Any) -> None:
    """A zone's names into the table's name set, each once with all its flags: C takes
    two adds meeting in one slot for a collision of two names (and then trusts neither)."""
    special: dict[bytes, int] = {}
    for name in zone.cuts:
        special[name] = special.get(name, NAME_EXISTS) | NAME_CUT
    for name in zone.dnames:
        special[name] = special.get(name, NAME_EXISTS) | NAME_DNAME
    table.add_names(index, zone.records, NAME_EXISTS, special)  # walked in C, blobs and all
    table.add_names(index, zone.ents, NAME_EXISTS, zone.records)
    for flags in set(special.values()):
        table.add_names(index, [name for name, has in special.items() if has == flags], flags)


def add_denial(table: Any, index: int, denial: Any) -> None:
    """A signed zone's chain, for the gap C computes as `Denial.gap` does; a chain C
    cannot take (hashes not 20 bytes long, iterations past its limit) stays Python's."""
    if denial.nsec3:
        if any(len(digest) != 20 for digest in denial.hashes) or denial.iterations > 500:
            return
        owners = [denial.hash_owner[digest] for digest in denial.hashes]
        table.denial(index, True, owners, b"".join(denial.hashes), denial.salt,
                     denial.iterations)
    else:
        table.denial(index, False, list(denial.nsec_owners), b"", b"", 0)


def attach(snapshot: Any, options: Options) -> Any:
    """Give a snapshot's answer cache a native table (before anything is rendered into
    it, so every UDP entry lands there); the table, for the socket loops."""
    answers = snapshot.answers
    table = build_table(snapshot.zones, options, answers.capacity)
    records = add_steering(table, snapshot.steering)
    answers.native = TableStore(table, records, snapshot.steering)
    return table
