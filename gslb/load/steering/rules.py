"""The rules of a steered record: which client goes to which pool, first match wins.

A rule matches on subnets, geos (continent, country or subdivision codes) and ASNs, and
the last rule is a catch-all (only a pool). Besides each value, the order is checked:
a rule after the catch-all, a rule earlier rules already cover, and a subnet inside an
earlier rule's subnet that goes elsewhere can never match, so each is a problem.
"""

from __future__ import annotations

import ipaddress

import yaml

from gslb.load.bounds import MAX_RULES
from gslb.load.yamlcheck import INT, Checker, as_int, list_of
from gslb.steering.geo import parse_geo
from gslb.steering.model import IPNetwork, Pool, Rule

MAX_ASN = 2**32 - 1
_RULE_KEYS = ("asns", "geos", "pool", "subnets")


def read_rules(check: Checker, where: str, fields: dict, node: yaml.Node,
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
    if len(items) > MAX_RULES:
        check.add(fields["rules"][1], where, f"{len(items)} rules: a record has at most {MAX_RULES}")
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
        for sub in list_of(check, rule_fields, "subnets", rule_where):
            text = check.string(sub, rule_where, "a subnet")
            if text is None:
                continue
            try:
                subnets.append(ipaddress.ip_network(text))
            except ValueError as exc:
                check.add(sub, rule_where, f'subnet "{text}" is not a network: {exc}')
        geos: list[str] = []
        for geo in list_of(check, rule_fields, "geos", rule_where):
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
        for asn in list_of(check, rule_fields, "asns", rule_where):
            if not (isinstance(asn, yaml.ScalarNode) and asn.tag == INT
                    and 0 <= as_int(asn) <= MAX_ASN):
                check.add(asn, rule_where, f"asn {asn.value if isinstance(asn, yaml.ScalarNode) else '?'} "
                                           f"is not a number in 0..{MAX_ASN}")
                continue
            asns.append(as_int(asn))
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
