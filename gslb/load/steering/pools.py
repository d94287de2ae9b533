"""The pools of a steered record and their members, read and checked.

A pool is a named list of members (an address, or a name for CNAME) with weights,
priorities, a datacenter, a health check (and where to probe it) and an admin state, and
may name a fallback pool. Checked here: member values for the record's type, duplicates,
ranges, unknown datacenters and checks, fallbacks to no pool, fallback loops, and pools
nothing reaches (octoDNS's "unused pools").
"""

from __future__ import annotations

import ipaddress
import re

import dns.exception
import dns.name
import yaml

from gslb.dns.zone import Zone
from gslb.load.bounds import MAX_MEMBERS, MAX_POOLS, MAX_PRIORITY, MAX_WEIGHT
from gslb.load.checks import Checks
from gslb.load.yamlcheck import NULL, Checker, Fields, kind_of
from gslb.steering.model import AdminState, Datacenter, Member, Pool, Probe, Rule

_POOL_KEYS = ("fallback", "members")
_MEMBER_KEYS = ("check", "datacenter", "priority", "probe", "state", "value", "weight")


def read_pools(check: Checker, where: str, fields: dict, node: yaml.Node, rdtype: str, zone: Zone,
               datacenters: dict[str, Datacenter], checks: Checks
               ) -> tuple[dict[str, Pool] | None, bool]:
    """The pools (None when there is no usable pools mapping) and whether all are valid;
    a broken pool is still returned (with its valid members) so references to it and
    `closest` can be checked."""
    if "pools" not in fields:
        check.add(node, where, 'missing key "pools"')
        return None, False
    entries = check.mapping(fields["pools"][1], where, "pools", ())
    if entries is None:
        return None, False
    if not entries:
        check.add(fields["pools"][1], where, "pools is empty")
        return None, False
    if len(entries) > MAX_POOLS:
        check.add(fields["pools"][1], where, f"{len(entries)} pools: a record has at most {MAX_POOLS}")
        return None, False
    pools: dict[str, Pool] = {}
    fallback_nodes: dict[str, yaml.Node] = {}
    broken = False
    for name, (key_node, value) in entries.items():
        pool_where = f'{where}: pool "{name}"'
        pool_fields = check.mapping(value, pool_where, "a pool", _POOL_KEYS)
        if pool_fields is None:
            broken = True
            continue
        fallback = None
        if "fallback" in pool_fields:
            fallback = check.string(pool_fields["fallback"][1], pool_where, "fallback")
            fallback_nodes[name] = pool_fields["fallback"][1]
        members, ok = _members(check, pool_where, pool_fields, value, rdtype, zone, datacenters,
                               checks)
        broken = broken or not ok
        pools[name] = Pool(name, members, fallback)
    for name, pool in pools.items():
        if pool.fallback is not None and pool.fallback not in entries:
            check.add(fallback_nodes[name], f'{where}: pool "{name}"', f'fallback "{pool.fallback}" is not a pool')
            broken = True
    # fallback loops: each cycle once, at its first pool in file order
    reported: set[str] = set()
    for start in pools:
        path = [start]
        while True:
            nxt = pools[path[-1]].fallback
            if nxt is None or nxt not in pools:
                break
            if nxt in path:
                cycle = path[path.index(nxt):]
                if not reported & set(cycle):
                    first = min(cycle, key=list(pools).index)
                    at = cycle.index(first)
                    ordered = cycle[at:] + cycle[:at] + [first]
                    check.add(fallback_nodes[first], f'{where}: pool "{first}"',
                              f"fallback loop: {' -> '.join(ordered)}")
                    reported |= set(cycle)
                    broken = True
                break
            path.append(nxt)
    return pools, not broken


