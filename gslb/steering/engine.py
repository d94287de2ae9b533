"""The steering engine: one record and one request context in, one `Decision` out.

`decide` walks the same steps for the DNS path and for `gslb explain`, so they cannot
disagree; the DNS path ignores the trace, `format_trace` prints it.

1. Client and location: recorded in the trace as given (the geo step classified them).
2. Rule: the first rule whose subnet contains the client network, whose geo code matches
   the location (continent `EU`, country `FR` or `EU-FR`, subdivision `NA-US-CA`) or whose
   ASN matches; a rule without conditions matches everyone. `Context.rule_match`, when
   the caller has it from `geo.RuleMap`, replaces this search (same answer, wider scope).
3. Pool: the rule's pool goes through the policy chain (`health` always runs first, named
   there or not). Nothing left: its `fallback` pool, and so on (a loop stops the walk).
4. All down: every pool exhausted (or no rule matched) -> the record's `all_down`.
5. The survivors, in order, cut to `select` (1 for CNAME), are the answer.

Scope (ECS SCOPE PREFIX-LENGTH): 0 when nothing client-dependent was used. Otherwise the
narrowest of the prefixes the client-dependent inputs hold on, capped at the client's own
prefix (every address in the client network gets the same decision):
- rules: the `rule_match` network; without it, for each rule tried, a matching subnet's
  prefix, one bit past the common prefix with a subnet that did not match, and the
  location network's prefix when a geo or ASN condition was looked at;
- `hash`: the client network's prefix;
- `closest`, `latency`: the location network's prefix (the client prefix when the RTT
  table has per-network keys or the location has no network).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .model import (DRAW_SLOTS, AdminState, AllDown, Client, Context, Decision, Health, IPNetwork, Location, Member,
                    PolicyStep, Rule, SteeredRecord, TraceStep)
from .geo import geo_matches
from .policies import POLICIES, admin_state, member_health

HEALTH = PolicyStep("health")


@dataclass
class _Walk:
    """What the walk collects on its way: the trace and the client-dependent prefixes."""

    trace: list[TraceStep] = field(default_factory=list)
    prefixes: list[int] = field(default_factory=list)

    def add(self, step: str, detail: str, candidates: tuple[Member, ...] | tuple[str, ...] = ()) -> None:
        values = tuple(c.value if isinstance(c, Member) else c for c in candidates)
        self.trace.append(TraceStep(step, detail, values))


def decide(record: SteeredRecord, ctx: Context) -> Decision:
    """The answer for this client, with its scope and the trace of every step."""
    walk = _Walk()
    walk.add("client", describe_client(ctx.client))
    walk.add("location", describe_location(ctx.client.location))
    if record.unusable:
        walk.add("answer", f"servfail: the record is invalid ({record.source}: {record.unusable})")
        return Decision(values=(), ttl=0, rcode="servfail", pool=None, scope=0,
                        trace=tuple(walk.trace))
    index = _rule(record, ctx, walk)
    start = record.rules[index].pool if index is not None else None
    answer, pool = _walk_pools(record, ctx, start, walk)
    rcode = "noerror"
    if not answer:
        answer, pool, rcode = _all_down(record, ctx, start, walk)
    limit = 1 if record.rdtype == "CNAME" else record.select
    values = tuple(dict.fromkeys(m for m in answer))[:limit]
    scope = _scope(ctx.client, walk.prefixes)
    if rcode == "noerror":
        walk.add("answer", f"{_join(values)} from pool {pool}, scope /{scope}, ttl {record.ttl}", values)
    else:
        walk.add("answer", f"{rcode}, scope /{scope}, ttl {record.ttl}")
    return Decision(values=values, ttl=record.ttl, rcode=rcode, pool=pool, scope=scope,
                    trace=tuple(walk.trace))


# --- rules ---------------------------------------------------------------------------------


def _common_prefix(a: IPNetwork, b: IPNetwork) -> int:
    diff = int(a.network_address) ^ int(b.network_address)
    return a.max_prefixlen - diff.bit_length()


def _rule_matches(rule: Rule, ctx: Context, prefixes: list[int]) -> bool:
    """Does the rule take this client? Appends the prefixes the answer holds on."""
    if rule.catch_all:
        return True
    client = ctx.client.network
    for subnet in rule.subnets:
        if subnet.version != client.version:
            continue
        if client.subnet_of(subnet):  # type: ignore[arg-type]
            prefixes.append(subnet.prefixlen)
            return True
        prefixes.append(min(_common_prefix(client, subnet), subnet.prefixlen) + 1)
    if rule.geos or rule.asns:
        loc = ctx.client.location
        prefixes.append(loc.network.prefixlen if loc.network is not None else client.prefixlen)
        if any(geo_matches(code, loc) for code in rule.geos):
            return True
        if loc.asn is not None and loc.asn in rule.asns:
            return True
    return False


def match_rule(record: SteeredRecord, ctx: Context) -> tuple[int | None, list[int]]:
    """The first matching rule's index (None: no rule) and the prefixes the match holds on."""
    if ctx.rule_match is not None:
        index, network = ctx.rule_match
        tried = record.rules[: (index + 1) if index is not None else len(record.rules)]
        return index, ([network.prefixlen] if any(not r.catch_all for r in tried) else [])
    prefixes: list[int] = []
    for index, rule in enumerate(record.rules):
        if _rule_matches(rule, ctx, prefixes):
            return index, prefixes
    return None, prefixes


