"""The `records:` of a steering file: each steered record read and checked, whole.

One record is a name and a type (A, AAAA or CNAME) with its ttl, pools, rules, policy
chain, `select`, `all_down` mode and what a zone transfer carries for it. This module
walks the file's `datacenters:` and `records:`, reads each record's own keys, and hands
the parts to their modules (pools, rules, chain, conflicts). A record with any problem is
left out and noted as broken (with its file:line), so a reload can keep its last good
version.
"""

from __future__ import annotations

import dns.exception
import dns.name
import yaml

from gslb.dns.zone import Zone
from gslb.load.bounds import MAX_RECORDS, MAX_SELECT, MAX_TTL
from gslb.load.checks import Checks, read_checks
from gslb.load.steering.chain import read_chain
from gslb.load.steering.conflicts import static_conflicts
from gslb.load.steering.pools import member_value, read_pools, unused_pools
from gslb.load.steering.rules import read_rules
from gslb.load.yamlcheck import NULL, Checker, Fields, line_of, list_of
from gslb.steering.model import AdminState, AllDown, Datacenter, PolicyStep, Pool, Rule, SteeredRecord

# (owner, type or None when unreadable) -> file:line of each record left out for a problem
Broken = dict[tuple[str, str | None], str]

STEERED_TYPES = ("A", "AAAA", "CNAME")
DEFAULT_TTL = 30
_DATACENTER_KEYS = ("latitude", "longitude")
_RECORD_KEYS = ("all_down", "all_down_pool", "policies", "pools", "rules", "select", "transfer", "ttl",
                "type")


def validate(check: Checker, root: Fields, zone: Zone) -> tuple[list[SteeredRecord], Broken]:
    """The file's valid steered records for `zone`, and the records left out for a
    problem; every problem goes to `check`."""
    datacenters = _datacenters(check, root["datacenters"][1]) if "datacenters" in root else {}
    checks = read_checks(check, root)
    broken: Broken = {}
    if "records" not in root:
        check.add(1, "", 'missing key "records"')
        return [], broken
    records_node = root["records"][1]
    entries = check.mapping(records_node, "", "records", ())
    if entries is None:
        return [], broken
    if len(entries) > MAX_RECORDS:
        check.add(records_node, "", f"{len(entries)} records: a zone has at most {MAX_RECORDS} "
                  "steered names")
        return [], broken
    result: list[SteeredRecord] = []
    seen: dict[tuple[str, str], int] = {}
    types_at: dict[str, list[tuple[str, int]]] = {}
    for key, (key_node, value_node) in entries.items():
        owner = _owner(check, key, key_node, zone)
        items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for item in items:
            before = len(check.problems)
            line = line_of(item) if item is not value_node else line_of(key_node)
            record = _record(check, owner, key_node, item, line, zone, datacenters, checks)
            if owner is not None and (record is None or len(check.problems) != before):
                broken[(owner, _written_type(item))] = f"{check.file}:{line}"
            if owner is None or record is None:
                continue
            first = seen.get((record.owner, record.rdtype))
            if first is not None:
                check.add(line, f"{record.owner} {record.rdtype}", f"already defined at line {first}")
                continue
            seen[(record.owner, record.rdtype)] = line
            types_at.setdefault(record.owner, []).append((record.rdtype, line))
            if len(check.problems) == before:
                result.append(record)
    for owner, types in types_at.items():
        if len(types) > 1 and any(rdtype == "CNAME" for rdtype, _ in types):
            line = next(line for rdtype, line in types if rdtype == "CNAME")
            others = ", ".join(rdtype for rdtype, _ in types if rdtype != "CNAME")
            check.add(line, f"{owner} CNAME", f"a steered CNAME cannot share its name with steered {others}")
            result = [r for r in result if r.owner != owner]
            broken.update({(owner, rdtype): f"{check.file}:{at}" for rdtype, at in types})
    return result, broken


