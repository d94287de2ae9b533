"""MaxMind DB files of millions of networks, written fast enough to make at bench time.

mmdb-writer inserts one network at a time in Python: minutes for a City-sized database.
This writer generates the search tree itself, already a tree: a seeded recursion splits a
budget of networks over the address space, so each network is made once, in address order,
with one node per split. What it writes follows the MaxMind DB format
(https://maxmind.github.io/MaxMind-DB/) as MaxMind's own files do: an IPv6 tree with
the IPv4 space at ::/96 and the aliases ::ffff:0:0/96 and 2002::/16 pointing at it, data
records deduplicated through pointers (map keys, continents, countries, subdivisions), and
some empty records between networks.

The made-up world: seven continents, `COUNTRIES` countries (two-letter codes `AA`, `AB`,
...) each in one continent, up to 20 subdivisions each, and a City database's cities spread
over them. A region of the address space (an IPv4 /12, an IPv6 /24) belongs to one country,
sometimes a second one deeper down; neighbouring networks often share a city, as in real
files, so runs of equal records exist to be merged.

    python bench/mmdbgen.py city /tmp/city.mmdb --networks 5700000
    python bench/mmdbgen.py country /tmp/country.mmdb --networks 1000000
    python bench/mmdbgen.py asn /tmp/asn.mmdb --networks 500000 --cities 80000
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

CONTINENTS = ("AF", "AN", "AS", "EU", "NA", "OC", "SA")
COUNTRIES = 250
LANGUAGES = ("de", "en", "es", "fr", "ja", "pt-BR", "ru", "zh-CN")
METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"
# Build-time leaf markers, replaced once the node count is known.
_EMPTY = 0xFFFFFFFF - (1 << 30)
_DATA = _EMPTY + 1


# --- the data section ---------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """A value already in the data section, written as a pointer to it."""

    offset: int


@dataclass(frozen=True)
class Uint:
    """An unsigned integer of a given type: 5 (uint16), 6 (uint32) or 9 (uint64); the
    metadata's fields must have theirs (libmaxminddb checks)."""

    kind: int
    value: int


def _control(kind: int, size: int) -> bytes:
    if size < 29:
        first, extra = size, b""
    elif size < 285:
        first, extra = 29, bytes([size - 29])
    elif size < 65821:
        first, extra = 30, (size - 285).to_bytes(2, "big")
    else:
        first, extra = 31, (size - 65821).to_bytes(3, "big")
    if kind <= 7:
        return bytes([kind << 5 | first]) + extra
    return bytes([first, kind - 7]) + extra


def _pointer(offset: int) -> bytes:
    if offset < 2048:
        return bytes([0x20 | offset >> 8, offset & 0xFF])
    if offset < 526336:
        value = offset - 2048
        return bytes([0x28 | value >> 16]) + (value & 0xFFFF).to_bytes(2, "big")
    if offset < 134744064:
        value = offset - 526336
        return bytes([0x30 | value >> 24]) + (value & 0xFFFFFF).to_bytes(3, "big")
    return b"\x38" + offset.to_bytes(4, "big")


