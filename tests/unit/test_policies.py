"""Each steering policy on its own: table-driven cases, then hypothesis properties.

Records, members and contexts are built directly (no YAML), so a case shows all its input.
"""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gslb.steering.model import (AdminState, Client, Context, Datacenter, Health, Location, Member,
                                 Pool, PolicyStep, Rule, SteeredRecord)
from gslb.steering.policies import (POLICIES, ParamKind, closest, first_n, great_circle_km, hash_,
                                    health, latency, priority, weighted)

DRAINED, DISABLED = AdminState.DRAINED, AdminState.DISABLED
DCS = {
    "us-east": Datacenter("us-east", 38.9, -77.0),  # Washington
    "eu-west": Datacenter("eu-west", 53.3, -6.3),  # Dublin
    "ap-south": Datacenter("ap-south", 1.35, 103.8),  # Singapore
    "nowhere": Datacenter("nowhere"),
}


def record(*members: Member, select: int = 1) -> SteeredRecord:
    return SteeredRecord(owner="www.example.com.", rdtype="A", ttl=30,
                         pools={"p": Pool("p", tuple(members))}, rules=(Rule("p"),),
                         chain=(), select=select, datacenters=DCS)


def ctx(network: str = "192.0.2.0/24", down: tuple[str, ...] = (), draw: int = 0,
        location: Location = Location(), rtt: dict[tuple[str, str], float] | None = None) -> Context:
    return Context(client=Client(ipaddress.ip_network(network), True, location),
                   health={c: Health(up=False, source="in-process", age=1.0) for c in down},
                   rtt=rtt or {}, draw=draw)


def run(policy, members: tuple[Member, ...], c: Context, select: int = 1, **params: object) -> tuple[str, ...]:
    step = PolicyStep(policy.__name__.rstrip("_"), tuple(params.items()))
    out, reason = policy(members, step, record(*members, select=select), c)
    assert isinstance(reason, str) and reason and "\n" not in reason
    return tuple(m.value for m in out)


def first_picks(members: tuple[Member, ...], draws) -> dict[str, int]:
    """How often each member is the weighted choice over `draws` (objects built once)."""
    rec, step, base = record(*members), PolicyStep("weighted"), ctx()
    counts = dict.fromkeys((m.value for m in members), 0)
    for draw in draws:
        out, _ = weighted(members, step, rec, Context(base.client, base.health, base.rtt, draw))
        counts[out[0].value] += 1
    return counts


A = Member("a", check="ca")
B = Member("b", check="cb")
C = Member("c")
DR = Member("dr", state=DRAINED)
DIS = Member("dis", state=DISABLED)


# --- health ---------------------------------------------------------------------------------

@pytest.mark.parametrize("members,down,expected", [
    ((A, B, C), (), ("a", "b", "c")),
    ((A, B, C), ("ca",), ("b", "c")),
    ((A, B), ("ca", "cb"), ()),
    ((A, DR), (), ("a",)),  # drained stays out while something else is up
    ((A, DR), ("ca",), ("dr",)),  # ... and answers when nothing else is
    ((A, DIS), ("ca",), ()),  # disabled never answers
    ((DIS, DR), (), ("dr",)),
    ((Member("x", check="unknown-check"),), (), ("x",)),  # no state yet counts as up
    ((), (), ()),
], ids=lambda v: repr(v) if isinstance(v, tuple) and v and isinstance(v[0], str) else None)
def test_health(members, down, expected) -> None:
    assert run(health, members, ctx(down=down)) == expected


# --- priority -------------------------------------------------------------------------------

P1a, P1b = Member("p1a", priority=1, check="c1a"), Member("p1b", priority=1, check="c1b")
P2a, P2b = Member("p2a", priority=2, check="c2a"), Member("p2b", priority=2)
P3 = Member("p3", priority=3)


