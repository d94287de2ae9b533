"""Steering on the DNS path, pure: `Responder.respond` on a Snapshot that carries a
`Steering`, no sockets. What is cached, for whom, with which ECS scope."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dns.edns
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from gslb.dns.handler import Responder
from gslb.dns.resolver import Zones
from gslb.snapshot import Snapshot
from gslb.steering.front import DRAW_SLOTS, Steering
from gslb.steering.model import (AllDown, Health, Member, PolicyStep, Pool, Rule,
                                 SteeredRecord)
from tests.unit.test_resolver import load_served_zones

ZONE = """\
$ORIGIN example.test.
$TTL 3600
@      IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300
       IN NS  ns1.example.test.
ns1    IN A   192.0.2.53
alias  IN CNAME geo.example.test.
walias IN CNAME www2.example.test.
"""
ORIGIN = "example.test."


def record(owner: str, pools: dict[str, list[Member]], rules: list[Rule],
           chain: tuple[str, ...] = ("health", "weighted"), rdtype: str = "A", ttl: int = 30,
           select: int = 1, all_down: AllDown = AllDown.FAIL_OPEN,
           all_down_pool: str | None = None,
           fallback: dict[str, str] | None = None) -> SteeredRecord:
    fallback = fallback or {}
    return SteeredRecord(
        owner=f"{owner}.{ORIGIN}", rdtype=rdtype, ttl=ttl,
        pools={name: Pool(name, tuple(members), fallback.get(name))
               for name, members in pools.items()},
        rules=tuple(rules), chain=tuple(PolicyStep(step) for step in chain), select=select,
        all_down=all_down, all_down_pool=all_down_pool)


WWW2 = record("www2", {"web": [Member("192.0.2.10", weight=3), Member("192.0.2.11", weight=1),
                               Member("192.0.2.12", weight=0)]}, [Rule("web")])
GEO = record("geo", {"internal": [Member("10.0.0.80")],
                     "public": [Member("192.0.2.30"), Member("198.51.100.30")]},
             [Rule("internal", subnets=(ipaddress.ip_network("10.0.0.0/8"),)), Rule("public")],
             chain=("health", "priority"))
# A steered CNAME into another steered name: the answer depends on both decisions.
MEDIA = record("media", {"p": [Member("geo.example.test.")]}, [Rule("p")], chain=("health",),
               rdtype="CNAME")


def api(all_down: AllDown, pool: str | None = None) -> SteeredRecord:
    return record("api", {"main": [Member("192.0.2.20", priority=1, check="primary"),
                                   Member("192.0.2.21", priority=2, check="secondary")],
                          "dr": [Member("198.51.100.20", check="dr")]},
                  [Rule("main")], chain=("health", "priority"), ttl=20,
                  all_down=all_down, all_down_pool=pool, fallback={"main": "dr"})


def records(*steered: SteeredRecord) -> dict[tuple[str, str], SteeredRecord]:
    return {(r.owner, r.rdtype): r for r in steered}


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> Zones:
    return load_served_zones(tmp_path_factory.mktemp("front"), {"example.test.zone": ZONE})


def snapshot_for(zones: Zones, steering: Steering) -> Snapshot:
    return Snapshot(Zones()).replaced_by(list(zones), steering=steering)


@pytest.fixture
def snap(zones: Zones) -> Snapshot:
    return snapshot_for(zones, Steering(records(WWW2, GEO, MEDIA, api(AllDown.BACKUP_POOL, "dr"))))


def ask(snapshot: Snapshot, name: str, rdtype: str = "A", client: str = "192.0.2.1",
        ecs: str | None = None, draw: int = 0, qid: int = 1) -> tuple[bytes, dns.message.Message]:
    options = [dns.edns.ECSOption.from_text(ecs)] if ecs else []
    query = dns.message.make_query(f"{name}.{ORIGIN}", rdtype, use_edns=0 if ecs else None,
                                   options=options)
    query.id = qid
    [wire] = Responder().respond(snapshot, query.to_wire(), False, client, draw)
    return wire, dns.message.from_wire(wire)


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rrset in reply.answer for rd in rrset
                  if rrset.rdtype == dns.rdatatype.A)


def scope(reply: dns.message.Message) -> int | None:
    found = [o.scopelen for o in reply.options if isinstance(o, dns.edns.ECSOption)]
    return found[0] if found else None


def test_same_block_and_slot_share_one_cached_answer(snap: Snapshot) -> None:
    first, reply = ask(snap, "geo", client="10.1.2.3", qid=1)
    misses, hits = snap.answers.misses, snap.answers.hits
    second, _ = ask(snap, "geo", client="10.200.7.9", qid=2)  # same /8 block of the rule map
    assert addresses(reply) == ["10.0.0.80"]
    assert second[2:] == first[2:] and second[:2] != first[:2]  # byte-identical, IDs aside
    assert (snap.answers.hits, snap.answers.misses) == (hits + 1, misses)
    # With ECS: the same, but for the echoed address at the end of the message.
    a, reply_a = ask(snap, "geo", ecs="10.1.2.0/24")
    b, reply_b = ask(snap, "geo", ecs="10.77.0.0/24")
    assert (addresses(reply_a), scope(reply_a)) == (addresses(reply_b), scope(reply_b)) == (["10.0.0.80"], 8)
    assert snap.answers.hits == hits + 2
    assert a[:-3] == b[:-3] and a[-3:] == bytes([10, 1, 2]) and b[-3:] == bytes([10, 77, 0])


def test_different_blocks_get_their_own_answer_and_scope(snap: Snapshot) -> None:
    _, internal = ask(snap, "geo", ecs="10.1.2.0/24")
    _, public = ask(snap, "geo", ecs="192.0.2.0/24")
    _, public6 = ask(snap, "geo", ecs="2001:db8::/56")
    assert (addresses(internal), scope(internal)) == (["10.0.0.80"], 8)
    # 192.0.2.0 is in 128.0.0.0/1, the widest aligned block that misses 10.0.0.0/8.
    assert (addresses(public), scope(public)) == (["192.0.2.30"], 1)
    assert (addresses(public6), scope(public6)) == (["192.0.2.30"], 0)  # no IPv6 rule at all
    _, static = ask(snap, "ns1", ecs="10.1.2.0/24")
    assert (addresses(static), scope(static)) == (["192.0.2.53"], 0)
    # A source too short to decide on (0.0.0.0/4 holds 10/8 and the rest): the answer for
    # its first address holds only on /5 (0.0.0.0/5 misses 10/8), longer than the source
    # (RFC 7871 7.2.1), so a resolver will not reuse it for 10.x clients.
    _, short = ask(snap, "geo", ecs="0.0.0.0/4")
    assert (addresses(short), scope(short)) == (["192.0.2.30"], 5)


def test_draw_slots_pick_weighted_answers(snap: Snapshot) -> None:
    seen = {}
    for slot in range(DRAW_SLOTS):  # the slot is the draw modulo DRAW_SLOTS
        _, reply = ask(snap, "www2", draw=slot + DRAW_SLOTS * 12345)
        seen[slot] = addresses(reply)
    counts = {a: sum(v == [a] for v in seen.values()) for a in ("192.0.2.10", "192.0.2.11", "192.0.2.12")}
    assert counts == {"192.0.2.10": 48, "192.0.2.11": 16, "192.0.2.12": 0}  # exactly 3:1 over slots
    # The slot, not the exact draw, is the key: any draw in a slot gets the slot's answer.
    for slot in (0, 40, 63):
        for draw in (slot, slot + DRAW_SLOTS * 999, 2**32 - DRAW_SLOTS + slot):
            assert addresses(ask(snap, "www2", draw=draw)[1]) == seen[slot]


def test_cname_chain_into_a_steered_name_is_steered_per_client_and_never_cached(snap: Snapshot) -> None:
    before = len(snap.answers)
    for client, expected in [("10.1.2.3", "10.0.0.80"), ("192.0.2.1", "192.0.2.30"),
                             ("10.1.2.3", "10.0.0.80"), ("192.0.2.1", "192.0.2.30")]:
        _, reply = ask(snap, "alias", client=client)
        assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
        assert addresses(reply) == [expected]
    _, reply = ask(snap, "alias", ecs="10.9.0.0/24")
    assert (addresses(reply), scope(reply)) == (["10.0.0.80"], 8)  # the steered target's scope
    assert len(snap.answers) == before


def test_steered_cname_into_a_steered_name_is_keyed_by_both(snap: Snapshot) -> None:
    """media (steered CNAME, nothing client-dependent) -> geo (steered by subnet): a cached
    media answer for one client must not reach a client in another geo block."""
    for client, expected in [("192.0.2.1", "192.0.2.30"), ("10.1.2.3", "10.0.0.80"),
                             ("192.0.2.1", "192.0.2.30")]:
        _, reply = ask(snap, "media", client=client)
        assert reply.answer[0].rdtype == dns.rdatatype.CNAME
        assert addresses(reply) == [expected], client
    _, reply = ask(snap, "media", ecs="10.9.0.0/24")
    assert scope(reply) == 8


def test_other_types_at_a_steered_name_are_nodata(snap: Snapshot) -> None:
    for rdtype in ("AAAA", "MX", "TXT"):
        _, reply = ask(snap, "www2", rdtype)
        assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
        assert [rrset.rdtype for rrset in reply.authority] == [dns.rdatatype.SOA]
    _, reply = ask(snap, "nothere")
    assert reply.rcode() == dns.rcode.NXDOMAIN


@pytest.mark.parametrize("mode,rcode", [(AllDown.SERVFAIL, dns.rcode.SERVFAIL),
                                        (AllDown.NODATA, dns.rcode.NOERROR)])
def test_all_down_servfail_and_nodata(zones: Zones, mode: AllDown, rcode: int) -> None:
    down = {c: Health(up=False, source="test") for c in ("primary", "secondary", "dr")}
    snapshot = snapshot_for(zones, Steering(records(api(mode)), health=down, version=1))
    _, reply = ask(snapshot, "api")
    assert reply.rcode() == rcode and not reply.answer
    if mode is AllDown.NODATA:
        assert [rrset.rdtype for rrset in reply.authority] == [dns.rdatatype.SOA]
    _, again = ask(snapshot, "api", qid=9)  # the same from the cache
    assert again.rcode() == rcode and not again.answer


def test_failover_and_backup_pool(zones: Zones) -> None:
    def answer(**health: bool) -> list[str]:
        state = {c: Health(up=up, source="test") for c, up in health.items()}
        steering = Steering(records(api(AllDown.BACKUP_POOL, "dr")), health=state)
        return addresses(ask(snapshot_for(zones, steering), "api")[1])

    assert answer() == ["192.0.2.20"]
    assert answer(primary=False) == ["192.0.2.21"]
    assert answer(primary=False, secondary=False) == ["198.51.100.20"]
    assert answer(primary=False, secondary=False, dr=False) == ["198.51.100.20"]  # backup_pool


def test_state_version_is_part_of_the_key(zones: Zones) -> None:
    steered = records(api(AllDown.BACKUP_POOL, "dr"))
    up = Steering(steered, version=1)
    snapshot = snapshot_for(zones, up)
    assert addresses(ask(snapshot, "api")[1]) == ["192.0.2.20"]
    # A new Steering with the primary down: through a new snapshot, as the server swaps it in ...
    down = Steering(steered, health={"primary": Health(up=False, source="test")}, version=2)
    assert addresses(ask(snapshot.replaced_by(list(zones), steering=down), "api")[1]) == ["192.0.2.21"]
    # ... and even on the same answer cache, because the version is in the key.
    snapshot.steering = down
    assert addresses(ask(snapshot, "api")[1]) == ["192.0.2.21"]
    client = up.client("192.0.2.1", None)
    owner = b"\x03api\x07example\x04test\x00"
    assert up.bucket(owner, dns.rdatatype.A, client, 0) != down.bucket(owner, dns.rdatatype.A, client, 0)


def test_last_known_good_survives_a_new_state_reading(zones: Zones) -> None:
    """A reload builds a new Steering; last_known_good must still know the earlier answer."""
    steered = records(api(AllDown.LAST_KNOWN_GOOD))
    before = Steering(steered, health={"primary": Health(up=False, source="test")}, version=1)
    assert addresses(ask(snapshot_for(zones, before), "api")[1]) == ["192.0.2.21"]
    down = {c: Health(up=False, source="test") for c in ("primary", "secondary", "dr")}
    after = Steering(steered, health=down, version=2, previous=before)
    assert addresses(ask(snapshot_for(zones, after), "api")[1]) == ["192.0.2.21"]
    # Never asked before the change (a supervisor that does not answer queries): the
    # answer the previous state gave is still the last known good one.
    fresh = Steering(steered, health={"primary": Health(up=False, source="test")}, version=1)
    after = Steering(steered, health=down, version=2, previous=fresh)
    assert addresses(ask(snapshot_for(zones, after), "api")[1]) == ["192.0.2.21"]


def test_ecs_source_zero_gets_scope_zero(snap: Snapshot) -> None:
    """SOURCE PREFIX-LENGTH 0: the decision uses the resolver's address, which the option's
    ADDRESS (0.0.0.0) does not name, so no scope may be claimed for it."""
    _, reply = ask(snap, "geo", client="10.1.2.3", ecs="0.0.0.0/0")
    assert (addresses(reply), scope(reply)) == (["10.0.0.80"], 0)
    _, reply = ask(snap, "geo", client="192.0.2.1", ecs="0.0.0.0/0")
    assert (addresses(reply), scope(reply)) == (["192.0.2.30"], 0)


def test_records_with_the_same_rules_share_one_rule_map(zones: Zones) -> None:
    # With a City database a rule map is megabytes: names with the same rules (the usual
    # case) share one, and the native table holds its blocks rather than a copy each.
    same = record("geo2", {"internal": [Member("10.0.0.81")], "public": [Member("192.0.2.31")]},
                  list(GEO.rules), chain=("health", "priority"))
    steering = Steering(records(WWW2, GEO, same))
    assert steering.rule_maps[(same.owner, "A")] is steering.rule_maps[(GEO.owner, "A")]
    assert steering.rule_maps[(WWW2.owner, "A")] is not steering.rule_maps[(GEO.owner, "A")]
    _, reply = ask(snapshot_for(zones, steering), "geo2", ecs="10.1.2.0/24")
    assert addresses(reply) == ["10.0.0.81"] and scope(reply) == 8
