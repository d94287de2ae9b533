"""The policy chain of a steered record (`policies:`), checked against the policy registry.

Which policies exist, the parameters each accepts and their kinds, and whether one needs
datacenter coordinates all come from `gslb.steering.policies.POLICIES`, the registry the
engine runs; this module only reads YAML against it, so a new policy needs no change here.
"""

from __future__ import annotations

import yaml

from gslb.load.yamlcheck import NULL, STR, Checker, scalar
from gslb.steering.model import Datacenter, PolicyStep, Pool
from gslb.steering.policies import POLICIES

DEFAULT_CHAIN = (PolicyStep("health"), PolicyStep("priority"), PolicyStep("weighted"))


def read_chain(check: Checker, where: str, fields: dict, pools: dict[str, Pool] | None,
               datacenters: dict[str, Datacenter]) -> tuple[PolicyStep, ...] | None:
    """The record's chain (the default one when `policies:` is not given), or None when
    any step has a problem."""
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
        if isinstance(item, yaml.ScalarNode) and item.tag == STR:
            name = item.value
        elif isinstance(item, yaml.MappingNode) and len(item.value) == 1 \
                and isinstance(item.value[0][0], yaml.ScalarNode):
            name, params_node = item.value[0][0].value, item.value[0][1]
        else:
            check.add(item, where, "a policy must be a name or {name: {parameter: value}}")
            broken = True
            continue
        if name not in POLICIES:
            check.add(item, where, f'unknown policy "{name}" (expected one of: {", ".join(POLICIES)})')
            broken = True
            continue
        policy_where = f"{where}: policy {name}"
        policy = POLICIES[name]
        allowed = {param.name: param.kind for param in policy.params}
        params: dict[str, object] = {}
        if params_node is not None and not (isinstance(params_node, yaml.ScalarNode) and params_node.tag == NULL):
            if not allowed:
                check.add(params_node, policy_where, "takes no parameters")
            else:
                given = check.mapping(params_node, policy_where, "parameters", ())
                for key, (key_node, value_node) in (given or {}).items():
                    if key not in allowed:
                        check.add(key_node, policy_where,
                                  f'unknown parameter "{key}" (expected: {", ".join(allowed)})')
                        continue
                    value = scalar(value_node) if isinstance(value_node, yaml.ScalarNode) else None
                    error = allowed[key].problem(value)
                    if error:
                        check.add(value_node, policy_where, f"{key} {error}")
                        continue
                    params[key] = value
        if policy.needs_coordinates and pools is not None:
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