def _members(check: Checker, where: str, fields: dict, node: yaml.Node, rdtype: str, zone: Zone,
             datacenters: dict[str, Datacenter], checks: Checks
             ) -> tuple[tuple[Member, ...], bool]:
    """The valid members, and whether every member was valid."""
    if "members" not in fields:
        check.add(node, where, 'missing key "members"')
        return (), False
    items = check.sequence(fields["members"][1], where, "members")
    if items is None:
        return (), False
    if not items:
        check.add(fields["members"][1], where, "members is empty")
        return (), False
    if len(items) > MAX_MEMBERS:
        check.add(fields["members"][1], where,
                  f"{len(items)} members: a pool has at most {MAX_MEMBERS}")
        return (), False
    members: list[Member] = []
    seen: dict[str, int] = {}
    broken = False
    for number, item in enumerate(items, 1):
        member_where = f"{where} member {number}"
        before = len(check.problems)
        member_fields: Fields | None
        if isinstance(item, yaml.ScalarNode):  # shorthand: just the value
            member_fields = {"value": (item, item)}
        else:
            member_fields = check.mapping(item, member_where, "a member", _MEMBER_KEYS)
            if member_fields is None:
                broken = True
                continue
        if "value" not in member_fields:
            check.add(item, member_where, 'missing key "value"')
            broken = True
            continue
        value_node = member_fields["value"][1]
        value = member_value(check, member_where, value_node, rdtype, zone)
        if value is not None:
            if value in seen:
                check.add(value_node, member_where, f"{value} is already member {seen[value]} of this pool")
            else:
                seen[value] = number
        weight = 1
        if "weight" in member_fields:
            number_node = member_fields["weight"][1]
            got = check.integer(number_node, member_where, "weight")
            if got is not None and not 0 <= got <= MAX_WEIGHT:
                check.add(number_node, member_where, f"weight {got} is out of range 0..{MAX_WEIGHT}")
            elif got is not None:
                weight = got
        priority = 1
        if "priority" in member_fields:
            number_node = member_fields["priority"][1]
            got = check.integer(number_node, member_where, "priority")
            if got is not None and not 0 <= got <= MAX_PRIORITY:
                check.add(number_node, member_where,
                          f"priority {got} is out of range 0..{MAX_PRIORITY}")
            elif got is not None:
                priority = got
        datacenter = None
        if "datacenter" in member_fields:
            dc_node = member_fields["datacenter"][1]
            datacenter = check.string(dc_node, member_where, "datacenter")
            if datacenter is not None and datacenter not in datacenters:
                check.add(dc_node, member_where, f'unknown datacenter "{datacenter}"')
        health_check = None
        if "check" in member_fields:
            health_check = check.string(member_fields["check"][1], member_where, "check")
        probe = _probe(check, member_where, member_fields, health_check, value, checks)
        state = AdminState.ENABLED
        if "state" in member_fields:
            state_node = member_fields["state"][1]
            text = check.string(state_node, member_where, "state")
            choices = [s.value for s in AdminState]
            if text is not None and text not in choices:
                check.add(state_node, member_where, f'state "{text}" is not one of {", ".join(choices)}')
            elif text is not None:
                state = AdminState(text)
        if len(check.problems) != before or value is None:
            broken = True
            continue
        members.append(Member(value, weight, priority, datacenter, health_check, state, probe))
    return tuple(members), not broken


def _probe(check: Checker, where: str, fields: dict, name: str | None, value: str | None,
           checks: Checks) -> Probe | None:
    """What an agent probes for this member: its check's definition at the member's
    own value, or at `probe:` (an address or host name). A `check` that names no
    definition is an external id: its state comes from the state file or the store."""
    address = value
    if "probe" in fields:
        address = check.string(fields["probe"][1], where, "probe")
        if name is None or name not in checks.specs:
            check.add(fields["probe"][1], where, "probe needs a check defined under checks:")
            return None
    if name is None or address is None:
        return None
    spec = checks.specs.get(name)
    if spec is None:
        if name in checks.names:
            check.add(fields["check"][1], where, f'check "{name}" has problems (see checks:)')
        return None
    return Probe(spec, address.rstrip(".") if spec.kind != "dns" else address)


def member_value(check: Checker, where: str, node: yaml.Node, rdtype: str, zone: Zone) -> str | None:
    """A member (or `transfer:`) value: an address of the record's family, or for a
    CNAME a host name (relative to the zone), lowercased."""
    if not isinstance(node, yaml.ScalarNode) or node.tag == NULL:
        check.add(node, where, f"value must be a string, not {kind_of(node)}")
        return None
    text = node.value
    if rdtype in ("A", "AAAA"):
        cls = ipaddress.IPv4Address if rdtype == "A" else ipaddress.IPv6Address
        try:
            return str(cls(text))
        except ValueError:
            family = "an IPv4" if rdtype == "A" else "an IPv6"
            check.add(node, where, f'value "{text}" is not {family} address')
            return None
    try:
        name = dns.name.from_text(text, origin=zone.origin)
    except dns.exception.DNSException as exc:
        check.add(node, where, f'value "{text}" is not a valid name: {exc}')
        return None
    if not text or any(not re.fullmatch(r"[A-Za-z0-9_*-]+", label.decode("ascii", "replace"))
                       for label in name.labels[:-1]):
        check.add(node, where, f'value "{text}" is not a valid name')
        return None
    return name.to_text().lower()


def unused_pools(check: Checker, where: str, fields: dict, pools: dict[str, Pool],
                 rules: tuple[Rule, ...], all_down_pool: str | None) -> None:
    """octoDNS's "unused pools": a pool no rule, fallback or all_down_pool reaches."""
    used: set[str] = set()
    todo = [rule.pool for rule in rules] + ([all_down_pool] if all_down_pool else [])
    while todo:
        name = todo.pop()
        if name in used or name not in pools:
            continue
        used.add(name)
        fallback = pools[name].fallback
        if fallback:
            todo.append(fallback)
    entries = fields["pools"][1].value
    for key_node, _ in entries:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value in pools and key_node.value not in used:
            check.add(key_node, where, f'pool "{key_node.value}" is never used '
                                       "(no rule, fallback or all_down_pool names it)")