@pytest.mark.parametrize("down,min_healthy,expected", [
    ((), 1, ("p1a", "p1b")),
    (("c1a",), 1, ("p1b",)),
    (("c1a", "c1b"), 1, ("p2a", "p2b")),
    (("c1a",), 2, ("p2a", "p2b")),  # group 1 has one healthy: below the threshold
    (("c1a", "c2a"), 2, ("p1b",)),  # no group reaches 2: lowest group with any healthy
    (("c1a", "c1b", "c2a"), 1, ("p2b",)),
])
def test_priority(down, min_healthy, expected) -> None:
    members = (P3, P2a, P1a, P2b, P1b)
    assert run(priority, members, ctx(down=down), min_healthy=min_healthy) == expected


def test_priority_with_nothing_healthy_is_empty() -> None:
    assert run(priority, (P1a, P1b), ctx(down=("c1a", "c1b"))) == ()


# --- weighted -------------------------------------------------------------------------------

W3, W1, W0 = Member("w3", weight=3), Member("w1", weight=1), Member("w0", weight=0)


@pytest.mark.parametrize("draw,first", [
    (0, "w3"), (3 * 2**30 - 1, "w3"), (3 * 2**30, "w1"), (2**32 - 1, "w1"),
])
def test_weighted_first_pick_splits_the_draw_range_by_weight(draw: int, first: str) -> None:
    assert run(weighted, (W3, W1, W0), ctx(draw=draw))[0] == first


def test_weighted_never_picks_weight_zero_while_a_positive_weight_exists() -> None:
    for draw in range(0, 2**32, 2**26):
        assert "w0" not in run(weighted, (W0, W1, W0), ctx(draw=draw), select=3)


def test_weighted_with_every_weight_zero_treats_them_alike() -> None:
    z1, z2 = Member("z1", weight=0), Member("z2", weight=0)
    firsts = {run(weighted, (z1, z2), ctx(draw=d))[0] for d in (0, 2**32 - 1)}
    assert firsts == {"z1", "z2"}


def test_weighted_select_n_is_a_deterministic_shuffle_of_the_positive_weights() -> None:
    members = tuple(Member(f"m{i}", weight=i) for i in range(6))
    first = run(weighted, members, ctx(draw=123456789), select=10)
    assert first == run(weighted, members, ctx(draw=123456789), select=10)
    assert sorted(first) == [f"m{i}" for i in range(1, 6)]
    assert first[:2] == run(weighted, members, ctx(draw=123456789), select=2)
    assert first[:1] == run(weighted, members, ctx(draw=123456789))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(weights=st.lists(st.integers(0, 1000), min_size=1, max_size=6).filter(any))
