"""Geo classification, pure: address -> Location, and address -> first matching rule.

Two tables, both built once (when the configuration or a database loads), never per query:

`GeoTable` holds what the MaxMind databases say, as sorted disjoint integer ranges per
address family; `lookup(address)` is a bisect. `GeoTable.combine` overlays several tables
(a City or Country database with an ASN database) into one whose entries carry the fields
of both, each entry being the intersection of the networks it came from.

`RuleMap` holds, for one steered record's rules, the answer to "which rule does this
address match, and on which network does that answer hold?". Its blocks cover the whole
address space: every maximal run of addresses leading to the same rule (neighbouring
database networks, rule subnets and the gaps between them, merged as gdnsd does) is cut
into the fewest aligned CIDR blocks, so the block containing an address is the widest
aligned prefix on which the rule result cannot change: the ECS scope.

Geo codes follow octoDNS: a continent (`EU`), a country (`EU-FR`, or `FR` alone), a
subdivision (`NA-US-CA`). A lone two-letter code that is a continent code is the
continent (`NA` is North America, `AS` is Asia; write `AF-NA` for Namibia, `OC-AS` for
American Samoa). Every part of a code must match the location, as in the engine's
`geo_matches`: `EU-FR` needs continent EU and country FR (MaxMind puts Russia in `EU`, so
`AS-RU` matches nothing), a bare `FR` needs the country only.

The building work is linear in the number of networks once they are sorted (input coming
from a database is already in order, which Python's sort detects), plus the cost of the
output blocks.
"""

from __future__ import annotations

import bisect
import heapq
import ipaddress
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, TypeVar

from .model import IPNetwork, Location, Rule

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CONTINENTS = frozenset({"AF", "AN", "AS", "EU", "NA", "OC", "SA"})
BITS = {4: 32, 6: 128}
UNKNOWN = Location()
_NO_RULE = -1


# --- geo codes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GeoCode:
    """A parsed geo code: continent, continent and country, country alone (`FR`), or
    continent, country and subdivision. Unknown location fields never match."""

    continent: str | None
    country: str | None = None
    subdivision: str | None = None

    def matches(self, location: Location) -> bool:
        if self.continent is not None and location.continent != self.continent:
            return False
        if self.country is not None and location.country != self.country:
            return False
        return self.subdivision is None or location.subdivision == self.subdivision


def parse_geo(code: str) -> GeoCode:
    """`EU`, `FR`, `EU-FR` or `NA-US-CA` (any case) -> GeoCode; ValueError when malformed."""
    parts = code.strip().upper().split("-")
    if len(parts) == 1 and parts[0] in CONTINENTS:
        return GeoCode(parts[0])
    if len(parts) == 1 and _is_country(parts[0]):
        return GeoCode(None, parts[0])
    if len(parts) in (2, 3) and parts[0] in CONTINENTS and _is_country(parts[1]):
        if len(parts) == 2:
            return GeoCode(parts[0], parts[1])
        if 1 <= len(parts[2]) <= 3 and parts[2].isascii() and parts[2].isalnum():
            return GeoCode(parts[0], parts[1], parts[2])
    raise ValueError(
        f"bad geo code {code!r}: expected a continent (EU), a country (FR or EU-FR) "
        "or a subdivision (NA-US-CA)"
    )


def _is_country(part: str) -> bool:
    return len(part) == 2 and part.isascii() and part.isalpha()


def geo_matches(code: str | GeoCode, location: Location) -> bool:
    """Whether the location is in the area the geo code names (unknown fields never match)."""
    return (parse_geo(code) if isinstance(code, str) else code).matches(location)


