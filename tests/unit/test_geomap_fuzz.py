"""Untrusted bytes into the MaxMind DB walk: seeded mutations of generated databases.

Each mutation of a small City database (with an ASN database beside it, in lockstep) goes
through `_geomap.walk`: bit flips and random bytes in the tree and the data section,
truncations, and node counts, record sizes and data ends that lie. The walk must give
runs that hold together or raise ValueError naming the database; it never crashes or
reads outside the buffer. The rule-block builder and the lookup get arbitrary runs too.
Run under AddressSanitizer by test_geomap_asan.py, so an out-of-bounds read anywhere
in the walk or the decoder fails the suite.
"""

from __future__ import annotations

import random
import sys
from array import array
from pathlib import Path

import maxminddb
import pytest

from gslb.steering import _geomap  # type: ignore[attr-defined]

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import mmdbgen  # noqa: E402

SEED = 20261206
MUTATIONS = 4_000
MARKER = b"\xab\xcd\xefMaxMind.com"


def shape(path: Path) -> tuple[bytes, int, int, int, int]:
    data = path.read_bytes()
    metadata = maxminddb.open_database(str(path)).metadata()
    return data, metadata.node_count, metadata.record_size, metadata.ip_version, data.rindex(MARKER)


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, int, int, int, int]]:
    folder = tmp_path_factory.mktemp("fuzz")
    made = []
    for record_size in (24, 28, 32):
        path = folder / f"city{record_size}.mmdb"
        mmdbgen.build(path, "city", 400, seed=record_size, cities=40, empty=0.1, record_size=record_size)
        made.append(shape(path))
    return made


def mutate(database: tuple[bytes, int, int, int, int], rng: random.Random) -> tuple[bytes, int, int, int, int]:
    data, nodes, size, version, end = database
    buffer = bytearray(data)
    tree = nodes * size // 4
    kind = rng.randrange(8)
    if kind == 0:  # flip bits anywhere before the metadata
        for _ in range(rng.randrange(1, 8)):
            buffer[rng.randrange(end)] ^= 1 << rng.randrange(8)
    elif kind == 1:  # random bytes in the tree
        for _ in range(rng.randrange(1, 4)):
            buffer[rng.randrange(tree)] = rng.randrange(256)
    elif kind == 2:  # random bytes in the data section
        for _ in range(rng.randrange(1, 16)):
            buffer[rng.randrange(tree + 16, end)] = rng.randrange(256)
    elif kind == 3:  # a run of one byte value in the data section (sizes, pointers, types)
        at = rng.randrange(tree + 16, end)
        buffer[at:at + rng.randrange(1, 40)] = bytes([rng.choice([0x00, 0x1F, 0x3F, 0xE0, 0xFF, 0x20])]) * 40
    elif kind == 4:  # truncated: the walk is told the data ends early, or the file is short
        end = rng.randrange(end + 1)
        del buffer[rng.randrange(end, len(buffer) + 1):]
    elif kind == 5:  # a node count that lies
        nodes = rng.choice([0, 1, nodes - 1, nodes + 1, nodes * 2, 2**32 - 1, rng.randrange(2**32)])
    elif kind == 6:  # a record size or IP version that lies
        size = rng.choice([0, 24, 28, 32, 33, 64])
        version = rng.choice([0, 4, 6, 7])
    else:  # a record pointing at itself, an ancestor, or just past the nodes
        node = rng.randrange(max(1, nodes))
        value = rng.choice([node, 0, nodes + rng.randrange(20), rng.randrange(nodes + 1)])
        at = node * 8 + 4 * rng.randrange(2)
        if size == 32 and at + 4 <= len(buffer):
            buffer[at:at + 4] = value.to_bytes(4, "big")
    return bytes(buffer), nodes, size, version, end


def check_runs(result: tuple, count: int) -> None:
    v4, v4_keys, v6, v6_keys, (places, place, asn, mask) = result
    keys = len(place) // 4
    assert len(asn) == 8 * keys and len(mask) == 4 * keys
    for starts, ids_bytes, width in ((v4, v4_keys, 4), (v6, v6_keys, 16)):
        ids = array("i", ids_bytes)
        assert len(starts) == width * len(ids) and len(ids) >= 1
        values = [int.from_bytes(starts[i:i + width], "big") for i in range(0, len(starts), width)]
        assert values[0] == 0 and values == sorted(set(values))
        assert all(-1 <= key < keys for key in ids)
        assert all(a != b for a, b in zip(ids, ids[1:]))  # neighbours that say the same merged
    assert all(0 <= p < len(places) for p in array("i", place))
    assert all(0 < m < 1 << count for m in array("I", mask))
    for fields in places:
        assert len(fields) == 3 and all(f is None or isinstance(f, str) for f in fields)


def test_mutated_databases_walk_or_fail_cleanly(databases: list[tuple[bytes, int, int, int, int]]) -> None:
    rng = random.Random(SEED)
    for database in databases:
        check_runs(_geomap.walk([database]), 1)
    failed = walked = 0
    for _ in range(MUTATIONS):
        first = mutate(rng.choice(databases), rng)
        group = [first] if rng.random() < 0.7 else [first, mutate(rng.choice(databases), rng)]
        try:
            result = _geomap.walk(group)
        except ValueError as exc:  # a string that is not UTF-8 is one too
            index, message = exc.args if len(exc.args) == 2 else (-1, str(exc))
            assert -1 <= index < len(group) and message, exc.args
            failed += 1
            continue
        check_runs(result, len(group))
        walked += 1
    assert failed > MUTATIONS // 10 and walked > MUTATIONS // 10, (failed, walked)


