"""Replies the C fast path builds from the zone data must be the Python path's, byte for byte.

On a table miss, render.c answers from the zones themselves (positive answers, NODATA,
NXDOMAIN, wildcards, CNAME chains, referrals with glue, additional addresses) and
declines every shape it does not handle, which the socket loop then hands to Python. So
every reply C builds for a cold table is compared with what `Responder` gives: for each
zone, every owner name and empty non-terminal asked every type it holds plus A, AAAA, MX,
NS, DS, TXT, CNAME, ANY and one type it lacks; names that do not exist (a random label
under the apex, under owners, under delegations) and names a wildcard answers (a random
label in place of its `*`); each without EDNS, with EDNS 1232, with DO, with a 512-byte
payload and with an ECS option, the name in random case. A tally of what C built (and of
what kind: NXDOMAIN, NODATA, referral...) keeps the test from passing on declines alone.

The zones are the suite's (the unsigned interop zones, and the signed ones: the source
zone signed by kzonesign three ways, and RFC 5155's example) and the zone files other
projects wrote, the corpus of tests/interop/test_zone_corpus.py (`corpus/manifest.txt`,
the files Knot serves), read from the archives `make test` downloads: under CI=true a
missing archive fails the test. Each corpus batch of distinct origins is one snapshot
and one cold C table, as gslb serves a folder (a zone nested in another of its batch
answers below the cut); a zone with more than `MOST` names is asked the apex and a
seeded sample of them.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import pytest

from gslb.dns.blob import record_types
from gslb.dns.handler import Responder
from gslb.dns.resolver import Zones
from gslb.dns.zone import Zone
from gslb.load.zonefile import load_zone_file, load_zones
from gslb.server import fastpath
from gslb.snapshot import Snapshot
from tests.interop.signing import sign_zones
from tests.interop.zone_corpus import batches, served_entries, write_batch
from tests.redis_server import require
from tests.unit.test_answer_cache import OPTIONS
from tests.zonesets import INTEROP_ZONES, load_zone_dir

pytestmark = pytest.mark.skipif(not fastpath.available(), reason="the C extension is not built")

RFC5155 = Path(__file__).resolve().parent.parent / "interop" / "signed" / "rfc5155"

VARIANTS: dict[str, dict] = {
    "no EDNS": {"use_edns": False},
    "EDNS 1232": {"use_edns": 0, "payload": 1232},
    "EDNS+DO": {"use_edns": 0, "payload": 1232, "want_dnssec": True},
    "EDNS 512": {"use_edns": 0, "payload": 512},
    "EDNS+ECS": {"use_edns": 0, "payload": 1232,
                 "options": [dns.edns.ECSOption("192.0.2.0", 24)]},
}
ASKED = [dns.rdatatype.from_text(t) for t in ("A", "AAAA", "MX", "NS", "DS", "TXT", "CNAME", "ANY")]
LACKING = [dns.rdatatype.from_text(t) for t in ("SRV", "CAA", "HINFO", "NAPTR", "TLSA", "TYPE65280")]
KINDS = ("NXDOMAIN", "NODATA", "referral", "wildcard", "CNAME", "additional")
MOST = 100  # corpus names asked per zone at most (one file has 2,909)


# Each variant's OPT record as dnspython writes it (after the root name's question),
# for queries built here by hand: building each with dnspython took a third of the run.
OPT = {variant: dns.message.make_query(".", "A", **options).to_wire()[17:]
       for variant, options in VARIANTS.items()}


def query(name: bytes, rdtype: int, variant: str, rng: random.Random) -> bytes:
    """The query's wire: a random ID, RD and CD at random (both are echoed), the name
    (lowercase wire) in random case."""
    mixed = bytes(c ^ 0x20 if 97 <= c <= 122 and rng.random() < 0.5 else c for c in name)
    flags = rng.choice([0, 0x0100, 0x0010, 0x0110])
    return (struct.pack("!HHHHHH", rng.randrange(65536), flags, 1, 0, 0, bool(OPT[variant]))
            + mixed + struct.pack("!HH", rdtype, 1) + OPT[variant])


@dataclass(frozen=True)
class Asked:
    """A name (lowercase wire) to ask, the types to ask it, and whether a wildcard
    answers it."""

    name: bytes
    types: list[int]
    wildcard: bool = False


def _types(held: set[int], rng: random.Random) -> list[int]:
    lacking = [t for t in LACKING if t not in held]
    return sorted(held) + [t for t in ASKED if t not in held] + [rng.choice(lacking)]


def _below(label: str, name: bytes) -> bytes | None:
    wire = bytes([len(label)]) + label.encode() + name
    return wire if len(wire) <= 255 else None


def questions(zone: Zone, rng: random.Random, most: int | None = None) -> list[Asked]:
    """Every owner and empty non-terminal (the apex and a seeded sample of `most` when
    there are more), names below the apex, owners and cuts that do not exist, and a name
    in place of each wildcard."""
    apex = zone.origin_wire
    keys = sorted(k for k in [*zone.records, *zone.ents] if k != apex)
    if most is not None and len(keys) >= most:
        keys = sorted(rng.sample(keys, most - 1))
    keys.insert(0, apex)
    asked = []
    for key in keys:
        held = record_types(zone.records.get(key, b""))
        asked.append(Asked(key, _types(held, rng)))
    owners = [k for k in keys if k != apex and k not in zone.cuts]
    missing = [apex, *rng.sample(owners, min(2, len(owners))),
               *rng.sample(sorted(zone.cuts), min(2, len(zone.cuts)))]
    for key in missing:
        name = _below(f"nx-{rng.randrange(10**6)}", key)
        if name is not None:
            asked.append(Asked(name, _types(set(), rng)))
    for key in keys:
        if key.startswith(b"\x01*") and key in zone.records:
            name = _below(f"w-{rng.randrange(10**6)}", key[2:])
            if name is not None:
                asked.append(Asked(name, _types(record_types(zone.records[key]), rng), True))
    return asked


def decoded(wire: bytes) -> str:
    """A reply as text, or its bytes when dnspython cannot read it."""
    try:
        return dns.message.from_wire(wire, one_rr_per_rrset=True).to_text()
    except (dns.exception.DNSException, ValueError) as exc:
        return f"({exc}) {wire.hex()}"


def _skip_name(wire: bytes, offset: int) -> int:
    while wire[offset] and wire[offset] < 0xC0:
        offset += 1 + wire[offset]
    return offset + (2 if wire[offset] else 1)


def kinds(reply: bytes, rdtype: int, edns: bool, wildcard: bool) -> set[str]:
    """What shape of reply this is, read from its header and record types."""
    rcode, aa = reply[3] & 0x0F, bool(reply[2] & 0x04)
    answers, authority, additional = struct.unpack_from("!HHH", reply, 6)
    offset = _skip_name(reply, 12) + 4
    types = []
    for _ in range(answers + authority):
        offset = _skip_name(reply, offset)
        rrtype, _, _, length = struct.unpack_from("!HHIH", reply, offset)
        types.append(rrtype)
        offset += 10 + length
    found = set()
    if rcode == 3:
        found.add("NXDOMAIN")
    if rcode == 0 and not answers and aa:
        found.add("NODATA")
    if rcode == 0 and not answers and not aa and dns.rdatatype.NS in types[answers:]:
        found.add("referral")
    if wildcard and rcode == 0 and answers and aa:
        found.add("wildcard")
    if answers and types[0] == dns.rdatatype.CNAME and rdtype != dns.rdatatype.CNAME:
        found.add("CNAME")
    if additional > edns:
        found.add("additional")
    return found


@dataclass
class Tally:
    """How many queries were asked and how many C built, of what kind, and the replies
    that differ."""

    asked: int = 0
    built: int = 0
    kinds: Counter = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)

    def share(self) -> float:
        return self.built / max(self.asked, 1)

    def summary(self, most: int = 8) -> str:
        """The mismatches (the first `most` in full) and their count per zone file."""
        per_file = Counter(m.split("\n", 1)[0] for m in self.mismatches)
        return (f"{len(self.mismatches)} of {self.built} C-built replies differ from Python's "
                f"({self.asked} asked); by zone file: {dict(per_file)}\n\n"
                + "\n\n".join(self.mismatches[:most]))


def tallies() -> dict[bool, Tally]:
    """A tally for the unsigned zones (False) and one for the signed (True)."""
    return {False: Tally(), True: Tally()}


def compare(zones: list[Zone], files: dict[dns.name.Name, str], tally: dict[bool, Tally],
            rng: random.Random, most: int | None = None) -> None:
    """Ask a cold C table and the Python responder over the same zones; count each zone
    in the tally of its kind (signed or not). `files` names each zone's file (a zone
    whose file named another origin is named by its path)."""
    snapshot = Snapshot(Zones(zones))
    table = fastpath.build_table(snapshot.zones, OPTIONS, 1000)
    fastpath.add_steering(table, snapshot.steering)
    responder = Responder(OPTIONS)
    for zone in zones:
        file, kind = files.get(zone.origin, zone.source), tally[zone.signed]
        for asked in questions(zone, rng, most):
            for rdtype in asked.types:
                for variant in VARIANTS:
                    wire = query(asked.name, rdtype, variant, rng)
                    kind.asked += 1
                    got = table.answer(wire)
                    if got is None:
                        continue
                    kind.built += 1
                    expected = responder.respond(snapshot, wire, False, "127.0.0.1")[0]
                    if got != expected:
                        kind.mismatches.append(
                            f"{file}\n{dns.name.from_wire(wire, 12)[0]} "
                            f"{dns.rdatatype.to_text(rdtype)} {variant} (flags "
                            f"{wire[2]:02x}{wire[3]:02x}), query {wire.hex()}\n"
                            f"--- C:\n{decoded(got)}\n--- Python:\n{decoded(expected)}")
                    kind.kinds.update(kinds(got, rdtype, bool(OPT[variant]), asked.wildcard))


def test_unsigned_suite_zones() -> None:
    zones = list(load_zone_dir(INTEROP_ZONES))
    tally = tallies()
    compare(zones, {z.origin: f"tests/interop/zones/{z.origin}zone" for z in zones}, tally,
            random.Random(20261206))
    unsigned = tally[False]
    assert not unsigned.mismatches, unsigned.summary()
    assert unsigned.share() >= 0.75, (unsigned.built, unsigned.asked)
    assert all(unsigned.kinds[kind] for kind in KINDS), unsigned.kinds


def test_signed_suite_zones(tmp_path: Path) -> None:
    signed = sign_zones(require("kzonesign", "knot-dnssecutils"), tmp_path)
    files = {dns.name.from_text(origin): (signed.directory / f"{origin}zone",
                                          f"tests/interop/signed/source.zone as {origin} "
                                          "(signed by kzonesign)")
             for origin in signed.origins}
    files[dns.name.from_text("example.")] = (RFC5155 / "example.zone",
                                             "tests/interop/signed/rfc5155/example.zone")
    zones = []
    for path, _ in files.values():
        zone, problems = load_zone_file(path)
        assert zone is not None and zone.signed, problems
        zones.append(zone)
    tally = tallies()
    compare(zones, {origin: label for origin, (_, label) in files.items()}, tally,
            random.Random(20261207))
    signed_tally = tally[True]
    assert not signed_tally.mismatches, signed_tally.summary()
    # DO queries and RRSIG questions are Python's in a signed zone: a fifth and more
    assert signed_tally.share() >= 0.6, (signed_tally.built, signed_tally.asked)
    assert all(signed_tally.kinds[kind] for kind in KINDS), signed_tally.kinds


def test_corpus_zones(tmp_path: Path) -> None:
    entries, missing = served_entries()
    if not entries:
        pytest.skip("no corpus source here: " + "; ".join(missing[:1]))
    tally = tallies()
    rng = random.Random(20261208)
    for number, group in enumerate(batches(entries)):
        directory = tmp_path / f"batch{number}"
        write_batch(group, directory)
        files = {dns.name.from_text(e.origin): e.label for e in group}
        compare(load_zones(directory).zones, files, tally, rng, MOST)
    mismatches = tally[False].mismatches + tally[True].mismatches
    assert not mismatches, "\n\n".join(t.summary() for t in tally.values() if t.mismatches)
    if any(not m.startswith("nsd:") for m in missing):
        return  # a partial corpus (outside CI): the floors below are the whole one's
    # What C must build, unsigned and signed: none of the signed files has a CNAME or a
    # wildcard, and DO queries and RRSIG questions are Python's there.
    for signed, shapes, share in ((False, set(KINDS), 0.9),
                                  (True, {"NXDOMAIN", "NODATA", "referral", "additional"}, 0.6)):
        assert tally[signed].share() >= share, (signed, tally[signed].built, tally[signed].asked)
        assert shapes <= set(tally[signed].kinds), (signed, tally[signed].kinds)
