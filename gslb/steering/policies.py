"""The steering policies: one small pure function each, registered in `POLICIES`.

A policy takes the candidates left by the previous step, its own `PolicyStep` (name and
parameters), the record and the request context, and returns the surviving candidates
(in preference order) with a one-line reason for `gslb explain`. Policies never read a
clock or a random source: randomness is `Context.draw`, chosen by the caller per query.

In YAML a chain is a list of names, or one-key maps for parameters:

    policies: [health, {priority: {min_healthy: 2}}, weighted]

`POLICIES` is the one registry: a `Policy` entry per name holds everything known about
the policy, for the engine (the function; for the policies that look at the client, on
which prefix length their input holds, which the engine folds into the ECS scope of the
decision) and for the loader (the parameters it accepts and their kinds; whether it needs
datacenter coordinates). Adding a policy is one function and one entry here.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from .model import AdminState, Context, Health, Member, PolicyStep, SteeredRecord, hash_slot

Candidates = tuple[Member, ...]
PolicyFn = Callable[[Candidates, PolicyStep, SteeredRecord, Context], tuple[Candidates, str]]

EARTH_RADIUS_KM = 6371.0
CLOSEST_MARGIN_KM = 1e-6  # datacenters this close in distance are equally near


def member_health(member: Member, ctx: Context) -> Health:
    """The member's health: an up/down override on its value first; else its check's
    state (`check@address`, then the bare check id, which a state file may pin); no
    check = always up; a check with no state yet counts as up."""
    override = ctx.overrides.get(member.value)
    if override is not None and override.mode in ("up", "down"):
        return Health(up=override.mode == "up", source=f"override {override.mode} {override.detail}".rstrip())
    key = member.health_key
    if key is None:
        return Health(up=True, source="static (no check)")
    known = ctx.health.get(key)
    if known is None and member.check is not None:
        known = ctx.health.get(member.check)
    if known is None:
        return Health(up=True, source="unknown (no state yet)")
    return known


def admin_state(member: Member, ctx: Context) -> AdminState:
    """The member's configured state, or drained while a `drain` override holds."""
    override = ctx.overrides.get(member.value)
    if override is not None and override.mode == "drain" and member.state is AdminState.ENABLED:
        return AdminState.DRAINED
    return member.state


def number(step: PolicyStep, key: str, default: float) -> float:
    """A numeric parameter of the step (the loader has checked its type)."""
    value = step.param(key, default)
    return float(value) if isinstance(value, (int, float)) else default


def _values(members: Candidates) -> str:
    return ", ".join(m.value for m in members) or "none"


def health(candidates: Candidates, step: PolicyStep, record: SteeredRecord, ctx: Context) -> tuple[Candidates, str]:
    """Drop members that are down or admin-disabled; drained members only if nothing else is up.

    YAML: `health` (no parameters). The engine runs it first whether the chain names it or not.
    """
    usable = tuple(m for m in candidates if m.state is not AdminState.DISABLED)
    up = tuple(m for m in usable if member_health(m, ctx).up)
    enabled = tuple(m for m in up if admin_state(m, ctx) is AdminState.ENABLED)
    down = [m.value for m in usable if m not in up]
    disabled = len(candidates) - len(usable)
    parts = [f"{len(up)} up"]
    if down:
        parts.append(f"down: {', '.join(down)}")
    if disabled:
        parts.append(f"{disabled} disabled")
    if enabled:
        drained = len(up) - len(enabled)
        if drained:
            parts.append(f"{drained} drained left out")
        return enabled, "; ".join(parts)
    if up:
        parts.append("only drained members are up: using them")
    return up, "; ".join(parts)


def priority(candidates: Candidates, step: PolicyStep, record: SteeredRecord, ctx: Context) -> tuple[Candidates, str]:
    """Keep the lowest priority group with at least `min_healthy` healthy members.

    YAML: `priority` or `{priority: {min_healthy: 2}}` (default 1). When no group reaches the
    threshold, the lowest group with any healthy member is used; its healthy members survive.
    """
    min_healthy = int(number(step, "min_healthy", 1))
    groups: dict[int, list[Member]] = {}
    for m in candidates:
        if m.state is not AdminState.DISABLED and member_health(m, ctx).up:
            groups.setdefault(m.priority, []).append(m)
    if not groups:
        return (), "no healthy member in any priority group"
    ordered = sorted(groups)
    for level in ordered:
        if len(groups[level]) >= min_healthy:
            return tuple(groups[level]), f"priority {level}: {len(groups[level])} healthy (min {min_healthy})"
    level = ordered[0]
    return tuple(groups[level]), (f"no group has {min_healthy} healthy; priority {level} "
                                  f"has {len(groups[level])}")


def _positive(candidates: Candidates) -> tuple[Candidates, bool]:
    """Weight-0 members count only when every member has weight 0 (then all weigh 1)."""
    positive = tuple(m for m in candidates if m.weight > 0)
    return (positive, False) if positive else (candidates, True)


