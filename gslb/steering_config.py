"""Load and validate steering YAML (`zones/<origin>.gslb.yaml`) into `SteeredRecord`s.

This is an edge module: it reads files, so it lives outside the pure `gslb.steering`
package. The YAML is composed into nodes (not plain Python objects) so every value keeps
its line, and validation collects *every* problem as a `file:line: message` `Problem`,
like the zone loader (and octoDNS's validate) does. A record with any problem is left out
of the result; callers that want all-or-nothing check whether the problem list is empty.

The format follows octoDNS dynamic records (pools with fallback, rules with geos and
subnets, a catch-all rule); README.md "Steering configuration" documents every key.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import dns.exception
import dns.name
import dns.rdatatype
import yaml
import yaml.constructor
import yaml.nodes

from gslb.dns.zone import Zone, record_types, to_wire
from gslb.steering.geo import parse_geo
from gslb.load.checks import parse_checks
from gslb.steering.model import (
    AdminState,
    CheckSpec,
    AllDown,
    Datacenter,
    IPNetwork,
    Member,
    PolicyStep,
    Pool,
    Probe,
    Rule,
    SteeredRecord,
)
from gslb.load.zonefile import Problem

STEERING_SUFFIX = ".gslb.yaml"
STEERING_SUFFIXES = (".gslb.yaml", ".gslb.yml")  # both spellings YAML tools use
STEERED_TYPES = ("A", "AAAA", "CNAME")
DEFAULT_TTL = 30
MAX_TTL = 86400
MAX_WEIGHT = 1000
MAX_ASN = 2**32 - 1
DEFAULT_CHAIN = (PolicyStep("health"), PolicyStep("priority"), PolicyStep("weighted"))

_FILE_KEYS = ("checks", "datacenters", "records", "zone")
_DATACENTER_KEYS = ("latitude", "longitude")
_RECORD_KEYS = ("all_down", "all_down_pool", "policies", "pools", "rules", "select", "transfer", "ttl",
                "type")
_POOL_KEYS = ("fallback", "members")
_MEMBER_KEYS = ("check", "datacenter", "priority", "probe", "state", "value", "weight")
_RULE_KEYS = ("asns", "geos", "pool", "subnets")

_INT, _FLOAT, _BOOL, _NULL, _STR = (f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null", "str"))
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


# --- policy parameters ------------------------------------------------------------------
# The policy names the engine registers (gslb.steering.policies.POLICIES) and the
# parameters each accepts, with a check returning an error text or None.


def _positive_int(value: object) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return None if ok else "must be an integer >= 1"


def _non_negative_number(value: object) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    return None if ok else "must be a number >= 0"


POLICY_PARAMS: dict[str, dict[str, Callable[[object], str | None]]] = {
    "health": {},
    "priority": {"min_healthy": _positive_int},
    "weighted": {},
    "closest": {},
    "latency": {"tolerance_ms": _non_negative_number},
    "hash": {},
    "first_n": {"n": _positive_int},
}


# --- YAML nodes -------------------------------------------------------------------------


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return {_INT: "an integer", _FLOAT: "a number", _BOOL: "a boolean", _NULL: "empty"}.get(
        node.tag, f'"{node.value}"')


def _scalar(node: yaml.Node) -> object:
    """The Python value of a scalar node (int, float, bool, None or str)."""
    if node.tag in (_INT, _FLOAT, _BOOL, _NULL):
        return _CONSTRUCTOR.construct_object(node, deep=True)
    return node.value


def _int(node: yaml.Node) -> int:
    """The value of an int-tagged scalar node (YAML's int constructor makes an int)."""
    value = _scalar(node)
    assert isinstance(value, int)
    return int(value)


def _float(node: yaml.Node) -> float:
    """The value of an int- or float-tagged scalar node."""
    value = _scalar(node)
    assert isinstance(value, (int, float))
    return float(value)


class _Checker:
    """Walks one file's nodes, collecting problems; one instance per file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, node: yaml.Node | int, where: str, message: str) -> None:
        line = node if isinstance(node, int) else _line(node)
        self.problems.append(Problem(self.file, line, f"{where}: {message}" if where else message))

    def mapping(self, node: yaml.Node, where: str, what: str,
                keys: Iterable[str]) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """A mapping node as {key: (key node, value node)}; unknown and duplicate keys
        are reported. None (reported) when the node is not a mapping."""
        if not isinstance(node, yaml.MappingNode):
            self.add(node, where, f"{what} must be a mapping, not {_kind(node)}")
            return None
        allowed = tuple(keys)
        result: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in _flatten(node):
            key = str(_scalar(key_node)) if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                self.add(key_node, where, f"{what} has a key that is not a string")
            elif key in result and not getattr(key_node, "merged", False):
                self.add(key_node, where, f'duplicate key "{key}" (first at line {_line(result[key][0])})')
            elif allowed and key not in allowed:
                self.add(key_node, where, f'unknown key "{key}" (expected one of: {", ".join(allowed)})')
            elif key not in result or not getattr(key_node, "merged", False):
                result[key] = (key_node, value_node)
        return result

    def sequence(self, node: yaml.Node, where: str, what: str) -> list[yaml.Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.add(node, where, f"{what} must be a list, not {_kind(node)}")
            return None
        return list(node.value)

    def string(self, node: yaml.Node, where: str, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag in (_NULL,):
            self.add(node, where, f"{what} must be a string, not {_kind(node)}")
            return None
        return node.value  # as written: `NO` stays "NO", not YAML 1.1's false

    def integer(self, node: yaml.Node, where: str, what: str) -> int | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _INT:
            self.add(node, where, f"{what} must be an integer, not {_kind(node)}")
            return None
        return _int(node)

    def number(self, node: yaml.Node, where: str, what: str) -> float | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (_INT, _FLOAT):
            self.add(node, where, f"{what} must be a number, not {_kind(node)}")
            return None
        return _float(node)


def _flatten(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """The mapping's pairs with YAML merge keys (`<<: *anchor`) expanded; merged key
    nodes are marked so an explicit key overrides them without being a duplicate."""
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    for k, v in _flatten(source):
                        copy = yaml.ScalarNode(k.tag, k.value, k.start_mark, k.end_mark) \
                            if isinstance(k, yaml.ScalarNode) else k
                        copy.merged = True  # type: ignore[attr-defined]
                        merged.append((copy, v))
        else:
            pairs.append((key_node, value_node))
    explicit = {k.value for k, _ in pairs if isinstance(k, yaml.ScalarNode)}
    return [(k, v) for k, v in merged if k.value not in explicit] + pairs


# --- loading ----------------------------------------------------------------------------


@dataclass
class _Parsed:
    root: dict[str, tuple[yaml.Node, yaml.Node]] | None
    checker: _Checker
    # (owner, type or None when unreadable) -> file:line of each record left out for a problem
    broken: dict[tuple[str, str | None], str] = field(default_factory=dict)


@dataclass
class SteeringLoad:
    """What the steering files say: the valid records, every problem, and which records
    (or whole files) were left out for a problem, so a reload can keep their last good
    version instead of dropping the name."""

    records: dict[tuple[str, str], SteeredRecord] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    broken: dict[tuple[str, str | None], str] = field(default_factory=dict)
    broken_files: set[str] = field(default_factory=set)


def _parse(path: Path) -> _Parsed:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        checker = _Checker(str(path))
        checker.add(1, "", f"cannot read steering file: {exc}")
        return _Parsed(None, checker)
    return _parse_text(text, str(path))


def _parse_text(text: str, file: str) -> _Parsed:
    checker = _Checker(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        checker.add(mark.line + 1 if mark else 1, "", f"invalid YAML: {exc.problem or exc.context}")
        return _Parsed(None, checker)
    except yaml.YAMLError as exc:
        checker.add(1, "", f"invalid YAML: {exc}")
        return _Parsed(None, checker)
    if node is None:
        checker.add(1, "", 'the file is empty (expected a mapping with "records")')
        return _Parsed(None, checker)
    return _Parsed(checker.mapping(node, "", "the file", _FILE_KEYS), checker)


def _declared_origin(parsed: _Parsed) -> tuple[dns.name.Name | None, int]:
    """The `zone:` key's name and line, when there is a valid one."""
    if parsed.root is None or "zone" not in parsed.root:
        return None, 1
    node = parsed.root["zone"][1]
    text = parsed.checker.string(node, "", "zone")
    if text is None:
        return None, _line(node)
    try:
        return dns.name.from_text(text), _line(node)
    except dns.exception.DNSException as exc:
        parsed.checker.add(node, "", f'zone "{text}" is not a valid name: {exc}')
        return None, _line(node)


def origin_from_path(path: Path) -> dns.name.Name:
    """`example.com.gslb.yaml` (or `.gslb.yml`) -> `example.com.`"""
    suffix = next((s for s in STEERING_SUFFIXES if path.name.endswith(s)), None)
    stem = path.name[: -len(suffix)] if suffix else path.stem
    return dns.name.from_text(stem)


def steering_files(zones_dir: Path) -> list[Path]:
    """Every steering file in `zones_dir`, both spellings, in name order."""
    return sorted(p for suffix in STEERING_SUFFIXES for p in zones_dir.glob(f"*{suffix}"))


def load_steering(path: Path, zone: Zone) -> tuple[list[SteeredRecord], list[Problem]]:
    """Every steered record in `path` for `zone`, and every problem found (sorted by
    line). Records with a problem are left out."""
    return _checked(_parse(path), zone)


def steering_from_text(text: str, file: str, zone: Zone
                       ) -> tuple[list[SteeredRecord], list[Problem]]:
    """`load_steering` for a text not (yet) on disk: the API checks a rewritten file
    with exactly the rules `gslb check` applies before it writes it."""
    return _checked(_parse_text(text, file), zone)


def _checked(parsed: _Parsed, zone: Zone) -> tuple[list[SteeredRecord], list[Problem]]:
    origin, line = _declared_origin(parsed)
    if origin is not None and origin != zone.origin:
        parsed.checker.add(line, "", f"zone {origin} does not match {zone.origin}, the zone it was loaded for")
    records = _validate(parsed, zone) if parsed.root is not None else []
    return records, sorted(parsed.checker.problems, key=lambda p: p.line)


def load_all_steering(zones_dir: Path, zones: list[Zone]
                      ) -> tuple[dict[tuple[str, str], SteeredRecord], list[Problem]]:
    """Every steering file's valid records, keyed by (owner, type), and every problem."""
    load = load_steering_files(zones_dir, zones)
    return load.records, load.problems


def load_steering_files(zones_dir: Path, zones: list[Zone],
                        skip: Iterable[dns.name.Name] = ()) -> SteeringLoad:
    """Every `*.gslb.yaml` (or `.gslb.yml`) in `zones_dir`, matched to its zone by the
    `zone:` key or the file name; keyed by (owner, type). A name steered in two files is
    a problem in the second. Files of the zones in `skip` (kept from before on a reload)
    are not read."""
    by_origin = {zone.origin: zone for zone in zones}
    skipped = set(skip)
    load = SteeringLoad()
    steered = load.records
    for path in steering_files(zones_dir):
        parsed = _parse(path)
        origin, line = _declared_origin(parsed)
        if origin is None and parsed.root is not None and "zone" not in parsed.root:
            try:
                origin = origin_from_path(path)
            except dns.exception.DNSException as exc:
                parsed.checker.add(1, "", f"cannot tell the zone from the file name: {exc}")
        if origin in skipped:
            continue
        zone = by_origin.get(origin) if origin is not None else None
        if origin is not None and zone is None:
            parsed.checker.add(line, "", f"no zone {origin} is loaded for this file")
        records = _validate(parsed, zone) if parsed.root is not None and zone is not None else []
        if zone is None or parsed.root is None or "records" not in parsed.root \
                or not isinstance(parsed.root["records"][1], yaml.MappingNode):
            load.broken_files.add(str(path))
        load.broken.update(parsed.broken)
        for record in records:
            key = (record.owner, record.rdtype)
            if key in steered:
                where, _, number = record.source.rpartition(":")
                parsed.checker.add(int(number), "", f"{record.owner} {record.rdtype} is already steered "
                                   f"in {steered[key].source}")
            else:
                steered[key] = record
        load.problems += sorted(parsed.checker.problems, key=lambda p: p.line)
    return load


# --- validation -------------------------------------------------------------------------


def _validate(parsed: _Parsed, zone: Zone) -> list[SteeredRecord]:
    check = parsed.checker
    root = parsed.root
    assert root is not None
    datacenters = _datacenters(check, root["datacenters"][1]) if "datacenters" in root else {}
    checks = parse_checks(check, root["checks"][1]) if "checks" in root else {}
    broken_checks = _broken_checks(root)
    if "records" not in root:
        check.add(1, "", 'missing key "records"')
        return []
    records_node = root["records"][1]
    entries = check.mapping(records_node, "", "records", ())
    if entries is None:
        return []
    result: list[SteeredRecord] = []
    seen: dict[tuple[str, str], int] = {}
    types_at: dict[str, list[tuple[str, int]]] = {}
    for key, (key_node, value_node) in entries.items():
        owner = _owner(check, key, key_node, zone)
        items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for item in items:
            before = len(check.problems)
            line = _line(item) if item is not value_node else _line(key_node)
            record = _record(check, owner, key_node, item, line, zone, datacenters,
                             _Checks(checks, broken_checks))
            if owner is not None and (record is None or len(check.problems) != before):
                parsed.broken[(owner, _written_type(item))] = f"{check.file}:{line}"
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
            parsed.broken.update({(owner, rdtype): f"{check.file}:{at}" for rdtype, at in types})
    return result


def _written_type(node: yaml.Node) -> str | None:
    """The record's `type` as written, when it is one that can be steered."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, "value", None) == "type" and isinstance(value, yaml.ScalarNode) \
                    and str(value.value).upper() in STEERED_TYPES:
                return str(value.value).upper()
    return None


def _datacenters(check: _Checker, node: yaml.Node) -> dict[str, Datacenter]:
    entries = check.mapping(node, "", "datacenters", ())
    result: dict[str, Datacenter] = {}
    for name, (_, value) in (entries or {}).items():
        where = f'datacenter "{name}"'
        if isinstance(value, yaml.ScalarNode) and value.tag == _NULL:
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


def _owner(check: _Checker, key: str, node: yaml.Node, zone: Zone) -> str | None:
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


def _record(check: _Checker, owner: str | None, key_node: yaml.Node, node: yaml.Node, line: int,
            zone: Zone, datacenters: dict[str, Datacenter],
            checks: "_Checks | None" = None) -> SteeredRecord | None:
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

    pools, pools_ok = _pools(check, where, fields, node, rdtype, zone, datacenters,
                             checks or _Checks({}, set()))
    rules, rules_ok = _rules(check, where, fields, node, pools)
    chain = _chain(check, where, fields, pools, datacenters)

    select = 1
    if "select" in fields:
        value = check.integer(fields["select"][1], where, "select")
        if value is not None and value < 1:
            check.add(fields["select"][1], where, f"select {value} must be at least 1")
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
        _unused_pools(check, where, fields, pools, rules, all_down_pool)
    if owner is not None:
        _static_conflicts(check, where, line, owner, rdtype, zone)
    if pools is None or not pools_ok or rules is None or not rules_ok or chain is None or all_down is None:
        return None
    transfer = _transfer(check, where, fields, rdtype, zone, pools, rules, chain)
    return SteeredRecord(
        owner=owner or name, rdtype=rdtype, ttl=ttl, pools=pools, rules=rules, chain=chain,
        select=select, all_down=all_down, all_down_pool=all_down_pool,
        datacenters=dict(datacenters), source=f"{check.file}:{line}", transfer=transfer)


def _transfer(check: _Checker, where: str, fields: dict, rdtype: str, zone: Zone,
              pools: dict[str, Pool], rules: tuple[Rule, ...],
              chain: tuple[PolicyStep, ...]) -> tuple[str, ...]:
    """What a zone transfer carries for the name: a secondary serves it to everyone, so
    by default only what any client may get, the catch-all rule's pool's enabled members
    with a positive weight (of the preferred priority when `priority` is in the chain)."""
    if "transfer" in fields:
        return _explicit_transfer(check, where, fields, rdtype, zone, pools)
    pool = pools[next(rule.pool for rule in rules if rule.catch_all)]
    members = [m for m in pool.members if m.state is AdminState.ENABLED and m.weight > 0]
    if members and any(step.name == "priority" for step in chain):
        preferred = min(m.priority for m in members)
        members = [m for m in members if m.priority == preferred]
    values = tuple(m.value for m in members)[: 1 if rdtype == "CNAME" else None]
    if not values:
        check.add(fields["pools"][1], where, f'nothing to transfer: pool "{pool.name}" of the catch-all '
                  "rule has no enabled member with a positive weight (set transfer: [VALUE, ...], or "
                  "transfer: [] to leave the name out of zone transfers)")
    return values


def _explicit_transfer(check: _Checker, where: str, fields: dict, rdtype: str, zone: Zone,
                       pools: dict[str, Pool]) -> tuple[str, ...]:
    """The `transfer:` values: addresses (a name for CNAME), none of them a member that
    the configuration never answers (disabled, or weight 0, in every pool it is in)."""
    node = fields["transfer"][1]
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
        check.add(node, where, "transfer must be a list of values ([] to leave the name out of transfers)")
        return ()
    values: list[str] = []
    for item in _list_of(check, fields, "transfer", where):
        value = _member_value(check, f"{where}: transfer", item, rdtype, zone)
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


def _pools(check: _Checker, where: str, fields: dict, node: yaml.Node, rdtype: str, zone: Zone,
           datacenters: dict[str, Datacenter], checks: "_Checks"
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


def _members(check: _Checker, where: str, fields: dict, node: yaml.Node, rdtype: str, zone: Zone,
             datacenters: dict[str, Datacenter], checks: "_Checks"
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
    members: list[Member] = []
    seen: dict[str, int] = {}
    broken = False
    for number, item in enumerate(items, 1):
        member_where = f"{where} member {number}"
        before = len(check.problems)
        member_fields: dict[str, tuple[yaml.Node, yaml.Node]] | None
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
        value = _member_value(check, member_where, value_node, rdtype, zone)
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
            if got is not None and got < 0:
                check.add(number_node, member_where, f"priority {got} is negative")
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


@dataclass
class _Checks:
    """The file's valid check definitions, and the names of the broken ones."""

    specs: dict[str, CheckSpec]
    broken: set[str]


def _broken_checks(root: dict[str, tuple[yaml.Node, yaml.Node]]) -> set[str]:
    """Names under `checks:` (valid or not), so a member naming a broken definition is
    told so instead of silently becoming an external check id."""
    node = root.get("checks", (None, None))[1]
    if not isinstance(node, yaml.MappingNode):
        return set()
    return {str(key.value) for key, _ in node.value if isinstance(key, yaml.ScalarNode)}


def _probe(check: _Checker, where: str, fields: dict, name: str | None, value: str | None,
           checks: _Checks) -> Probe | None:
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
        if name in checks.broken:
            check.add(fields["check"][1], where, f'check "{name}" has problems (see checks:)')
        return None
    return Probe(spec, address.rstrip(".") if spec.kind != "dns" else address)


def _member_value(check: _Checker, where: str, node: yaml.Node, rdtype: str, zone: Zone) -> str | None:
    if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL:
        check.add(node, where, f"value must be a string, not {_kind(node)}")
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


def _rules(check: _Checker, where: str, fields: dict, node: yaml.Node,
           pools: dict[str, Pool] | None) -> tuple[tuple[Rule, ...] | None, bool]:
    """The rules (with what could be read of broken ones) and whether all are valid."""
    if "rules" not in fields:
        check.add(node, where, 'missing key "rules" (end them with a catch-all: - {pool: NAME})')
        return None, False
    items = check.sequence(fields["rules"][1], where, "rules")
    if items is None:
        return None, False
    if not items:
        check.add(fields["rules"][1], where, "rules is empty")
        return None, False
    rules: list[Rule] = []
    valid: list[bool] = []
    broken = False
    catch_all: int | None = None
    for number, item in enumerate(items, 1):
        rule_where = f"{where}: rule {number}"
        before = len(check.problems)
        rule_fields = check.mapping(item, rule_where, "a rule", _RULE_KEYS)
        if rule_fields is None:
            broken = True
            rules.append(Rule(""))  # a placeholder, skipped below
            valid.append(False)
            continue
        mapping_ok = len(check.problems) == before  # no unknown or duplicate keys
        pool = None
        if "pool" not in rule_fields:
            check.add(item, rule_where, 'missing key "pool"')
        else:
            pool = check.string(rule_fields["pool"][1], rule_where, "pool")
            if pool is not None and pools is not None and pool not in pools:
                check.add(rule_fields["pool"][1], rule_where, f'pool "{pool}" is not a pool')
                broken = True
        before = len(check.problems)  # an unknown pool name leaves the rule's place valid
        subnets: list[IPNetwork] = []
        for sub in _list_of(check, rule_fields, "subnets", rule_where):
            text = check.string(sub, rule_where, "a subnet")
            if text is None:
                continue
            try:
                subnets.append(ipaddress.ip_network(text))
            except ValueError as exc:
                check.add(sub, rule_where, f'subnet "{text}" is not a network: {exc}')
        geos: list[str] = []
        for geo in _list_of(check, rule_fields, "geos", rule_where):
            text = check.string(geo, rule_where, "a geo")
            if text is None:
                continue
            code = text.upper()
            try:
                parse_geo(code)
            except ValueError:
                check.add(geo, rule_where, f'geo "{text}" is not a continent (EU), country (EU-FR or FR) '
                                           "or subdivision (NA-US-CA)")
                continue
            geos.append(code)
        asns: list[int] = []
        for asn in _list_of(check, rule_fields, "asns", rule_where):
            if not (isinstance(asn, yaml.ScalarNode) and asn.tag == _INT
                    and 0 <= _int(asn) <= MAX_ASN):
                check.add(asn, rule_where, f"asn {asn.value if isinstance(asn, yaml.ScalarNode) else '?'} "
                                           f"is not a number in 0..{MAX_ASN}")
                continue
            asns.append(_int(asn))
        # a rule with a problem keeps its pool (for "never used") but no structure checks
        valid.append(mapping_ok and len(check.problems) == before and pool is not None)
        broken = broken or not valid[-1]
        rules.append(Rule(pool or "", tuple(subnets), tuple(geos), tuple(asns)))
    checked = [rule if ok else None for rule, ok in zip(rules, valid)]
    for number, (rule, item) in enumerate(zip(checked, items), 1):
        rule_where = f"{where}: rule {number}"
        if catch_all is not None:
            check.add(item, where, f"rule {number} comes after the catch-all rule {catch_all} and is never used")
            broken = True
            continue
        if rule is None:
            continue
        earlier_rules = [r for r in checked[: number - 1] if r is not None]
        if rule.catch_all:
            catch_all = number
            continue
        if _covered(rule, earlier_rules):
            check.add(item, where, f"rule {number} is unreachable: earlier rules match every client it matches")
            broken = True
            continue
        for subnet in rule.subnets:
            for earlier_number, earlier in enumerate(checked[: number - 1], 1):
                if earlier is None or earlier.pool == rule.pool:
                    continue
                for other in earlier.subnets:
                    if other.version != subnet.version:
                        continue
                    # A broader subnet after a narrower one is the usual override (first
                    # match wins); a narrower one after a broader one can never match.
                    if not subnet.subnet_of(other):  # type: ignore[arg-type]
                        continue
                    check.add(item, rule_where, f"subnet {subnet} is inside subnet {other} of rule "
                                                f'{earlier_number}, which goes to pool "{earlier.pool}", '
                                                "so it never matches")
                    broken = True
    if catch_all is None and rules:
        check.add(items[-1], where, "rules must end with a catch-all rule (only a pool: - {pool: NAME})")
        broken = True
    return tuple(rules), not broken


def _list_of(check: _Checker, fields: dict, key: str, where: str) -> list[yaml.Node]:
    if key not in fields:
        return []
    node = fields[key][1]
    if isinstance(node, yaml.ScalarNode) and node.tag != _NULL:
        return [node]  # a single value for a one-item list
    items = check.sequence(node, where, key)
    return items or []


def _covered(rule: Rule, earlier: list[Rule]) -> bool:
    """True when every condition of `rule` is matched by some earlier rule (so the rule
    never decides). Geo codes are compared by containment only where the codes show it
    (EU covers EU-FR, US or NA-US covers NA-US-CA)."""
    if rule.catch_all:
        return any(r.catch_all for r in earlier)
    networks = [n for r in earlier for n in r.subnets]
    for subnet in rule.subnets:
        same = [n for n in networks if n.version == subnet.version]
        # typeshed wants both networks of one version; `same` is filtered by version,
        # which mypy cannot see.
        if not any(subnet.subnet_of(n)  # type: ignore[arg-type]
                   for n in ipaddress.collapse_addresses(same)):  # type: ignore[type-var]
            return False
    earlier_geos = {g for r in earlier for g in r.geos}
    for geo in rule.geos:
        if not any(g in earlier_geos for g in _geo_ancestors(geo)):
            return False
    earlier_asns = {a for r in earlier for a in r.asns}
    return all(asn in earlier_asns for asn in rule.asns)


def _geo_ancestors(code: str) -> list[str]:
    """The codes that match every client `code` matches, `code` included."""
    parts = code.split("-")
    if len(parts) == 1:
        return [code]
    if len(parts) == 2:
        return [code, parts[0], parts[1]]
    continent, country, _ = parts
    return [code, continent, country, f"{continent}-{country}"]


def _chain(check: _Checker, where: str, fields: dict, pools: dict[str, Pool] | None,
           datacenters: dict[str, Datacenter]) -> tuple[PolicyStep, ...] | None:
    if "policies" not in fields:
        return DEFAULT_CHAIN
    items = check.sequence(fields["policies"][1], where, "policies")
    if items is None:
        return None
    if not items:
        check.add(fields["policies"][1], where, "policies is empty")
        return None
    steps: list[PolicyStep] = []
    broken = False
    for item in items:
        before = len(check.problems)
        params_node = None
        if isinstance(item, yaml.ScalarNode) and item.tag == _STR:
            name = item.value
        elif isinstance(item, yaml.MappingNode) and len(item.value) == 1 \
                and isinstance(item.value[0][0], yaml.ScalarNode):
            name, params_node = item.value[0][0].value, item.value[0][1]
        else:
            check.add(item, where, "a policy must be a name or {name: {parameter: value}}")
            broken = True
            continue
        if name not in POLICY_PARAMS:
            check.add(item, where, f'unknown policy "{name}" (expected one of: {", ".join(POLICY_PARAMS)})')
            broken = True
            continue
        policy_where = f"{where}: policy {name}"
        allowed = POLICY_PARAMS[name]
        params: dict[str, object] = {}
        if params_node is not None and not (isinstance(params_node, yaml.ScalarNode) and params_node.tag == _NULL):
            if not allowed:
                check.add(params_node, policy_where, "takes no parameters")
            else:
                given = check.mapping(params_node, policy_where, "parameters", ())
                for key, (key_node, value_node) in (given or {}).items():
                    if key not in allowed:
                        check.add(key_node, policy_where,
                                  f'unknown parameter "{key}" (expected: {", ".join(allowed)})')
                        continue
                    value = _scalar(value_node) if isinstance(value_node, yaml.ScalarNode) else None
                    error = allowed[key](value)
                    if error:
                        check.add(value_node, policy_where, f"{key} {error}")
                        continue
                    params[key] = value
        if name == "closest" and pools is not None:
            for pool in pools.values():
                for member in pool.members:
                    dc = datacenters.get(member.datacenter) if member.datacenter else None
                    if member.datacenter is None:
                        check.add(item, policy_where, f'member {member.value} of pool "{pool.name}" '
                                                      "has no datacenter")
                    elif dc is not None and (dc.latitude is None or dc.longitude is None):
                        check.add(item, policy_where, f'datacenter "{dc.name}" of member {member.value} '
                                                      "has no coordinates")
        if len(check.problems) != before:
            broken = True
            continue
        steps.append(PolicyStep(name, tuple(sorted(params.items()))))
    return None if broken else tuple(steps)


def _unused_pools(check: _Checker, where: str, fields: dict, pools: dict[str, Pool],
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


def _static_conflicts(check: _Checker, where: str, node: int, owner: str, rdtype: str,
                      zone: Zone) -> None:
    """A steered name must not collide with the zone's own data: the same type, a CNAME
    there, any data at a steered CNAME's name, or a delegation at or above it. Nor may it
    sit in a pre-signed zone: its answer is chosen per query, and no signature made in
    advance covers it (there is no online signing)."""
    if zone.signed:
        check.add(node, where, f"the zone {zone.origin} is DNSSEC-signed: steered answers "
                  "cannot be pre-signed; serve steered names from an unsigned child zone "
                  "delegated from the signed one (see README, DNSSEC)")
        return
    name = dns.name.from_text(owner)
    wire = to_wire(name).lower()
    apex = zone.origin_wire
    cursor = wire
    while len(cursor) > len(apex):
        if cursor in zone.cuts:
            cut = dns.name.from_wire(cursor, 0)[0].to_text().lower()
            relation = "at" if cursor == wire else "below"
            check.add(node, where, f"the name is {relation} the zone cut {cut} (delegated away)")
            return
        cursor = cursor[cursor[0] + 1:]
    blob = zone.records.get(wire)
    if blob is None:
        return
    types = sorted(dns.rdatatype.to_text(dns.rdatatype.RdataType(t)) for t in record_types(blob))
    if rdtype == "CNAME":
        check.add(node, where, f"the zone also has data at this name ({', '.join(types)})")
    elif "CNAME" in types:
        check.add(node, where, "the zone has a CNAME at this name")
    elif rdtype in types:
        check.add(node, where, f"the zone also has {rdtype} records at this name")



def zone_conflict(owner: str, rdtype: str, zone: Zone) -> str | None:
    """Why a steered `owner`/`rdtype` cannot sit in `zone` as it is now, or None."""
    check = _Checker(zone.source)
    _static_conflicts(check, "", 0, owner, rdtype, zone)
    return check.problems[0].message if check.problems else None


def geo_warnings(records: Mapping[tuple[str, str], SteeredRecord], database_types: Iterable[str]
                 ) -> list[Problem]:
    """Rules that can never match with these GeoIP databases (`--geoip`): `geos` needs a
    City or Country database, `asns` an ASN one. Not errors (the rest of the record
    steers), but the operator almost certainly meant them to match."""
    types = [t.lower() for t in database_types]
    has_geo = any("asn" not in t for t in types)
    has_asn = any("asn" in t for t in types)
    warnings = []
    for record in records.values():
        for number, rule in enumerate(record.rules, 1):
            missing = []
            if rule.geos and not has_geo:
                missing.append("geos need a City or Country database")
            if rule.asns and not has_asn:
                missing.append("asns need an ASN database")
            if missing:
                file, _, line = record.source.rpartition(":")
                warnings.append(Problem(file, int(line), f"{record.owner} {record.rdtype}: rule {number} "
                                        f"never matches: {' and '.join(missing)} (--geoip)"))
    return warnings
