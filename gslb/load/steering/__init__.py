"""Steering YAML (`zones/<origin>.gslb.yaml`) loaded into `SteeredRecord`s, every problem
reported as `file:line: message`.

This is the load layer: it reads files, so it lives outside the pure `gslb.steering`
package. The YAML is composed into nodes so every value keeps its line
(`gslb.load.yamlcheck`), and validation collects *every* problem instead of stopping at
the first. A record with any problem is left out of the result; callers that want
all-or-nothing check whether the problem list is empty.

The format follows octoDNS dynamic records (pools with fallback, rules with geos and
subnets, a catch-all rule); README.md "Steering configuration" documents every key.
One module per job:

- files: finding the files, matching each to its zone, the load as a whole
- records: a file's `datacenters:` and `records:`, each record's own keys
- pools: pools and their members (values, weights, checks, fallbacks)
- rules: rules (subnets, geos, ASNs) and their order
- chain: the policy chain, read against the registry in `gslb.steering.policies`
- conflicts: steered names against the zone's data, rules against the GeoIP databases

The `checks:` section is read by `gslb.load.checks`.
"""

from gslb.load.steering.conflicts import geo_warnings, zone_conflict
from gslb.load.steering.files import (
    STEERING_SUFFIX,
    STEERING_SUFFIXES,
    SteeringLoad,
    load_all_steering,
    load_steering,
    load_steering_files,
    origin_from_path,
    steering_files,
    steering_from_text,
)

__all__ = [
    "STEERING_SUFFIX",
    "STEERING_SUFFIXES",
    "SteeringLoad",
    "geo_warnings",
    "load_all_steering",
    "load_steering",
    "load_steering_files",
    "origin_from_path",
    "steering_files",
    "steering_from_text",
    "zone_conflict",
]
