"""Pre-signed zones (signed at test time by kzonesign) through the loader, the responder
with its answer cache, zone transfer and `gslb check`: no process, real signed files."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.name
import dns.rdatatype
import dns.zone
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gslb.dns.answers import AnswerCache, WireIndex
from gslb.dns.handler import Responder
from gslb.dns.render import render
from gslb.dns.resolver import Zones, resolve
from gslb.dns.wire import parse_query
from gslb.dns.zone import Zone
from gslb.load.zonefile import load_zone_file
from tests.interop.signing import SignedZones, sign_zones
from tests.redis_server import require

NSEC, NSEC3, RRSIG = dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.RRSIG


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedZones:
    return sign_zones(require("kzonesign", "knot-dnssecutils"), tmp_path_factory.mktemp("signed"))


@pytest.fixture(scope="module")
def zones(signed: SignedZones) -> list[Zone]:
    loaded = []
    for origin in signed.origins:
        zone, problems = load_zone_file(signed.directory / f"{origin}zone")
        assert problems == [] and zone is not None
        loaded.append(zone)
    return loaded


class State:
    def __init__(self, zones: list[Zone]) -> None:
        self.zones = Zones(zones)
        self.answers = AnswerCache(WireIndex(zones))
        self.steering = None


def ask(state: State, name: str, rdtype: str = "A", do: bool = True) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, want_dnssec=do, use_edns=0)
    wire = Responder().respond(state, query.to_wire(), False, "127.0.0.1")[0]
    return dns.message.from_wire(wire)


def proof(reply: dns.message.Message) -> set[str]:
    return {r.name.to_text() for r in reply.authority if r.rdtype in (NSEC, NSEC3)}


def test_signatures_over_several_types_at_one_name_load(zones: list[Zone]) -> None:
    """The crash of issue 12: RRSIGs covering A and AAAA at www in one RRset."""
    for zone in zones:
        node = zone.node(dns.name.from_text("www", zone.origin))
        covered = sorted(r.covers for r in node.values() if r.rdtype == RRSIG)
        assert covered == [dns.rdatatype.A, dns.rdatatype.AAAA] + (
            [NSEC] if zone.origin.to_text() == "nsec.test." else [])


def test_zone_transfer_sends_every_record_of_the_file(signed: SignedZones,
                                                      zones: list[Zone]) -> None:
    for zone in zones:
        reference = dns.zone.from_file(str(signed.directory / f"{zone.origin}zone"),
                                       zone.origin, relativize=False)
        expected = sum(len(rdataset) for _, rdataset in reference.iterate_rdatasets())
        sent = sum(len(rrset) for rrset in zone.rrsets())
        assert sent == zone.record_count() == expected


def test_cached_denials_are_per_name_and_per_do(zones: list[Zone]) -> None:
    """NXDOMAIN proofs name the query name: a cached DO answer for one missing name must
    not answer another, and a DO answer never answers a query without DO."""
    state = State(zones)
    fresh = State(zones)
    for origin in ("nsec.test.", "nsec3.test."):
        # two missing names with different proofs (with NSEC3 where a name falls depends
        # on its hash under this run's random salt), then the first again
        first = f"a0.{origin}"
        other = next(name for name in (f"m{n}.{origin}" for n in range(200))
                     if proof(ask(fresh, name)) != proof(ask(fresh, first)))
        names = [first, other, f"zz9.{origin}", first]
        proofs = []
        for name in names:
            cached = ask(state, name)
            assert cached.rcode() == 3 and proof(cached) == proof(ask(fresh, name))
            proofs.append(proof(cached))
            plain = ask(state, name, do=False)
            assert not proof(plain) and all(r.rdtype != RRSIG for r in plain.authority)
        assert proofs[0] == proofs[3] and len({frozenset(p) for p in proofs}) > 1
    assert state.answers.hits >= 2


def _full_path(zones: Zones, wire: bytes) -> bytes:
    query = parse_query(wire)
    assert query is not None and query.qname is not None
    do = query.edns is not None and query.edns.do
    result = resolve(zones, query.qname, query.qtype, dnssec=do)
    responder = Responder()
    return render(query, result, responder._limit(query, False), responder.options.max_udp_payload)


def test_cached_signed_answers_equal_the_full_path_byte_for_byte(zones: list[Zone]) -> None:
    """Denial and wildcard answers with DO are shared by the missing names of one gap of
    the NSEC or NSEC3 chain (`Denial.gap`). Every name of the zones, and missing names
    at every depth around them (under wildcards, empty non-terminals, delegations, the
    DNAME), in every case, asked with and without DO through a cache warmed by other
    names, must give the bytes the full path gives for that very name."""
    rng = random.Random(20261130)
    names: list[str] = []
    for zone in zones:
        origin = zone.origin.to_text()
        for owner in zone.records:
            text = dns.name.from_wire(owner, 0)[0].to_text()
            names += [text, f"nx{rng.randrange(10**6)}.{text}", f"q.{rng.randrange(99)}.{text}"]
        for label in ("0", "a", "b", "m", "n", "t", "w", "x", "zz", "zzzz", "~"):
            names.append(f"{label}{rng.randrange(10**4)}.{origin}")
    queries = []
    for name in names:
        for rdtype in ("A", "TXT", "NSEC", "DS", "MX", "AAAA", "NS", "CNAME"):
            for do in (True, True, False):
                spelled = "".join(c.upper() if rng.random() < 0.5 else c for c in name)
                query = dns.message.make_query(spelled, rdtype, want_dnssec=do, use_edns=0)
                query.id = rng.randrange(65536)
                queries.append(query.to_wire())
    served = Zones(zones)
    warm = State(zones)
    responder = Responder()
    rng.shuffle(queries)
    for wire in queries:
        responder.respond(warm, wire, False, "127.0.0.1")
    rng.shuffle(queries)
    hits = warm.answers.hits
    for wire in queries:
        expected = _full_path(served, wire)
        got = responder.respond(warm, wire, False, "127.0.0.1")
        assert got == [expected], (dns.message.from_wire(wire), dns.message.from_wire(got[0]),
                                   dns.message.from_wire(expected))
    assert warm.answers.hits - hits > len(queries) * 0.9  # the warm cache really answered


def test_a_random_subdomain_flood_with_do_shares_one_entry_per_gap(zones: list[Zone]) -> None:
    """Validating resolvers set DO on every query: 1,000 random missing names per signed
    zone must not become 1,000 cache entries, and each reply must prove its own name."""
    rng = random.Random(11)
    state = State(zones)
    fresh = State(zones)
    for zone in zones:
        before = len(state.answers)
        origin = zone.origin.to_text()
        for index in range(1000):
            label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randrange(1, 30)))
            name = f"{label}.{origin}"
            reply = ask(state, name)
            assert reply.rcode() == 3 and reply.question[0].name == dns.name.from_text(name)
            if index % 50 == 0:
                assert proof(reply) == proof(ask(fresh, name))
        chain = len(zone.denial.hashes or zone.denial.nsec_owners)  # type: ignore[union-attr]
        assert len(state.answers) - before <= chain  # one entry per gap at most, not 1,000


def test_check_says_which_zones_are_signed(signed: SignedZones) -> None:
    done = subprocess.run([sys.executable, "-m", "gslb.cli", "check", "--zones",
                           str(signed.directory)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = sorted(line.split(": ", 1)[1] for line in done.stdout.splitlines())
    assert [line.split(", ", 2)[0] for line in lines] == [f"zone {o} serial 2026112901"
                                                          for o in sorted(signed.origins)]
    assert [line.rsplit(", ", 1)[1] for line in lines] == [
        "DNSSEC-signed (NSEC): ok", "DNSSEC-signed (NSEC3): ok", "DNSSEC-signed (NSEC3): ok"]


def test_check_reports_steered_names_in_a_signed_zone(signed: SignedZones, tmp_path: Path) -> None:
    zones_dir = tmp_path / "zones"
    zones_dir.mkdir()
    text = (signed.directory / "nsec.test.zone").read_text()
    (zones_dir / "nsec.test.zone").write_text(text)
    (zones_dir / "nsec.test.gslb.yaml").write_text(
        "records:\n  web.nsec.test.:\n    - type: A\n"
        "      pools: {p: {members: [192.0.2.10]}}\n      rules: [{pool: p}]\n")
    done = subprocess.run([sys.executable, "-m", "gslb.cli", "check", "--zones", str(zones_dir)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "the zone nsec.test. is DNSSEC-signed: steered answers cannot be pre-signed" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


QUESTIONS = [(name, rdtype) for name in ("@", "www", "nothere", "a.b.wild", "b.ent", "x.deleg",
                                         "x.secure", "deleg", "tonx", "host.olddn", "zz.zz")
             for rdtype in ("A", "DS", "NSEC", "RRSIG")]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_signed_zone_missing_records_still_answers(signed: SignedZones, tmp_path: Path,
                                                     data: st.DataObject) -> None:
    """A pre-signed file with lines lost (a broken chain, signatures or NSEC3 records
    missing) either does not load, with reasons, or answers every DO question: no
    exception from the proofs' lookups."""
    origin = data.draw(st.sampled_from(signed.origins))
    lines = (signed.directory / f"{origin}zone").read_text().splitlines()
    dropped = data.draw(st.sets(st.integers(0, len(lines) - 1), max_size=len(lines) // 2))
    path = tmp_path / f"{origin}zone"
    path.write_text("\n".join(line for i, line in enumerate(lines) if i not in dropped) + "\n")
    zone, problems = load_zone_file(path)
    if zone is None:
        assert problems
        return
    state = State([zone])
    for name, rdtype in QUESTIONS:
        reply = ask(state, origin if name == "@" else f"{name}.{origin}", rdtype)
        assert reply.rcode() in (0, 3)


def test_expired_and_expiring_signatures_are_warned_about(tmp_path: Path) -> None:
    kzonesign = require("kzonesign", "knot-dnssecutils")
    now = int(time.time())
    for days_ago, wording in ((30, "expired at"), (12, "expire at")):
        signed = sign_zones(kzonesign, tmp_path / str(days_ago), ["nsec.test."],
                            when=now - days_ago * 86400)
        path = signed.directory / "nsec.test.zone"
        warnings: list = []
        zone, problems = load_zone_file(path, warnings)
        assert zone is not None and problems == []  # still served: the operator decides
        assert len(warnings) == 1 and f"the zone's signatures {wording} " in str(warnings[0])
        assert str(warnings[0]).startswith(f"{path}:")
    fresh: list = []
    load_zone_file(sign_zones(kzonesign, tmp_path / "now", ["nsec.test."]).directory
                   / "nsec.test.zone", fresh)
    assert fresh == []


def test_a_cached_denial_never_names_another_query_as_an_nsec3_owner(zones: list[Zone]) -> None:
    """A query for a name that is itself an NSEC3 owner (a hash label) got a denial whose
    NSEC3 was written as a pointer to the question; the cached answer, reused for a name
    below it in the same gap, then showed that NSEC3 (and its RRSIG) owned by the new
    query name: a forged owner a validator rejects. Every NSEC3 and RRSIG owner in a
    reply must be one of the zone's."""
    zone = next(z for z in zones if z.origin.to_text() == "nsec3.test.")
    owners = {rrset.name for rrset in zone.rrsets() if rrset.rdtype == NSEC3}
    state = State(zones)
    for owner in sorted(owners)[:4]:
        for name in (owner, dns.name.from_text("rzhwxhx7", owner),
                     dns.name.from_text("a.b", owner)):
            reply = ask(state, name.to_text())  # parsed by dnspython: a bad owner raises
            shown = {r.name for r in reply.authority if r.rdtype in (NSEC3, RRSIG)
                     and (r.rdtype == NSEC3 or r.covers == NSEC3)}
            assert shown <= owners, (name, shown - owners)