def test_arbitrary_runs_into_the_rule_blocks_and_the_lookup() -> None:
    rng = random.Random(SEED + 1)
    for _ in range(MUTATIONS):
        width = rng.choice([4, 16])
        count = rng.randrange(0, 6)
        starts = sorted({0} | {rng.getrandbits(8 * width) for _ in range(count)}) if rng.random() < 0.8 \
            else [rng.getrandbits(8 * width) for _ in range(count)]
        geo = b"".join(s.to_bytes(width, "big") for s in starts)
        keys = array("i", [rng.randrange(-2, 4) for _ in starts]).tobytes()
        if rng.random() < 0.1:
            keys = keys[:-1]
        rules = array("i", [rng.randrange(-1, 3) for _ in range(rng.randrange(0, 4))]).tobytes()
        subnets = b"".join(s.to_bytes(width, "big") for s in [0, *sorted(rng.getrandbits(8 * width) for _ in range(2))])
        subnet_rules = array("i", [rng.randrange(-1, 3) for _ in range(3)]).tobytes()
        try:
            out, prefixes, results = _geomap.blocks(width, geo, keys, rules, rng.randrange(-1, 2),
                                                    subnets, subnet_rules)
        except ValueError:
            continue
        blocks = [int.from_bytes(out[i:i + width], "big") for i in range(0, len(out), width)]
        assert blocks[0] == 0 and len(prefixes) == len(blocks) == len(results) // 4
        top = 1 << (8 * width)
        ends = [b + (1 << (8 * width - p)) for b, p in zip(blocks, prefixes)]
        assert ends == blocks[1:] + [top]  # aligned blocks that tile the family
        for _ in range(5):
            address = rng.getrandbits(8 * width)
            index = _geomap.find(out, width, address.to_bytes(width, "big"))
            assert blocks[index] <= address < ends[index]


def test_arbitrary_keys_into_the_key_rules() -> None:
    rng = random.Random(SEED + 2)
    for _ in range(MUTATIONS // 4):
        keys = rng.randrange(0, 5)
        places = rng.randrange(0, 4)
        place = array("i", [rng.randrange(-1, places + 1) for _ in range(keys)]).tobytes()
        asn = array("q", [rng.choice([-(2**63), 1, 2, 3, 2**63 - 1]) for _ in range(keys)]).tobytes()
        place_rules = array("i", [rng.randrange(-1, 3) for _ in range(places)]).tobytes()
        asns = array("q", sorted(rng.sample([1, 2, 3, 7], rng.randrange(0, 4)))).tobytes()
        asn_rules = array("i", [rng.randrange(-1, 3) for _ in range(len(asns) // 8)]).tobytes()
        if rng.random() < 0.1:
            asn = asn[:-1]
        try:
            rules = array("i", _geomap.key_rules(place, asn, place_rules, asns, asn_rules))
        except ValueError:
            continue
        assert len(rules) == keys and all(-1 <= r < 3 for r in rules)


def check_locations(result: tuple) -> None:
    *runs, (places, place, latitude, longitude, bits) = result
    entries = len(place) // 4
    assert len(latitude) == len(longitude) == 8 * entries and len(bits) == 4 * entries
    for starts, ids_bytes, prefixes, width, cap in (runs[:3] + [4, 24], runs[3:] + [16, 56]):
        ids = array("i", ids_bytes)
        assert len(starts) == width * len(ids) == width * len(prefixes) and len(ids) >= 1
        values = [int.from_bytes(starts[i:i + width], "big") for i in range(0, len(starts), width)]
        assert values[0] == 0 and values == sorted(set(values))
        assert all(-2 <= key < entries for key in ids)
        assert all(p <= cap for p in prefixes)
        assert all((a, p) != (b, q) for a, b, p, q in zip(ids, ids[1:], prefixes, prefixes[1:]))
    assert all(0 <= p < len(places) for p in array("i", place))
    assert all(b < 16 for b in array("I", bits))


def test_mutated_databases_walk_for_locations_or_fail_cleanly(
        databases: list[tuple[bytes, int, int, int, int]]) -> None:
    """The location walk (closest and latency classes) over the same mutations."""
    rng = random.Random(SEED + 2)
    for database in databases:
        check_locations(_geomap.walk([database], True, 24, 56))
    failed = walked = 0
    for _ in range(MUTATIONS):
        first = mutate(rng.choice(databases), rng)
        group = [first] if rng.random() < 0.7 else [first, mutate(rng.choice(databases), rng)]
        try:
            result = _geomap.walk(group, True, 24, 56)
        except ValueError as exc:
            index, message = exc.args if len(exc.args) == 2 else (-1, str(exc))
            assert -1 <= index < len(group) and message, exc.args
            failed += 1
            continue
        check_locations(result)
        walked += 1
    assert failed > MUTATIONS // 10 and walked > MUTATIONS // 10, (failed, walked)