def _address(address: IPAddress | IPNetwork | str) -> IPAddress:
    if isinstance(address, str):
        return ipaddress.ip_address(address)
    if isinstance(address, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return address.network_address
    return address


@dataclass(frozen=True)
class _CompiledRule:
    subnets: tuple[IPNetwork, ...]
    geos: tuple[GeoCode, ...]
    asns: frozenset[int]
    catch_all: bool

    @classmethod
    def of(cls, rule: Rule) -> _CompiledRule:
        return cls(rule.subnets, tuple(parse_geo(g) for g in rule.geos), frozenset(rule.asns),
                   rule.catch_all)

    def matches_location(self, location: Location) -> bool:
        """The part of the rule that depends on the location (catch-all included)."""
        if self.catch_all:
            return True
        if location.asn is not None and location.asn in self.asns:
            return True
        return any(geo.matches(location) for geo in self.geos)

    def matches_address(self, address: IPAddress) -> bool:
        return any(net.version == address.version and address in net for net in self.subnets)


def first_rule(rules: Sequence[Rule], address: IPAddress | IPNetwork | str,
               location: Location = UNKNOWN) -> int | None:
    """Index of the first rule the client matches (any of its conditions), or None.

    The reference semantics, per query; `RuleMap` gives the same answer from a table."""
    address = _address(address)
    for index, rule in enumerate(rules):
        compiled = _CompiledRule.of(rule)
        if compiled.matches_address(address) or compiled.matches_location(location):
            return index
    return None


# --- ranges -------------------------------------------------------------------------------


def _cidrs(start: int, end: int, bits: int) -> Iterator[tuple[int, int]]:
    """The fewest aligned blocks covering [start, end], as (start, prefix length); each is
    the widest aligned block inside the range containing its addresses."""
    while start <= end:
        size = 1 << ((end - start + 1).bit_length() - 1)
        if start:
            size = min(size, start & -start)
        yield start, bits - size.bit_length() + 1
        start += size


def _network(version: int, start: int, prefix: int) -> IPNetwork:
    if version == 4:
        return ipaddress.IPv4Network((start, prefix))
    return ipaddress.IPv6Network((start, prefix))


_A = TypeVar("_A")
_B = TypeVar("_B")


def _overlay(a: Iterator[tuple[int, int, _A]], b: Iterator[tuple[int, int, _B]]
             ) -> Iterator[tuple[int, int, _A, _B]]:
    """Two partitions of the same space (runs of (start, end, value) covering it all, in
    order) -> the common refinement, as (start, end, value from a, value from b)."""
    _, end_a, value_a = next(a)
    _, end_b, value_b = next(b)
    start = 0
    while True:
        end = min(end_a, end_b)
        yield start, end, value_a, value_b
        if end_a == end:
            try:
                _, end_a, value_a = next(a)
            except StopIteration:
                return
        if end_b == end:
            _, end_b, value_b = next(b)
        start = end + 1


# --- GeoTable -----------------------------------------------------------------------------


class _Ranges:
    """Sorted disjoint ranges of one address family, each with a location id."""

    __slots__ = ("version", "bits", "starts", "ends", "ids")

    def __init__(self, version: int, rows: list[tuple[int, int, int]]) -> None:
        self.version = version
        self.bits = BITS[version]
        rows.sort()
        for (start, end, _), (next_start, next_end, _) in zip(rows, rows[1:]):
            if next_start <= end:
                first = _network(version, start, self.bits - (end - start + 1).bit_length() + 1)
                second = _network(version, next_start,
                                  self.bits - (next_end - next_start + 1).bit_length() + 1)
                raise ValueError(f"overlapping networks in a geo table: {first} and {second}")
        if version == 4:
            self.starts: Sequence[int] = array("I", (r[0] for r in rows))
            self.ends: Sequence[int] = array("I", (r[1] for r in rows))
        else:
            self.starts = [r[0] for r in rows]
            self.ends = [r[1] for r in rows]
        self.ids = array("i", (r[2] for r in rows))

    def find(self, value: int) -> int:
        """Index of the range holding `value`, or -1."""
        i = bisect.bisect_right(self.starts, value) - 1
        return i if i >= 0 and value <= self.ends[i] else -1

    def partition(self) -> Iterator[tuple[int, int, int]]:
        """Every address of the family in order, gaps as id -1."""
        cursor = 0
        for start, end, ident in zip(self.starts, self.ends, self.ids):
            if start > cursor:
                yield cursor, start - 1, -1
            yield start, end, ident
            cursor = end + 1
        top = (1 << self.bits) - 1
        if cursor <= top:
            yield cursor, top, -1


class GeoTable:
    """Address -> Location, from (network, Location) pairs with no overlap.

    Locations are stored once per distinct content; `lookup` gives one with `network` set
    to the table network holding the address, or `UNKNOWN` outside every network."""

    def __init__(self, entries: Iterable[tuple[IPNetwork | str, Location]] = ()) -> None:
        self._locations: list[Location] = []
        self._index: dict[Location, int] = {}
        rows: dict[int, list[tuple[int, int, int]]] = {4: [], 6: []}
        for network, location in entries:
            if isinstance(network, str):
                network = ipaddress.ip_network(network)
            start = int(network.network_address)
            size = 1 << (network.max_prefixlen - network.prefixlen)
            rows[network.version].append((start, start + size - 1, self._intern(location)))
        self._ranges = {version: _Ranges(version, rows[version]) for version in (4, 6)}

    def _intern(self, location: Location) -> int:
        if location.network is not None:
            location = replace(location, network=None)
        ident = self._index.get(location)
        if ident is None:
            ident = self._index[location] = len(self._locations)
            self._locations.append(location)
        return ident

    def __len__(self) -> int:
        return sum(len(ranges.ids) for ranges in self._ranges.values())

    def __iter__(self) -> Iterator[tuple[IPNetwork, Location]]:
        for version, ranges in self._ranges.items():
            for start, end, ident in zip(ranges.starts, ranges.ends, ranges.ids):
                for block, prefix in _cidrs(start, end, ranges.bits):
                    network = _network(version, block, prefix)
                    yield network, replace(self._locations[ident], network=network)

    @property
    def locations(self) -> tuple[Location, ...]:
        """The distinct locations in the table (without networks)."""
        return tuple(self._locations)

    def lookup(self, address: IPAddress | IPNetwork | str) -> Location:
        address = _address(address)
        ranges = self._ranges[address.version]
        i = ranges.find(int(address))
        if i < 0:
            return UNKNOWN
        start, end = ranges.starts[i], ranges.ends[i]
        prefix = ranges.bits - (end - start + 1).bit_length() + 1
        return replace(self._locations[ranges.ids[i]],
                       network=_network(address.version, start, prefix))

    @classmethod
    def combine(cls, *tables: GeoTable) -> GeoTable:
        """One table with the fields of all: where several tables hold an address, the
        first one that knows a field gives it (list a City table before an ASN table),
        and the entry is the intersection of their networks. `database` names them all,
        joined with `+`."""
        if len(tables) == 1:
            return tables[0]
        combined = cls()
        merged: dict[tuple[int, ...], int] = {}
        for version in (4, 6):
            bits = BITS[version]
            pieces: Iterator[tuple[int, int, tuple[int, ...]]] = (
                (start, end, (ident,)) for start, end, ident in tables[0]._ranges[version].partition())
            for table in tables[1:]:
                pieces = ((start, end, key + (ident,)) for start, end, key, ident in
                          _overlay(pieces, table._ranges[version].partition()))
            rows: list[tuple[int, int, int]] = []
            for start, end, key in pieces:
                if all(ident < 0 for ident in key):
                    continue
                ident = merged.get(key)
                if ident is None:
                    parts = [tables[n]._locations[i] for n, i in enumerate(key) if i >= 0]
                    ident = merged[key] = combined._intern(merge_locations(parts))
                rows.extend((block, block + (1 << (bits - prefix)) - 1, ident)
                            for block, prefix in _cidrs(start, end, bits))
            combined._ranges[version] = _Ranges(version, rows)
        return combined


def merge_locations(parts: Sequence[Location]) -> Location:
    """One Location from several answers for the same address: each field from the first
    part that knows it; `database` names every part's database, joined with `+`."""
    def first(values: Iterable[object]) -> Any:
        return next((value for value in values if value is not None), None)

    return Location(
        continent=first(p.continent for p in parts),
        country=first(p.country for p in parts),
        subdivision=first(p.subdivision for p in parts),
        asn=first(p.asn for p in parts),
        latitude=first(p.latitude for p in parts),
        longitude=first(p.longitude for p in parts),
        database="+".join(dict.fromkeys(p.database for p in parts if p.database)) or None,
    )


# --- RuleMap ------------------------------------------------------------------------------


class _Blocks:
    __slots__ = ("version", "starts", "prefixes", "results")

    def __init__(self, version: int) -> None:
        self.version = version
        self.starts: array[int] | list[int] = array("I") if version == 4 else []
        self.prefixes = array("B")
        self.results = array("i")


class RuleMatch(NamedTuple):
    rule: int | None  # index into the record's rules; None: no rule matches
    network: IPNetwork  # the widest aligned block holding the address with that result


class RuleMap:
    """Address -> (first matching rule, the widest network on which that holds).

    Built once per record from its rules and the geo table; `lookup` is a bisect."""

    def __init__(self, rules: tuple[Rule, ...], blocks: dict[int, _Blocks], uses_table: bool) -> None:
        self.rules = rules
        self._blocks = blocks
        self.uses_table = uses_table  # False when no rule has geos or asns

    @classmethod
    def build(cls, rules: Sequence[Rule], table: GeoTable | None = None) -> RuleMap:
        rules = tuple(rules)
        compiled = [_CompiledRule.of(rule) for rule in rules]
        uses_table = table is not None and any(c.geos or c.asns for c in compiled)
        # The first rule matching each distinct location on geos/asns/catch-all alone.
        location_rule: list[int] = []
        catch_all = next((i for i, c in enumerate(compiled) if c.catch_all), _NO_RULE)
        if uses_table:
            assert table is not None
            location_rule = [
                next((i for i, c in enumerate(compiled) if c.matches_location(loc)), _NO_RULE)
                for loc in table._locations
            ]
        blocks = {}
        for version in (4, 6):
            bits = BITS[version]
            top = (1 << bits) - 1
            if uses_table:
                assert table is not None
                unknown = next((i for i, c in enumerate(compiled) if c.matches_location(UNKNOWN)),
                               _NO_RULE)
                geo: Iterator[tuple[int, int, int]] = (
                    (start, end, location_rule[ident] if ident >= 0 else unknown)
                    for start, end, ident in table._ranges[version].partition())
            else:
                geo = iter([(0, top, catch_all)])
            if any(net.version == version for c in compiled for net in c.subnets):
                pieces: Iterator[tuple[int, int, int]] = (
                    (start, end, by_location if by_subnet == _NO_RULE
                     else by_subnet if by_location == _NO_RULE else min(by_location, by_subnet))
                    for start, end, by_location, by_subnet in
                    _overlay(geo, _subnet_partition(compiled, version)))
            else:
                pieces = geo
            out = _Blocks(version)
            run_start, run_result = 0, None
            for start, _end, result in pieces:
                if result != run_result:
                    if run_result is not None:
                        _emit(out, run_start, start - 1, run_result, bits)
                    run_start, run_result = start, result
            assert run_result is not None
            _emit(out, run_start, top, run_result, bits)
            blocks[version] = out
        return cls(rules, blocks, uses_table)

    def lookup(self, address: IPAddress | IPNetwork | str) -> RuleMatch:
        address = _address(address)
        blocks = self._blocks[address.version]
        i = bisect.bisect_right(blocks.starts, int(address)) - 1
        result = blocks.results[i]
        return RuleMatch(None if result == _NO_RULE else result,
                         _network(address.version, blocks.starts[i], blocks.prefixes[i]))

    def __len__(self) -> int:
        return sum(len(b.results) for b in self._blocks.values())

    def arrays(self, version: int) -> tuple[Sequence[int], array[int], array[int]]:
        """The family's blocks as parallel sequences (starts, prefixes, rule indexes with
        -1 for no rule), for a compact copy elsewhere (the native answer table)."""
        b = self._blocks[version]
        return b.starts, b.prefixes, b.results

    def blocks(self, version: int) -> Iterator[tuple[IPNetwork, int | None]]:
        """Every block of the family in order, with its rule index."""
        b = self._blocks[version]
        for start, prefix, result in zip(b.starts, b.prefixes, b.results):
            yield _network(version, start, prefix), None if result == _NO_RULE else result


def _emit(out: _Blocks, start: int, end: int, result: int, bits: int) -> None:
    for block, prefix in _cidrs(start, end, bits):
        out.starts.append(block)
        out.prefixes.append(prefix)
        out.results.append(result)


def _subnet_partition(compiled: list[_CompiledRule], version: int) -> Iterator[tuple[int, int, int]]:
    """The whole family as runs of (start, end, first rule whose subnets hold it, or -1),
    by a sweep over the subnets' start and end events."""
    top = (1 << BITS[version]) - 1
    events: list[tuple[int, int, int]] = []  # (address, +1 open / -1 close, rule)
    for index, rule in enumerate(compiled):
        for net in rule.subnets:
            if net.version == version:
                events.append((int(net.network_address), 1, index))
                events.append((int(net.broadcast_address) + 1, -1, index))
    events.sort()
    active: dict[int, int] = {}
    heap: list[int] = []
    cursor, current = 0, _NO_RULE
    i = 0
    while i < len(events):
        point = events[i][0]
        while i < len(events) and events[i][0] == point:
            _, kind, index = events[i]
            active[index] = active.get(index, 0) + kind
            if kind > 0 and active[index] == 1:
                heapq.heappush(heap, index)
            i += 1
        while heap and active.get(heap[0], 0) <= 0:
            heapq.heappop(heap)
        value = heap[0] if heap else _NO_RULE
        if value != current and point <= top:
            if point > cursor:
                yield cursor, point - 1, current
            cursor, current = point, value
    yield cursor, top, current