def _splitmix(state: int) -> tuple[int, int]:
    """One step of splitmix64: (next state, 32-bit output). Pure arithmetic."""
    state = (state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return state, (z ^ (z >> 31)) >> 32


def _pick(pool: list[Member], weights: list[int], draw: int) -> int:
    """Index chosen by `draw` in [0, 2**32), each with probability weight / total."""
    point = draw * sum(weights) >> 32
    for i, w in enumerate(weights):
        if point < w:
            return i
        point -= w
    return len(pool) - 1  # unreachable for draw < 2**32


def weighted(candidates: Candidates, step: PolicyStep, record: SteeredRecord, ctx: Context) -> tuple[Candidates, str]:
    """Weighted random choice of `select` members: each pick has probability weight / total.

    YAML: `weighted`. Weight 0 is never chosen while a positive weight exists. With
    `select: N` > 1 it is a weighted shuffle without replacement cut to N distinct members,
    derived deterministically from `Context.draw` (the first pick uses the draw itself).
    """
    if not candidates:
        return (), "no candidates"
    pool, all_zero = _positive(candidates)
    remaining = list(pool)
    weights = [max(m.weight, 1) if all_zero else m.weight for m in remaining]
    total = sum(weights)
    order: list[Member] = []
    draw, state = ctx.draw % 2**32, ctx.draw
    while remaining and len(order) < max(record.select, 1):
        i = _pick(remaining, weights, draw)
        order.append(remaining.pop(i))
        weights.pop(i)
        state, draw = _splitmix(state)
    first = order[0]
    share = max(first.weight, 1) if all_zero else first.weight
    reason = f"the draw at {ctx.draw / 2**32:.3f} of the weights picks {first.value} (weight {share} of {total})"
    if len(pool) < len(candidates):
        reason += f"; weight 0 left out: {_values(tuple(m for m in candidates if m not in pool))}"
    return tuple(order), reason


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def closest(candidates: Candidates, step: PolicyStep, record: SteeredRecord, ctx: Context) -> tuple[Candidates, str]:
    """Keep the members of the datacenter nearest to the client (great-circle distance).

    YAML: `closest`. Needs coordinates for the members' datacenters (`datacenters:`). When
    the client location has no coordinates, every candidate survives.
    """
    loc = ctx.client.location
    if loc.latitude is None or loc.longitude is None:
        return candidates, "client location unknown: all kept"
    distance: dict[Member, float] = {}
    for m in candidates:
        dc = record.datacenters.get(m.datacenter or "")
        if dc is not None and dc.latitude is not None and dc.longitude is not None:
            distance[m] = great_circle_km(loc.latitude, loc.longitude, dc.latitude, dc.longitude)
    if not distance:
        return candidates, "no candidate has datacenter coordinates: all kept"
    best = min(distance.values())
    kept = tuple(m for m in candidates if m in distance and distance[m] <= best + CLOSEST_MARGIN_KM)
    return kept, f"nearest datacenter {kept[0].datacenter} at {best:.0f} km"


def region_keys(continent: str | None, country: str | None, subdivision: str | None) -> list[str]:
    """The region keys `rtt_key` tries for a place, narrowest first (`NA-US-CA`, `NA-US`,
    `NA`); the latency classes of gslb.steering.located read the same list."""
    keys = []
    if continent:
        region = [continent, country, subdivision]
        for n in (3, 2, 1):
            if all(region[:n]):
                keys.append("-".join(str(part) for part in region[:n]))
    return keys


def rtt_key(ctx: Context, datacenters: set[str]) -> str | None:
    """The first key with a measurement for any of `datacenters`: the client network
    (`192.0.2.0/24`), then the networks that contain it, longest first (`10.0.0.0/8`),
    then its region, narrowest first (`NA-US-CA`, `NA-US`, `NA`)."""
    loc = ctx.client.location
    network = ctx.client.network
    keys = [str(network)]
    if any("/" in key for key, _ in ctx.rtt):
        keys += [str(network.supernet(new_prefix=p)) for p in range(network.prefixlen - 1, -1, -1)]
    keys += region_keys(loc.continent, loc.country, loc.subdivision)
    for key in keys:
        if any((key, dc) in ctx.rtt for dc in datacenters):
            return key
    return None


def latency(candidates: Candidates, step: PolicyStep, record: SteeredRecord, ctx: Context) -> tuple[Candidates, str]:
    """Keep the datacenters whose RTT from the client is within `tolerance_ms` of the best.

    YAML: `latency` or `{latency: {tolerance_ms: 10}}` (default 0). RTTs come from
    `Context.rtt`, keyed by the client network or region (see `rtt_key`). Members without a
    measurement are dropped when any has one; with no measurement at all, all are kept.
    """
    tolerance = number(step, "tolerance_ms", 0)
    dcs = {m.datacenter for m in candidates if m.datacenter}
    key = rtt_key(ctx, dcs)
    if key is None:
        return candidates, "no RTT measured for this client: all kept"
    rtt = {dc: ctx.rtt[(key, dc)] for dc in dcs if (key, dc) in ctx.rtt}
    best = min(rtt.values())
    near = {dc for dc, ms in rtt.items() if ms <= best + tolerance}
    kept = tuple(m for m in candidates if m.datacenter in near)
    shown = ", ".join(f"{dc} {rtt[dc]:g} ms" for dc in sorted(near, key=rtt.__getitem__))
    return kept, f"from {key}: {shown} (best {best:g} ms + {tolerance:g})"


def _unit(*parts: str) -> float:
    """A stable number in (0, 1) from the parts (blake2b, 53 bits)."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest()
    return ((int.from_bytes(digest, "big") >> 11) + 0.5) / 2**53


def hash_(candidates: Candidates, step: PolicyStep, record: SteeredRecord, ctx: Context) -> tuple[Candidates, str]:
    """Order members by weighted rendezvous hashing of the client network: sticky answers.

    YAML: `hash`. The client network goes to one of `HASH_SLOTS` slots (`hash_slot`),
    and the slot is what is hashed with each member, so an answer holds for every
    network of its slot and is cached per slot, decided in C as well. Removing one of N
    members moves only the clients it served (about 1/N); adding one takes about
    1/(N+1). Weight 0 counts only when every weight is 0.
    """
    if not candidates:
        return (), "no candidates"
    pool, all_zero = _positive(candidates)
    slot = hash_slot(ctx.client.network)
    client = f"slot {slot}"

    def score(m: Member) -> float:
        return (1 if all_zero else m.weight) / -math.log(_unit(client, m.value))

    order = tuple(sorted(pool, key=score, reverse=True))
    return order, f"{ctx.client.network} hashes to slot {slot}: {order[0].value}"


def first_n(candidates: Candidates, step: PolicyStep, record: SteeredRecord, ctx: Context) -> tuple[Candidates, str]:
    """Keep the first `n` candidates in the current order.

    YAML: `first_n` or `{first_n: {n: 2}}` (default 1). `select: N` on the record already
    cuts the answer to N; `first_n` cuts inside the chain (before later policies).
    """
    n = int(number(step, "n", 1))
    return candidates[:n], f"first {n} of {len(candidates)}"


def _location_prefix(ctx: Context) -> int:
    network = ctx.client.location.network
    return network.prefixlen if network is not None else ctx.client.network.prefixlen


def _latency_prefix(ctx: Context, record: SteeredRecord) -> int:
    """Per-network RTTs (keys like `192.0.2.0/24`) make the answer depend on the client
    network itself; region keys only on the location."""
    if any("/" in key for key, _ in ctx.rtt):
        return ctx.client.network.prefixlen
    return _location_prefix(ctx)


class ParamKind(enum.Enum):
    """What a policy parameter's YAML value must be (the text completes "must be ...")."""

    COUNT = "an integer 1..1000"
    AMOUNT = "a number 0..1000000"

    def problem(self, value: object) -> str | None:
        """Why `value` (a YAML scalar's Python value) is not of this kind, or None. The
        bounds keep every decision's arithmetic in range (a 4,000-digit min_healthy
        once overflowed a float on every query)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            ok = False
        elif self is ParamKind.COUNT:
            ok = isinstance(value, int) and 1 <= value <= 1000
        else:
            ok = 0 <= value <= 1_000_000
        return None if ok else f"must be {self.value}"


@dataclass(frozen=True)
class Param:
    """A parameter a policy accepts in YAML (`{priority: {min_healthy: 2}}`)."""

    name: str
    kind: ParamKind


ClientScope = Callable[[Context, SteeredRecord], int]


@dataclass(frozen=True)
class Policy:
    """One policy: its function and what the engine and the loader need to know of it.

    `client_scope`, for a policy that looks at the client, gives the prefix length on
    which its input holds; `needs_coordinates` makes the loader require a datacenter with
    latitude and longitude for every member."""

    run: PolicyFn
    params: tuple[Param, ...] = ()
    client_scope: ClientScope | None = None
    needs_coordinates: bool = False


POLICIES: dict[str, Policy] = {
    "health": Policy(health),
    "priority": Policy(priority, (Param("min_healthy", ParamKind.COUNT),)),
    "weighted": Policy(weighted),
    "closest": Policy(closest, client_scope=lambda ctx, record: _location_prefix(ctx),
                      needs_coordinates=True),
    "latency": Policy(latency, (Param("tolerance_ms", ParamKind.AMOUNT),), client_scope=_latency_prefix),
    "hash": Policy(hash_, client_scope=lambda ctx, record: ctx.client.network.prefixlen),
    "first_n": Policy(first_n, (Param("n", ParamKind.COUNT),)),
}
