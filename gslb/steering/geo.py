"""Geo classification, pure: address -> Location, and address -> first matching rule.

Two tables, both built once (when the configuration or a database loads), never per query:

`GeoTable` holds what the MaxMind databases say of each address that rules can test
(continent, country, first subdivision, ASN), as runs of addresses per family: one run
for each stretch of neighbouring networks that say the same. `gslb.load.geoip` builds it
by walking the databases' search trees in C (`_geomap.walk`, gslb/steering/native), a
City and an ASN database together, each run then being the intersection of their
networks with the fields of both.

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

Building is linear in the runs and the output blocks, in C (`_geomap.blocks`); only the
distinct places and ASNs of the table are classified in Python. Runs and blocks are kept
as the C code and the native answer table read them: big-endian starts in one `bytes`,
native int32 values, so a City database's millions of runs cost tens of megabytes, not
a Python object each.
"""

from __future__ import annotations

import heapq
import ipaddress
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast, overload

from . import _geomap  # type: ignore[attr-defined]  # the C extension (gslb/steering/native)
from .model import IPNetwork, Location, Rule

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CONTINENTS = frozenset({"AF", "AN", "AS", "EU", "NA", "OC", "SA"})
BITS = {4: 32, 6: 128}
WIDTH = {4: 4, 6: 16}  # bytes of an address
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


class _Runs:
    """One address family cut into runs: run i covers [start i, start i+1 - 1] (the last one
    up to the top of the family) and holds value i. Starts are big-endian, 4 or 16 bytes
    each (as the native answer table reads them), values native int32: compact enough for
    the millions of runs a City database makes, and what the C code reads as it is."""

    __slots__ = ("version", "width", "starts", "raw", "values")

    def __init__(self, version: int, starts: bytes | memoryview, values: bytes | memoryview) -> None:
        self.version = version
        self.width = WIDTH[version]
        self.starts = starts
        self.raw = values
        self.values = memoryview(values).cast("i")

    @classmethod
    def of(cls, version: int, rows: Iterable[tuple[int, int]]) -> _Runs:
        """From (start, value) pairs in address order, the first at 0."""
        starts, values = bytearray(), array("i")
        for start, value in rows:
            starts += start.to_bytes(WIDTH[version], "big")
            values.append(value)
        return cls(version, bytes(starts), values.tobytes())

    def __len__(self) -> int:
        return len(self.values)

    def start(self, i: int) -> int:
        return int.from_bytes(self.starts[i * self.width:(i + 1) * self.width], "big")

    def last(self, i: int) -> int:
        """The last address of run i."""
        return self.start(i + 1) - 1 if i + 1 < len(self.values) else (1 << BITS[self.version]) - 1

    def find(self, address: IPAddress) -> int:
        """Index of the run holding the address."""
        return int(_geomap.find(self.starts, self.width, address.packed))


# --- GeoTable -----------------------------------------------------------------------------