def encode(value: Any) -> bytes:
    """One value in the MaxMind DB data format (no pointers but the given `Ref`s)."""
    if isinstance(value, Ref):
        return _pointer(value.offset)
    if isinstance(value, Uint):
        raw = value.value.to_bytes((value.value.bit_length() + 7) // 8, "big")
        return _control(value.kind, len(raw)) + raw
    if isinstance(value, bool):
        return _control(14, int(value))
    if isinstance(value, str):
        raw = value.encode()
        return _control(2, len(raw)) + raw
    if isinstance(value, float):
        return _control(3, 8) + struct.pack(">d", value)
    if isinstance(value, int):
        if not 0 <= value < 2**64:
            raise ValueError(f"integer out of range: {value}")
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return _control(6 if value < 2**32 else 9, len(raw)) + raw
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(encode(k) + encode(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return _control(11, len(value)) + b"".join(encode(v) for v in value)
    raise TypeError(f"cannot encode {type(value).__name__}")


class Data:
    """The data section being written; `add` appends a value and gives its offset."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self._keys: dict[str, Ref] = {}

    def add(self, value: Any) -> int:
        offset = len(self.buf)
        self.buf += encode(value)
        return offset

    def key(self, text: str) -> Ref:
        """A map key or a repeated string, written once (MaxMind's files point to them)."""
        ref = self._keys.get(text)
        if ref is None:
            ref = self._keys[text] = Ref(self.add(text))
        return ref

    def record(self, fields: dict[str, Any]) -> int:
        """A top-level map whose keys are shared strings."""
        return self.add({self.key(name): value for name, value in fields.items()})


# --- the search tree ----------------------------------------------------------------------


@dataclass
class Tree:
    """Nodes as (left, right) pairs in preorder; leaves hold build-time markers."""

    nodes: array = field(default_factory=lambda: array("I"))

    def node(self) -> int:
        index = len(self.nodes) >> 1
        self.nodes.append(0)
        self.nodes.append(0)
        return index

    def finish(self, offsets: list[int], record_size: int) -> tuple[bytes, int]:
        """The tree section (with the 16-byte separator), and the node count."""
        count = len(self.nodes) >> 1
        if count + 16 + max(offsets, default=0) >= 1 << record_size:
            raise ValueError(f"{count} nodes do not fit {record_size}-bit records")
        base = count + 16
        values = array("I")
        step = 1 << 20
        for i in range(0, len(self.nodes), step):
            values.extend([v if v < _EMPTY else count if v == _EMPTY else base + offsets[v - _DATA]
                           for v in self.nodes[i:i + step]])
        if record_size == 32:
            if sys.byteorder == "little":
                values.byteswap()
            packed = values.tobytes()
        elif record_size == 24:
            packed = b"".join(v.to_bytes(3, "big") for v in values)
        elif record_size == 28:
            out = bytearray()
            for i in range(0, len(values), 2):
                left, right = values[i], values[i + 1]
                out += (left & 0xFFFFFF).to_bytes(3, "big")
                out.append((left >> 24) << 4 | right >> 24)
                out += (right & 0xFFFFFF).to_bytes(3, "big")
            packed = bytes(out)
        else:
            raise ValueError(f"record size {record_size}: 24, 28 or 32")
        return packed + bytes(16), count


def write_file(path: Path, tree: Tree, data: Data, offsets: list[int], database_type: str,
               ip_version: int = 6, record_size: int = 32) -> None:
    section, count = tree.finish(offsets, record_size)
    metadata = {
        "binary_format_major_version": Uint(5, 2), "binary_format_minor_version": Uint(5, 0),
        "build_epoch": Uint(9, 1_700_000_000), "database_type": database_type,
        "description": {"en": "gslb bench: generated networks"}, "ip_version": Uint(5, ip_version),
        "languages": list(LANGUAGES), "node_count": Uint(6, count),
        "record_size": Uint(5, record_size),
    }
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(section)
        out.write(data.buf)
        out.write(METADATA_MARKER)
        out.write(encode(metadata))
    tmp.replace(path)


# --- the made-up world --------------------------------------------------------------------


def _names(rng: random.Random, base: str) -> dict[str, str]:
    return {lang: f"{base} ({lang})" for lang in LANGUAGES}


@dataclass
class World:
    """Countries (code, record offset of the country map) and the records leaves point at."""

    countries: list[str]
    weights: list[float]
    records: dict[str, list[int]]  # country -> indexes into `offsets`
    offsets: list[int]


def make_asns(data: Data, rng: random.Random, asns: int) -> World:
    """An ASN database's records: `asns` autonomous systems, grouped under made-up
    "countries" only to give regions of the address space their own ASNs."""
    groups = [f"G{i}" for i in range(COUNTRIES)]
    offsets: list[int] = []
    records: dict[str, list[int]] = {group: [] for group in groups}
    for number in range(asns):
        records[groups[number % len(groups)]].append(len(offsets))
        offsets.append(data.record({"autonomous_system_number": 1000 + number,
                                    "autonomous_system_organization": data.key(f"Org {number % 5000}")}))
    return World(groups, [rng.paretovariate(1.2) for _ in groups], records, offsets)


def make_world(data: Data, rng: random.Random, cities: int) -> World:
    """The world's records: `cities` City records, or one Country record per country
    when `cities` is 0."""
    continents = [Ref(data.add({data.key("code"): code, data.key("geoname_id"): 6255140 + i,
                                data.key("names"): _names(rng, code)}))
                  for i, code in enumerate(CONTINENTS)]
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    codes = [a + b for a in letters for b in letters][:COUNTRIES]
    weights = [rng.paretovariate(1.2) for _ in codes]
    offsets: list[int] = []
    records: dict[str, list[int]] = {}
    total = sum(weights)
    keys = {name: encode(data.key(name)) for name in (
        "city", "geoname_id", "names", "en", "location", "accuracy_radius", "latitude",
        "longitude", "time_zone", "postal", "code", "subdivisions")}
    for i, code in enumerate(codes):
        continent = continents[i % len(CONTINENTS)]
        country = Ref(data.add({data.key("geoname_id"): 100_000 + i, data.key("iso_code"): code,
                                data.key("names"): _names(rng, code)}))
        base = {"continent": continent, "country": country, "registered_country": country}
        if not cities:
            records[code] = [len(offsets)]
            offsets.append(data.record(base))
            continue
        subdivisions = [Ref(data.add({data.key("geoname_id"): 200_000 + 20 * i + s,
                                      data.key("iso_code"): f"S{s}",
                                      data.key("names"): _names(rng, f"{code}-S{s}")}))
                        for s in range(1 + rng.randrange(20))]
        head = encode({data.key(name): value for name, value in base.items()})
        head = _control(7, 7) + head[1:]  # the three shared fields, then the city's own four
        zone = encode(data.key(f"Zone/{code}"))
        mine = records[code] = []
        for c in range(max(1, round(cities * weights[i] / total))):
            mine.append(len(offsets))
            offsets.append(len(data.buf))
            name = f"City {code} {c}".encode()
            # Written piece by piece: encode() per city record is too slow for 250k of them.
            data.buf += b"".join((
                head,
                keys["city"], _control(7, 2), keys["geoname_id"], encode(300_000 + len(offsets)),
                keys["names"], _control(7, 1), keys["en"], _control(2, len(name)), name,
                keys["location"], _control(7, 4),
                keys["accuracy_radius"], encode(rng.choice((5, 10, 20, 50, 100, 500))),
                keys["latitude"], encode(round(rng.uniform(-80, 80), 4)),
                keys["longitude"], encode(round(rng.uniform(-180, 180), 4)),
                keys["time_zone"], zone,
                keys["postal"], _control(7, 1), keys["code"], encode(f"{rng.randrange(100000):05d}"),
                keys["subdivisions"], _control(11, 1), encode(rng.choice(subdivisions)),
            ))
    return World(codes, weights, records, offsets)


class Networks:
    """The seeded recursion that makes one region's networks."""

    def __init__(self, tree: Tree, world: World, rng: random.Random, empty: float) -> None:
        self.tree, self.world, self.rng, self.empty = tree, world, rng, empty
        self.country = world.countries[0]
        self.last = (self.country, -1)  # the last leaf's country and record

    def pick_country(self) -> None:
        self.country = self.rng.choices(self.world.countries, self.world.weights)[0]

    def leaf(self) -> int:
        rng = self.rng
        if rng.random() < self.empty:
            return _EMPTY
        if self.last[0] != self.country or rng.random() < 0.5:
            mine = self.world.records[self.country]
            pick = mine[min(int(rng.paretovariate(1.0)) - 1, len(mine) - 1)] \
                if rng.random() < 0.7 else rng.choice(mine)
            self.last = (self.country, pick)
        return _DATA + self.last[1]

    def region(self, depth: int, budget: int, deepest: int, country_depth: int) -> int:
        """A subtree of `budget` leaves (networks or empty) with none deeper than `deepest`."""
        if depth == country_depth or (depth == country_depth + 4 and self.rng.random() < 0.15):
            self.pick_country()
        if budget == 1:
            return self.leaf()
        cap = 1 << (deepest - depth - 1)
        left = round(budget * (0.15 + 0.7 * self.rng.random()))
        left = max(1, budget - cap, min(left, cap, budget - 1))
        index = self.tree.node()
        nodes = self.tree.nodes
        nodes[2 * index] = self.region(depth + 1, left, deepest, country_depth)
        nodes[2 * index + 1] = self.region(depth + 1, budget - left, deepest, country_depth)
        return index


@dataclass(frozen=True)
class Place:
    """A subtree at start/prefix: `make()` gives its record (a node, a leaf marker)."""

    start: int
    prefix: int
    make: Callable[[], int]


def place(tree: Tree, depth: int, start: int, items: list[Place], bits: int) -> int:
    """Nodes down to each item's prefix, in preorder; empty where no item is."""
    if not items:
        return _EMPTY
    if len(items) == 1 and items[0].prefix == depth:
        return items[0].make()
    half = start + (1 << (bits - depth - 1))
    index = tree.node()
    low = [item for item in items if item.start < half]
    high = [item for item in items if item.start >= half]
    tree.nodes[2 * index] = place(tree, depth + 1, start, low, bits)
    tree.nodes[2 * index + 1] = place(tree, depth + 1, half, high, bits)
    return index


RESERVED_V4 = {0, 10, 127, *range(224, 256)}
V6_REGIONS = [(0x2001, 16, 3.0), (0x24, 8, 2.0), (0x26, 8, 3.0), (0x28, 8, 0.5),
              (0x2A, 8, 3.0), (0x2C, 8, 0.3)]  # (prefix value, length, weight)


def split(total: int, weights: list[float]) -> list[int]:
    scale = sum(weights)
    counts = [max(1, int(total * w / scale)) for w in weights]
    counts[0] += total - sum(counts)
    return counts


def build(path: Path, kind: str, networks: int, seed: int = 1, v4_share: float = 0.63,
          cities: int = 250_000, empty: float = 0.03, record_size: int = 32) -> dict[str, int]:
    """Write a City (`kind` "city"), Country or ASN database of about `networks` networks
    (leaves, a few percent of them empty; `cities`: City records, or ASNs); returns counts
    for the report."""
    rng = random.Random(seed)
    data = Data()
    world = (make_asns(data, rng, cities) if kind == "asn"
             else make_world(data, rng, cities if kind == "city" else 0))
    tree = Tree()
    gen = Networks(tree, world, rng, empty)
    v4 = int(networks * v4_share)
    slash8s = [n for n in range(256) if n not in RESERVED_V4]
    v4_budgets = split(v4, [rng.uniform(0.3, 1.7) for _ in slash8s])
    v6_budgets = split(networks - v4, [w for _, _, w in V6_REGIONS])

    def region_v4(budget: int) -> Callable[[], int]:
        return lambda: gen.region(8, budget, 32, 12)

    def region_v6(budget: int, prefix: int) -> Callable[[], int]:
        return lambda: gen.region(prefix, budget, 64, 24)

    ipv4_items = [Place(n << 24, 8, region_v4(b)) for n, b in zip(slash8s, v4_budgets)]
    ipv4_node: list[int] = []

    def ipv4() -> int:
        ipv4_node.append(place(tree, 0, 0, ipv4_items, 32))
        return ipv4_node[0]

    def alias() -> int:
        return ipv4_node[0]

    items = [Place(0, 96, ipv4), Place(0xFFFF << 32, 96, alias), Place(0x2002 << 112, 16, alias)]
    items += [Place(value << (128 - length), length, region_v6(budget, length))
              for (value, length, _), budget in zip(V6_REGIONS, v6_budgets)]
    items.sort(key=lambda item: item.start)
    place(tree, 0, 0, items, 128)
    database_type = {"city": "GeoIP2-City", "country": "GeoIP2-Country", "asn": "GeoLite2-ASN"}[kind]
    write_file(path, tree, data, world.offsets, database_type, 6, record_size)
    return {"nodes": len(tree.nodes) >> 1, "records": len(world.offsets), "networks": networks,
            "data_bytes": len(data.buf)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("city", "country", "asn"))
    parser.add_argument("path", type=Path)
    parser.add_argument("--networks", type=int, default=5_700_000)
    parser.add_argument("--cities", type=int, default=250_000,
                        help="City records (for asn: autonomous systems)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--record-size", type=int, default=32, choices=(24, 28, 32))
    args = parser.parse_args(argv)
    started = time.monotonic()
    counts = build(args.path, args.kind, args.networks, args.seed, cities=args.cities,
                   record_size=args.record_size)
    print(f"{args.path}: {counts}, {args.path.stat().st_size / 2**20:.0f} MiB "
          f"in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