def _written_type(node: yaml.Node) -> str | None:
    """The record's `type` as written, when it is one that can be steered."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, "value", None) == "type" and isinstance(value, yaml.ScalarNode) \
                    and str(value.value).upper() in STEERED_TYPES:
                return str(value.value).upper()
    return None


def _datacenters(check: Checker, node: yaml.Node) -> dict[str, Datacenter]:
    entries = check.mapping(node, "", "datacenters", ())
    result: dict[str, Datacenter] = {}
    for name, (_, value) in (entries or {}).items():
        where = f'datacenter "{name}"'
        if isinstance(value, yaml.ScalarNode) and value.tag == NULL:
            result[name] = Datacenter(name)
            continue
        fields = check.mapping(value, where, "a datacenter", _DATACENTER_KEYS)
        if fields is None:
            result[name] = Datacenter(name)
            continue
        coords: dict[str, float | None] = {}
        for key, limit in (("latitude", 90), ("longitude", 180)):
            coords[key] = None
            if key in fields:
                number = check.number(fields[key][1], where, key)
                if number is not None and not -limit <= number <= limit:
                    check.add(fields[key][1], where, f"{key} {number:g} is out of range -{limit}..{limit}")
                elif number is not None:
                    coords[key] = number
        if ("latitude" in fields) != ("longitude" in fields):
            check.add(value, where, "latitude and longitude must be given together")
            coords = {"latitude": None, "longitude": None}
        result[name] = Datacenter(name, coords["latitude"], coords["longitude"])
    return result


def _owner(check: Checker, key: str, node: yaml.Node, zone: Zone) -> str | None:
    try:
        name = zone.origin if key == "@" else dns.name.from_text(key, origin=zone.origin)
    except dns.exception.DNSException as exc:
        check.add(node, "", f'invalid name "{key}": {exc}')
        return None
    text = name.to_text().lower()
    if not name.is_subdomain(zone.origin):
        check.add(node, "", f"{text} is outside the zone {zone.origin}")
        return None
    if name.is_wild():
        check.add(node, "", f"{text}: wildcard names cannot be steered")
        return None
    return text


def _record(check: Checker, owner: str | None, key_node: yaml.Node, node: yaml.Node, line: int,
            zone: Zone, datacenters: dict[str, Datacenter],
            checks: Checks) -> SteeredRecord | None:
    name = owner or key_node.value
    written = _written_type(node)  # name the type in every message when it is valid
    where = f"{name} {written}" if written else name
    fields = check.mapping(node, where, "a steered record", _RECORD_KEYS)
    if fields is None:
        return None
    if "type" not in fields:
        check.add(node, name, 'missing key "type" (A, AAAA or CNAME)')
        return None
    rdtype = check.string(fields["type"][1], name, "type")
    if rdtype is None:
        return None
    if rdtype.upper() not in STEERED_TYPES:
        check.add(fields["type"][1], name, f'type "{rdtype}" cannot be steered (expected A, AAAA or CNAME)')
        return None
    rdtype = rdtype.upper()
    where = f"{name} {rdtype}"

    ttl = DEFAULT_TTL
    if "ttl" in fields:
        value = check.integer(fields["ttl"][1], where, "ttl")
        if value is not None and not 0 <= value <= MAX_TTL:
            check.add(fields["ttl"][1], where, f"ttl {value} is out of range 0..{MAX_TTL}")
        elif value is not None:
            ttl = value

    pools, pools_ok = read_pools(check, where, fields, node, rdtype, zone, datacenters,
                             checks)
    rules, rules_ok = read_rules(check, where, fields, node, pools)
    chain = read_chain(check, where, fields, pools, datacenters)

    select = 1
    if "select" in fields:
        value = check.integer(fields["select"][1], where, "select")
        if value is not None and not 1 <= value <= MAX_SELECT:
            check.add(fields["select"][1], where, f"select {value} is out of range 1..{MAX_SELECT}")
        elif value is not None and value > 1 and rdtype == "CNAME":
            check.add(fields["select"][1], where, f"select {value}: a CNAME answer has exactly one target")
        elif value is not None:
            select = value

    all_down: AllDown | None = AllDown.FAIL_OPEN
    if "all_down" in fields:
        text = check.string(fields["all_down"][1], where, "all_down")
        choices = [mode.value for mode in AllDown]
        all_down = AllDown(text) if text in choices else None
        if text is not None and all_down is None:
            check.add(fields["all_down"][1], where, f'all_down "{text}" is not one of {", ".join(choices)}')
    all_down_pool = None
    if "all_down_pool" in fields:
        pool_node = fields["all_down_pool"][1]
        all_down_pool = check.string(pool_node, where, "all_down_pool")
        if all_down_pool is not None and pools is not None and all_down_pool not in pools:
            check.add(pool_node, where, f'all_down_pool "{all_down_pool}" is not a pool')
        if all_down is not None and all_down is not AllDown.BACKUP_POOL:
            check.add(pool_node, where, "all_down_pool is only used with all_down: backup_pool")
    elif all_down is AllDown.BACKUP_POOL:
        check.add(fields["all_down"][1], where, "all_down: backup_pool needs all_down_pool")

    if pools is not None and rules is not None:
        unused_pools(check, where, fields, pools, rules, all_down_pool)
    if owner is not None:
        static_conflicts(check, where, line, owner, rdtype, zone)
    if pools is None or not pools_ok or rules is None or not rules_ok or chain is None or all_down is None:
        return None
    transfer = _transfer(check, where, fields, rdtype, zone, pools, rules, chain)
    return SteeredRecord(
        owner=owner or name, rdtype=rdtype, ttl=ttl, pools=pools, rules=rules, chain=chain,
        select=select, all_down=all_down, all_down_pool=all_down_pool,
        datacenters=dict(datacenters), source=f"{check.file}:{line}", transfer=transfer)


def _transfer(check: Checker, where: str, fields: dict, rdtype: str, zone: Zone,
              pools: dict[str, Pool], rules: tuple[Rule, ...],
              chain: tuple[PolicyStep, ...]) -> tuple[str, ...]:
    """What a zone transfer carries for the name: a secondary serves it to everyone, so
    by default only what any client may get. That is the first of these with a member:
    the enabled members with a positive weight (of the preferred priority when
    `priority` is in the chain) of the catch-all rule's pool, then of the pools its
    fallbacks lead to, then of any pool; then, when every such member is drained (a
    drain keeps its servers running), the drained ones of the catch-all pool. When
    every member is disabled or has weight 0, the name is left out of transfers. So a
    drain never makes a valid configuration invalid."""
    if "transfer" in fields:
        return _explicit_transfer(check, where, fields, rdtype, zone, pools)
    start = pools[next(rule.pool for rule in rules if rule.catch_all)]
    order = [start]
    while order[-1].fallback in pools and pools[order[-1].fallback] not in order:
        order.append(pools[order[-1].fallback])
    order += [pool for pool in pools.values() if pool not in order]
    prefer_priority = any(step.name == "priority" for step in chain)
    for pool, states in [*((pool, (AdminState.ENABLED,)) for pool in order),
                         (start, (AdminState.DRAINED,))]:
        members = [m for m in pool.members if m.state in states and m.weight > 0]
        if members and prefer_priority:
            preferred = min(m.priority for m in members)
            members = [m for m in members if m.priority == preferred]
        if members:
            return tuple(m.value for m in members)[: 1 if rdtype == "CNAME" else None]
    return ()


def _explicit_transfer(check: Checker, where: str, fields: dict, rdtype: str, zone: Zone,
                       pools: dict[str, Pool]) -> tuple[str, ...]:
    """The `transfer:` values: addresses (a name for CNAME), none of them a member that
    the configuration never answers (disabled, or weight 0, in every pool it is in)."""
    node = fields["transfer"][1]
    if isinstance(node, yaml.ScalarNode) and node.tag == NULL:
        check.add(node, where, "transfer must be a list of values ([] to leave the name out of transfers)")
        return ()
    values: list[str] = []
    for item in list_of(check, fields, "transfer", where):
        value = member_value(check, f"{where}: transfer", item, rdtype, zone)
        if value is None:
            continue
        found = [m for pool in pools.values() for m in pool.members if m.value == value]
        if found and all(m.state is AdminState.DISABLED or m.weight == 0 for m in found):
            check.add(item, f"{where}: transfer", f"{value} is disabled or has weight 0 in every pool, "
                      "so a secondary must not serve it")
        values.append(value)
    if rdtype == "CNAME" and len(values) > 1:
        check.add(node, where, "transfer: a CNAME has exactly one target")
    return tuple(dict.fromkeys(values))