class GeoTable:
    """Address -> what rules test there: continent, country, first subdivision and ASN
    (`Location` without coordinates: `closest` asks the databases for those, per client).

    Runs per address family, each with a key (-1: no database knows the addresses);
    neighbouring networks with the same key are one run. `gslb.load.geoip` builds one from
    the databases' search trees in C; `GeoTable(entries)` builds a small one from (network,
    Location) pairs (no overlaps). `lookup` gives the Location with `network` set to the
    widest aligned block of its run holding the address, or `UNKNOWN`."""

    def __init__(self, entries: Iterable[tuple[IPNetwork | str, Location]] = ()) -> None:
        keys: dict[GeoKey, int] = {}
        rows: dict[int, list[tuple[int, int, int]]] = {4: [], 6: []}
        for network, location in entries:
            if isinstance(network, str):
                network = ipaddress.ip_network(network)
            key = GeoKey.of(location)
            ident = keys.setdefault(key, len(keys))
            start = int(network.network_address)
            size = 1 << (network.max_prefixlen - network.prefixlen)
            rows[network.version].append((start, start + size - 1, ident))
        self.keys = GeoKeys.of(list(keys))
        self._runs = {version: _Runs.of(version, _partition(version, rows[version]))
                      for version in (4, 6)}

    @classmethod
    def from_runs(cls, runs: dict[int, tuple[bytes | memoryview, bytes | memoryview]],
                  keys: GeoKeys) -> GeoTable:
        """A table from runs as `_geomap.walk` makes them: per family, big-endian starts and
        native int32 keys (indexes into `keys`, -1 for none); bytes, or views of a memory
        file several processes map (`gslb.load.geoip.mapped_table`)."""
        table = cls()
        table.keys = keys
        table._runs = {version: _Runs(version, *runs[version]) for version in (4, 6)}
        return table

    def runs(self, version: int) -> _Runs:
        return self._runs[version]

    def sample(self, limit: int) -> list[IPNetwork]:
        """Up to `limit` client networks spread evenly over the table's IPv4 runs that a
        database knows (one /24 from each chosen run): what a preview computes answer
        shares over."""
        runs = self._runs[4]
        known = [i for i, key in enumerate(runs.values) if key >= 0]
        step = max(1, len(known) // max(1, limit))
        return [ipaddress.ip_network(f"{ipaddress.IPv4Address(runs.start(i))}/24", strict=False)
                for i in known[::step]][:limit]

    def __len__(self) -> int:
        """The runs some database knows."""
        return sum(1 for runs in self._runs.values() for key in runs.values if key >= 0)

    def __iter__(self) -> Iterator[tuple[IPNetwork, Location]]:
        for version, runs in self._runs.items():
            for i, key in enumerate(runs.values):
                if key < 0:
                    continue
                for block, prefix in _cidrs(runs.start(i), runs.last(i), BITS[version]):
                    network = _network(version, block, prefix)
                    yield network, self.keys[key].location(network)

    def lookup(self, address: IPAddress | IPNetwork | str) -> Location:
        address = _address(address)
        runs = self._runs[address.version]
        i = runs.find(address)
        key = runs.values[i]
        if key < 0:
            return UNKNOWN
        value = int(address)
        block = next(_network(address.version, start, prefix)
                     for start, prefix in _cidrs(runs.start(i), runs.last(i), BITS[address.version])
                     if start <= value < start + (1 << (BITS[address.version] - prefix)))
        return self.keys[key].location(block)


class GeoKeys(Sequence["GeoKey"]):
    """A table's keys, as the walk gives them: the distinct places (continent, country,
    subdivision) and, per key, its place, ASN and databases, in native arrays. A City and an
    ASN database together make hundreds of thousands of (place, ASN) keys: rules are
    matched per place and per ASN (`_key_rules`), and a `GeoKey` is only made when asked."""

    ASN_NONE = -(2**63)

    def __init__(self, places: Sequence[tuple[str | None, str | None, str | None]], place: bytes,
                 asn: bytes, database: bytes, databases: Sequence[str | None]) -> None:
        self.places = tuple(places)
        self.place_raw, self.asn_raw = place, asn
        self.place = memoryview(place).cast("i")
        self.asn = memoryview(asn).cast("q")
        self.database = memoryview(database).cast("I")
        self.databases = tuple(databases)  # by the `database` number of a key

    @classmethod
    def of(cls, keys: Sequence[GeoKey]) -> GeoKeys:
        places: dict[tuple[str | None, str | None, str | None], int] = {}
        databases: dict[str | None, int] = {}
        place, asn, database = array("i"), array("q"), array("I")
        for key in keys:
            place.append(places.setdefault(key[:3], len(places)))
            asn.append(cls.ASN_NONE if key.asn is None else key.asn)
            database.append(databases.setdefault(key.database, len(databases)))
        return cls(list(places), place.tobytes(), asn.tobytes(), database.tobytes(), list(databases))

    def __len__(self) -> int:
        return len(self.place)

    @overload
    def __getitem__(self, i: int) -> GeoKey: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[GeoKey]: ...

    def __getitem__(self, i: int | slice) -> GeoKey | Sequence[GeoKey]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        asn = self.asn[i]
        return GeoKey(*self.places[self.place[i]], None if asn == self.ASN_NONE else asn,
                      self.databases[self.database[i]])


class GeoKey(NamedTuple):
    """What a geo table says about a run: the fields rules test, and which databases had a
    record there (`database`, their types joined with `+`)."""

    continent: str | None
    country: str | None
    subdivision: str | None
    asn: int | None
    database: str | None

    @classmethod
    def of(cls, location: Location) -> GeoKey:
        return cls(location.continent, location.country, location.subdivision, location.asn,
                   location.database)

    def location(self, network: IPNetwork | None = None) -> Location:
        return Location(continent=self.continent, country=self.country,
                        subdivision=self.subdivision, asn=self.asn, database=self.database,
                        network=network)


def _partition(version: int, rows: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """(start, last, key) ranges without overlaps -> (start, key) runs covering the family,
    gaps as key -1, neighbours with the same key as one run."""
    rows.sort()
    bits = BITS[version]
    for (start, last, _), (following, following_last, _) in zip(rows, rows[1:]):
        if following <= last:
            first = _network(version, start, bits - (last - start + 1).bit_length() + 1)
            second = _network(version, following,
                              bits - (following_last - following + 1).bit_length() + 1)
            raise ValueError(f"overlapping networks in a geo table: {first} and {second}")
    runs: list[tuple[int, int]] = []
    cursor = 0
    for start, last, key in rows:
        if start > cursor:
            runs.append((cursor, -1))
        runs.append((start, key))
        cursor = last + 1
    if cursor < 1 << bits:
        runs.append((cursor, -1))
    return [run for i, run in enumerate(runs) if i == 0 or run[1] != runs[i - 1][1]]


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


class RuleMatch(NamedTuple):
    rule: int | None  # index into the record's rules; None: no rule matches
    network: IPNetwork  # the widest aligned block holding the address with that result


class RuleMap:
    """Address -> (first matching rule, the widest network on which that holds).

    Built once per distinct set of rules from the geo table (`_geomap.blocks`, in C: a
    City database's table has millions of runs), kept as the native answer table reads it;
    `lookup` is a binary search."""

    def __init__(self, rules: tuple[Rule, ...], blocks: dict[int, _Runs],
                 prefixes: dict[int, bytes], uses_table: bool) -> None:
        self.rules = rules
        self._blocks = blocks  # starts and rule indexes (-1: no rule)
        self._prefixes = prefixes
        self.uses_table = uses_table  # False when no rule has geos or asns

    @classmethod
    def build(cls, rules: Sequence[Rule], table: GeoTable | None = None) -> RuleMap:
        rules = tuple(rules)
        compiled = [_CompiledRule.of(rule) for rule in rules]
        uses_table = table is not None and any(c.geos or c.asns for c in compiled)
        catch_all = next((i for i, c in enumerate(compiled) if c.catch_all), _NO_RULE)
        key_rules = _key_rules(compiled, table.keys) if uses_table and table is not None else b""
        blocks, prefixes = {}, {}
        for version in (4, 6):
            if uses_table and table is not None:
                geo = table.runs(version)
            else:  # every address leads to the catch-all, as far as locations go
                geo = _Runs.of(version, [(0, -1)])
            subnets = _Runs.of(version, _subnet_partition(compiled, version))
            starts, prefixes[version], results = _geomap.blocks(
                WIDTH[version], geo.starts, geo.raw, key_rules, catch_all,
                subnets.starts, subnets.raw)
            blocks[version] = _Runs(version, starts, results)
        return cls(rules, blocks, prefixes, uses_table)

    def lookup(self, address: IPAddress | IPNetwork | str) -> RuleMatch:
        address = _address(address)
        blocks = self._blocks[address.version]
        i = blocks.find(address)
        result = blocks.values[i]
        return RuleMatch(None if result == _NO_RULE else result,
                         _network(address.version, blocks.start(i), self._prefixes[address.version][i]))

    def __len__(self) -> int:
        return sum(len(b) for b in self._blocks.values())

    def arrays(self, version: int) -> tuple[bytes, bytes, bytes]:
        """The family's blocks as the native answer table takes them: big-endian starts (4
        or 16 bytes each), prefix lengths, native int32 rule indexes (-1: no rule)."""
        b = self._blocks[version]  # bytes, as `_geomap.blocks` made them
        return cast(bytes, b.starts), self._prefixes[version], cast(bytes, b.raw)

    def blocks(self, version: int) -> Iterator[tuple[IPNetwork, int | None]]:
        """Every block of the family in order, with its rule index."""
        b = self._blocks[version]
        for i, result in enumerate(b.values):
            yield (_network(version, b.start(i), self._prefixes[version][i]),
                   None if result == _NO_RULE else result)


def _key_rules(compiled: list[_CompiledRule], keys: GeoKeys) -> bytes:
    """The first rule each key's location matches (geos, ASNs or catch-all), native int32.

    A rule matches on its geos or on its ASNs, so the first rule for a key is the earlier
    of the first one matching its place and the first one naming its ASN: worked out once
    per distinct place here, per key in C (a City and an ASN database give hundreds of
    thousands of keys over a few thousand places)."""
    place_rules = array("i", [
        next((i for i, c in enumerate(compiled)
              if c.catch_all or any(g.matches(Location(continent=continent, country=country,
                                                       subdivision=subdivision)) for g in c.geos)),
             _NO_RULE)
        for continent, country, subdivision in keys.places])
    by_asn: dict[int, int] = {}
    for index, c in reversed(list(enumerate(compiled))):
        for asn in c.asns:
            by_asn[asn] = index
    asns = sorted(by_asn)
    return bytes(_geomap.key_rules(keys.place_raw, keys.asn_raw, place_rules.tobytes(),
                                   array("q", asns).tobytes(), array("i", [by_asn[a] for a in asns]).tobytes()))


def _subnet_partition(compiled: list[_CompiledRule], version: int) -> Iterator[tuple[int, int]]:
    """The whole family as runs of (start, first rule whose subnets hold it, or -1), by a
    sweep over the subnets' start and end events."""
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
                yield cursor, current
            cursor, current = point, value
    yield cursor, current


class CountryPool(NamedTuple):
    pool: str | None  # the pool of the first rule a client located in the country meets
    split: bool  # an earlier rule names a subdivision of it: part of the country differs


def pools_by_country(rules: Sequence[Rule], continents: Mapping[str, str | None]
                     ) -> dict[str, CountryPool]:
    """For a map of a record's geo steering: per country (alpha-2 -> its continent), the
    pool its clients get by location alone (subnet and ASN rules aside: they depend on
    the address, not the country). None: no rule matches (no catch-all)."""
    parsed = [(rule, [parse_geo(g) for g in rule.geos]) for rule in rules]
    out = {}
    for country, continent in continents.items():
        where = Location(continent=continent, country=country)
        split = False
        pool = None
        for rule, geos in parsed:
            if rule.catch_all or any(g.matches(where) for g in geos if g.subdivision is None):
                pool = rule.pool
                break
            split = split or any(g.subdivision is not None and g.country == country
                                 and g.continent in (None, continent) for g in geos)
        out[country] = CountryPool(pool, split)
    return out


# --- LocationMap --------------------------------------------------------------------------


ALIAS = -2  # a LocationMap entry where `locate` follows an alias the walk does not
HAS_LATITUDE, HAS_LONGITUDE, ODD_LATITUDE, ODD_LONGITUDE = 1, 2, 4, 8


class LocationMap:
    """Address -> what `locate` says there, as far as `closest` and `latency` read it:
    an entry (place and coordinates; -1: no database knows the address; `ALIAS`: ::/96
    and the aliases of the IPv4 subtree in the IPv6 family, left to Python) and the
    length of the network it holds on, capped at the longest scope an answer says. It
    answers for client network addresses (cut to /24 or /56 at most): inside such a
    block it only knows the leaf holding the block's first address.

    Built once per generation of the databases by the location walk (`_geomap.walk` with
    `locations`): runs of neighbouring networks with the same entry and length, a
    binary search per lookup, in C as in Python (the native answer table reads these
    very bytes), so both compute the same cache key for a client. Entries are the
    distinct (place, coordinates) of the databases: a City database's millions of
    networks come to some hundred thousand entries, which the steering front classifies
    (`gslb.steering.located`) instead of the networks."""

    def __init__(self, runs: dict[int, tuple[bytes, bytes, bytes]],
                 places: Sequence[tuple[str | None, str | None, str | None]], place: bytes,
                 latitude: bytes, longitude: bytes, coordinates: bytes) -> None:
        self._runs = {version: _Runs(version, starts, ids) for version, (starts, ids, _) in runs.items()}
        self.prefixes = {version: runs[version][2] for version in runs}
        self.places = tuple(places)
        self.place = memoryview(place).cast("i")
        self.latitude = memoryview(latitude).cast("d")
        self.longitude = memoryview(longitude).cast("d")
        self.coordinates = memoryview(coordinates).cast("I")
        # Closest classes per set of datacenter coordinates (`gslb.steering.located`):
        # seconds for a City database, so kept with the map across configuration reloads.
        self.rankings: dict[Any, bytes] = {}

    def __len__(self) -> int:
        """The entries."""
        return len(self.place)

    def find(self, address: IPAddress) -> tuple[int, int]:
        """(entry, capped network length; 0 for no entry) of the run holding the address."""
        runs = self._runs[address.version]
        i = runs.find(address)
        return runs.values[i], self.prefixes[address.version][i]

    def arrays(self, version: int) -> tuple[bytes, bytes, bytes]:
        """The family's runs as the native answer table takes them: big-endian starts,
        native int32 entries, capped lengths."""
        runs = self._runs[version]  # bytes, as `_geomap.walk` made them
        return cast(bytes, runs.starts), cast(bytes, runs.raw), self.prefixes[version]

    def runs(self) -> int:
        return sum(len(runs) for runs in self._runs.values())

    def size(self) -> int:
        """Bytes held by the runs and the entries' arrays."""
        return (sum(len(r.starts) + len(r.raw) for r in self._runs.values())
                + sum(len(p) for p in self.prefixes.values())
                + self.place.nbytes + self.latitude.nbytes + self.longitude.nbytes
                + self.coordinates.nbytes)