def _rule(record: SteeredRecord, ctx: Context, walk: _Walk) -> int | None:
    index, prefixes = match_rule(record, ctx)
    walk.prefixes.extend(prefixes)
    how = " (from the rule map)" if ctx.rule_match is not None else ""
    if index is None:
        walk.add("rule", f"no rule matches{how}")
    else:
        walk.add("rule", f"rule {index + 1}: {describe_rule(record.rules[index])}{how}")
    return index


# --- pools, chain, fallback ----------------------------------------------------------------


def _chain(record: SteeredRecord) -> tuple[PolicyStep, ...]:
    """The health filter always runs first (a later `health` is then a no-op): a policy
    before it could otherwise pick a down member, leaving nothing after the filter."""
    if record.chain and record.chain[0].name == "health":
        return record.chain
    return (HEALTH, *record.chain)


def run_chain(record: SteeredRecord, ctx: Context, members: tuple[Member, ...],
              walk: _Walk) -> tuple[Member, ...]:
    """The pool's members through every policy; stops early when nothing is left."""
    candidates = members
    for step in _chain(record):
        if not candidates:
            break
        policy = POLICIES[step.name]
        candidates, reason = policy.run(candidates, step, record, ctx)
        implicit = step is HEALTH
        walk.add(step.name, reason + (" (implicit: always first)" if implicit else ""), candidates)
        if policy.client_scope is not None:
            walk.prefixes.append(policy.client_scope(ctx, record))
    return candidates


def _walk_pools(record: SteeredRecord, ctx: Context, start: str | None,
                walk: _Walk) -> tuple[tuple[str, ...], str | None]:
    """The first pool along the fallback path with an answer: (values, pool name)."""
    seen: set[str] = set()
    name = start
    while name is not None and name not in seen and name in record.pools:
        seen.add(name)
        pool = record.pools[name]
        walk.add("pool", f"{name}: {len(pool.members)} members", pool.members)
        for member in pool.members:
            walk.add("member", describe_member(member, member_health(member, ctx),
                                               admin_state(member, ctx)))
        survivors = run_chain(record, ctx, pool.members, walk)
        if survivors:
            return tuple(m.value for m in survivors), name
        if pool.fallback is None:
            walk.add("fallback", f"pool {name} has no answer and no fallback")
        elif pool.fallback in seen:
            walk.add("fallback", f"pool {name} has no answer; fallback {pool.fallback} already tried")
        else:
            walk.add("fallback", f"pool {name} has no answer: falling back to {pool.fallback}")
        name = pool.fallback
    return (), None


def _all_up(record: SteeredRecord, ctx: Context, why: str) -> Context:
    keys = {key for p in record.pools.values() for m in p.members
            for key in (m.health_key, m.check) if key}
    return replace(ctx, health={k: Health(up=True, source=f"assumed up ({why})") for k in keys},
                   overrides={})


def _all_down(record: SteeredRecord, ctx: Context, start: str | None,
              walk: _Walk) -> tuple[tuple[str, ...], str | None, str]:
    """Every pool exhausted: (values, pool, rcode) by the record's `all_down` mode."""
    mode = record.all_down
    if mode is AllDown.LAST_KNOWN_GOOD:
        if ctx.last_good:
            walk.add("all_down", "last_known_good: the last answer given while up", ctx.last_good)
            return ctx.last_good, None, "noerror"
        walk.add("all_down", "last_known_good: no earlier answer known: answering as fail_open")
        mode = AllDown.FAIL_OPEN
    if mode is AllDown.FAIL_OPEN:
        walk.add("all_down", "fail_open: answering as if every member were up")
        values, pool = _walk_pools(record, _all_up(record, ctx, "fail_open"), start, walk)
        return values, pool, "noerror" if values else "nodata"
    if mode is AllDown.BACKUP_POOL:
        walk.add("all_down", f"backup_pool: answering from {record.all_down_pool}, health ignored")
        values, pool = _walk_pools(record, _all_up(record, ctx, "backup_pool"),
                                   record.all_down_pool, walk)
        return values, pool, "noerror" if values else "nodata"
    walk.add("all_down", f"{mode.value}: no answer")
    return (), None, mode.value