def test_weighted_first_pick_matches_weights_over_evenly_spread_draws(weights: list[int]) -> None:
    """Over n evenly spread draws each share is within 1/n of weight/total (exact bound)."""
    members = tuple(Member(f"m{i}", weight=w) for i, w in enumerate(weights))
    n = 2000
    counts = first_picks(members, (k * 2**32 // n for k in range(n)))
    total = sum(weights)
    for m in members:
        assert abs(counts[m.value] / n - m.weight / total) <= 1 / n + 1e-9


@settings(max_examples=25, deadline=None, derandomize=True)
@given(weights=st.lists(st.integers(0, 100), min_size=2, max_size=5).filter(any),
       seed=st.integers(0, 2**32 - 1))
def test_weighted_first_pick_matches_weights_over_random_draws(weights: list[int], seed: int) -> None:
    """Uniform random draws: every share within 0.03 of weight/total over 5000 draws
    (at least 4 standard deviations for any share; derandomized, so never flaky)."""
    members = tuple(Member(f"m{i}", weight=w) for i, w in enumerate(weights))
    rng, n = random.Random(seed), 5000
    counts = first_picks(members, (rng.getrandbits(32) for _ in range(n)))
    total = sum(weights)
    for m in members:
        assert abs(counts[m.value] / n - m.weight / total) <= 0.03


@settings(max_examples=60, deadline=None)
@given(weights=st.lists(st.integers(0, 10), min_size=1, max_size=8), draw=st.integers(0, 2**32 - 1))
def test_weighted_returns_each_eligible_member_once(weights: list[int], draw: int) -> None:
    members = tuple(Member(f"m{i}", weight=w) for i, w in enumerate(weights))
    out = run(weighted, members, ctx(draw=draw), select=len(members))
    eligible = [m.value for m in members if m.weight > 0] or [m.value for m in members]
    assert sorted(out) == sorted(eligible)


# --- closest --------------------------------------------------------------------------------

US1, US2 = Member("us1", datacenter="us-east"), Member("us2", datacenter="us-east")
EU1, AP1, NO1 = Member("eu1", datacenter="eu-west"), Member("ap1", datacenter="ap-south"), Member("no1", datacenter="nowhere")
PARIS = Location(continent="EU", country="FR", latitude=48.9, longitude=2.35)
NEW_YORK = Location(continent="NA", country="US", latitude=40.7, longitude=-74.0)
TOKYO = Location(continent="AS", country="JP", latitude=35.7, longitude=139.7)


@pytest.mark.parametrize("location,members,expected", [
    (PARIS, (US1, EU1, AP1), ("eu1",)),
    (NEW_YORK, (US1, EU1, US2, AP1), ("us1", "us2")),  # the whole nearest datacenter
    (TOKYO, (US1, EU1, AP1), ("ap1",)),
    (TOKYO, (US1, EU1, NO1), ("eu1",)),  # Dublin is nearer than Washington; no coordinates: never nearest
    (Location(country="FR"), (US1, EU1), ("us1", "eu1")),  # no client coordinates: all kept
    (PARIS, (NO1,), ("no1",)),
])
def test_closest(location, members, expected) -> None:
    assert run(closest, members, ctx(location=location)) == expected


def test_great_circle_distance() -> None:
    assert great_circle_km(0, 0, 0, 0) == 0
    assert abs(great_circle_km(0, 0, 0, 180) - 20015) < 1  # half the circumference
    assert abs(great_circle_km(48.86, 2.35, 51.51, -0.13) - 344) < 5  # Paris-London


# --- latency --------------------------------------------------------------------------------

RTT = {("NA-US", "us-east"): 20.0, ("NA-US", "eu-west"): 25.0, ("NA-US", "ap-south"): 180.0,
       ("192.0.2.0/24", "ap-south"): 5.0, ("NA", "eu-west"): 1.0}
US_LOC = Location(continent="NA", country="US", subdivision="NY")


@pytest.mark.parametrize("network,tolerance,expected", [
    ("198.51.100.0/24", 0, ("us1",)),  # region NA-US-NY unknown, NA-US known: best us-east
    ("198.51.100.0/24", 5, ("us1", "eu1")),  # eu-west within 5 ms of the best
    ("198.51.100.0/24", 500, ("us1", "eu1", "ap1")),
    ("192.0.2.0/24", 0, ("ap1",)),  # the client network's own measurement comes first
])
def test_latency(network: str, tolerance: float, expected) -> None:
    c = ctx(network=network, location=US_LOC, rtt=RTT)
    assert run(latency, (US1, EU1, AP1, NO1), c, tolerance_ms=tolerance) == expected


def test_latency_without_measurements_keeps_everyone() -> None:
    assert run(latency, (US1, EU1), ctx(location=TOKYO, rtt=RTT)) == ("us1", "eu1")


# --- hash -----------------------------------------------------------------------------------

def clients(count: int) -> list[str]:
    return [f"10.{i // 256}.{i % 256}.0/24" for i in range(count)]


def test_hash_is_sticky_and_ignores_member_order() -> None:
    members = tuple(Member(f"m{i}") for i in range(5))
    for net in clients(50):
        first = run(hash_, members, ctx(network=net))
        assert first == run(hash_, members[::-1], ctx(network=net, draw=99))
        assert sorted(first) == sorted(m.value for m in members)


def test_hash_spreads_clients_and_follows_weights() -> None:
    heavy, light = Member("heavy", weight=3), Member("light", weight=1)
    picks = [run(hash_, (heavy, light), ctx(network=net))[0] for net in clients(2000)]
    assert abs(picks.count("heavy") / 2000 - 0.75) < 0.05
    zero = Member("zero", weight=0)
    assert all(run(hash_, (zero, light), ctx(network=net))[0] == "light" for net in clients(200))


CLIENTS = [ctx(network=net) for net in clients(2000)]


@settings(max_examples=20, deadline=None, derandomize=True)
@given(n=st.integers(2, 10), data=st.data())
def test_hash_removing_one_of_n_members_moves_about_one_nth_of_clients(n: int, data) -> None:
    """Only the removed member's clients move (exact), and they are at most 1/N + 0.05 of
    2000 client networks."""
    members = tuple(Member(f"192.0.2.{i}") for i in range(n))
    gone = data.draw(st.integers(0, n - 1))
    rest = members[:gone] + members[gone + 1:]
    step, rec, moved = PolicyStep("hash"), record(*members), 0
    for c in CLIENTS:
        before = hash_(members, step, rec, c)[0][0].value
        after = hash_(rest, step, rec, c)[0][0].value
        if before != after:
            assert before == members[gone].value
            moved += 1
    assert moved / 2000 <= 1 / n + 0.05


# --- first_n, the registry ------------------------------------------------------------------

@pytest.mark.parametrize("n,expected", [(1, ("a",)), (2, ("a", "b")), (5, ("a", "b", "c"))])
def test_first_n(n: int, expected) -> None:
    assert run(first_n, (A, B, C), ctx(), n=n) == expected


def test_every_policy_is_registered_with_its_yaml_syntax_and_params() -> None:
    assert set(POLICIES) == {"health", "priority", "weighted", "closest", "latency", "hash", "first_n"}
    assert {name for name, p in POLICIES.items() if p.client_scope} == {"hash", "closest", "latency"}
    assert {name for name, p in POLICIES.items() if p.needs_coordinates} == {"closest"}
    for name, policy in POLICIES.items():
        fn = policy.run
        assert fn.__doc__ and "YAML: `" in fn.__doc__ and name in fn.__doc__, name
        for param in policy.params:  # each parameter is documented with the policy
            assert param.name in fn.__doc__, (name, param.name)


@pytest.mark.parametrize("kind,value,problem", [
    (ParamKind.COUNT, 1, None), (ParamKind.COUNT, 0, "must be an integer 1..1000"),
    (ParamKind.COUNT, 1.5, "must be an integer 1..1000"), (ParamKind.COUNT, True, "must be an integer 1..1000"),
    (ParamKind.AMOUNT, 0, None), (ParamKind.AMOUNT, 2.5, None), (ParamKind.AMOUNT, -1, "must be a number 0..1000000"),
    (ParamKind.AMOUNT, "ten", "must be a number 0..1000000"), (ParamKind.AMOUNT, None, "must be a number 0..1000000"),
    (ParamKind.COUNT, 1000, None), (ParamKind.COUNT, 1001, "must be an integer 1..1000"),
    (ParamKind.COUNT, 10**4000, "must be an integer 1..1000"),
    (ParamKind.AMOUNT, 1e6, None), (ParamKind.AMOUNT, 1e6 + 1, "must be a number 0..1000000"),
])
def test_param_kinds(kind: ParamKind, value: object, problem: str | None) -> None:
    assert kind.problem(value) == problem


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_passes_an_empty_candidate_list_through(name: str) -> None:
    out, reason = POLICIES[name].run((), PolicyStep(name), record(), ctx())
    assert out == () and reason