# The longest scope worth saying: we never look at more of an address than this (the
# RFC 7871 section 11.1 privacy limit, as `gslb.dns.edns` truncates).
MAX_SCOPE = {4: 24, 6: 56}


def _scope(client: Client, prefixes: list[int]) -> int:
    """The widest prefix the answer holds for. It may be longer than the client's own
    prefix (RFC 7871 section 7.2.1: the source was not specific enough), but never longer
    than what we look at."""
    if not prefixes:
        return 0
    return min(max(prefixes), MAX_SCOPE[client.network.version])


# --- descriptions, for the trace and `gslb explain` ----------------------------------------


def _join(values: tuple[str, ...]) -> str:
    return ", ".join(values) or "nothing"


def describe_client(client: Client) -> str:
    source = "EDNS Client Subnet" if client.from_ecs else "resolver source address"
    return f"{client.network} ({source})"


def describe_location(loc: Location) -> str:
    if loc == Location():
        return "unknown (no database answer)"
    region = "-".join(p for p in (loc.continent, loc.country, loc.subdivision) if p) or "?"
    parts = [f"database {loc.database or '?'}", f"continent {loc.continent or '?'}",
             f"country {loc.country or '?'}"]
    if loc.subdivision:
        parts.append(f"subdivision {loc.subdivision}")
    parts.append(f"ASN {loc.asn}" if loc.asn is not None else "ASN ?")
    if loc.latitude is not None and loc.longitude is not None:
        parts.append(f"coordinates {loc.latitude:g}, {loc.longitude:g}")
    if loc.network is not None:
        parts.append(f"network {loc.network}")
    return f"{region}: " + ", ".join(parts)


def describe_rule(rule: Rule) -> str:
    conditions = [f"subnets {', '.join(map(str, rule.subnets))}" if rule.subnets else "",
                  f"geos {', '.join(rule.geos)}" if rule.geos else "",
                  f"asns {', '.join(map(str, rule.asns))}" if rule.asns else ""]
    what = " or ".join(c for c in conditions if c) or "catch-all"
    return f"{what} -> pool {rule.pool}"


def describe_member(member: Member, health: Health, state: AdminState | None = None) -> str:
    """One member for the trace; `state` is its effective admin state (a drain override)."""
    where = f" dc {member.datacenter}" if member.datacenter else ""
    admin = state or member.state
    drain = " (drain override)" if admin is not member.state else ""
    status = "up" if health.up else "DOWN"
    age = f", {health.age:.1f} s ago" if health.age is not None else ""
    check = f"check {member.health_key}: " if member.health_key else ""
    return (f"{member.value} weight {member.weight} priority {member.priority}{where} "
            f"{admin.value}{drain}; {check}{status} ({health.source}{age})")


def format_trace(decision: Decision, record: SteeredRecord | None = None,
                 ctx: Context | None = None) -> str:
    """The decision step by step, one aligned line per step, for `gslb explain`."""
    lines = []
    if record is not None:
        lines.append(f"{record.owner} {record.rdtype}" + (f"  ({record.source})" if record.source else ""))
    if ctx is not None:
        slot = ctx.draw * DRAW_SLOTS >> 32  # the draw is the middle of its slot
        lines.append(f"{'draw':<10} slot {slot} of 0-{DRAW_SLOTS - 1} (the weighted choice's "
                     f"position {ctx.draw / 2**32:.3f})")
    for step in decision.trace:
        arrow = f"  -> {_join(step.candidates)}" if step.step != "answer" and step.candidates else ""
        lines.append(f"{step.step:<10} {step.detail}{arrow}")
    lines.append(f"{'result':<10} {decision.rcode}: {_join(decision.values)}")
    lines.append(f"{'scope':<10} /{decision.scope}")
    lines.append(f"{'ttl':<10} {decision.ttl}")
    return "\n".join(lines)

