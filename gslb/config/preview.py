"""Preview: what share of answers each pool and member gets, before and after a change.

For every steered record a change touches, the decision is made for each client network
of a sample (the caller's list, else one network per range of the GeoIP table, else a
spread of /8s) and each of the `DRAW_SLOTS` weighted draws, exactly as the DNS path
decides (same `Steering.context` and engine), and the answers are counted. An operator
sees "EU moves from fra to ams" before committing.

The work is bounded: at most MAX_NETWORKS networks may be given, and one preview makes
at most MAX_DECISIONS decisions in all, so a large sample over several records is
thinned evenly (each result says how many networks it used). About 30 us a decision
makes a preview cost at most about 1.5 s of the API process's time.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, replace

from gslb.steering.engine import decide
from gslb.steering.front import DRAW_SLOTS, GeoSource, Steering
from gslb.steering.model import Client, IPNetwork, Location, SteeredRecord

SAMPLE_LIMIT = 2000
MAX_NETWORKS = 256  # networks a caller may list
MAX_DECISIONS = 50_000  # decisions one preview makes, before and after together
# Without GeoIP and without a list: one network in each public /8 (subnet rules show).
DEFAULT_NETWORKS = tuple(ipaddress.ip_network(f"{first}.0.0.0/24") for first in range(1, 224)
                         if first not in (127,)) + (ipaddress.ip_network("10.0.0.0/24"),)


@dataclass(frozen=True)
class Shares:
    name: str
    type: str
    networks: int
    pools: dict[str, tuple[float, float]]
    members: dict[str, tuple[float, float]]


def sample_networks(given: list[str] | None, geo: GeoSource | None) -> list[IPNetwork]:
    """The caller's networks (ValueError for a bad one, or more than MAX_NETWORKS), else a
    sample of the GeoIP table, else DEFAULT_NETWORKS."""
    if given:
        if len(given) > MAX_NETWORKS:
            raise ValueError(f"{len(given)} networks: a preview takes at most {MAX_NETWORKS}")
        return [ipaddress.ip_network(text, strict=False) for text in given]
    if geo is not None:
        sampled = geo.table().sample(SAMPLE_LIMIT)
        if sampled:
            return sampled
    return list(DEFAULT_NETWORKS)


def _count(records: dict[tuple[str, str], SteeredRecord], key: tuple[str, str],
           networks: list[IPNetwork], geo: GeoSource | None) -> tuple[dict[str, float], dict[str, float]]:
    pools: dict[str, float] = defaultdict(float)
    members: dict[str, float] = defaultdict(float)
    if key not in records:
        return pools, members
    steering = Steering.with_geo({key: records[key]}, {}, {}, 0, geo, keyed=False)
    unit = 1.0 / (len(networks) * DRAW_SLOTS)
    for network in networks:
        location = geo.locate(network.network_address) if geo is not None else Location()
        client = Client(network=network, from_ecs=True, location=location)
        for slot in range(DRAW_SLOTS):
            decision = decide(records[key], steering.context(key, client, slot))
            pools[decision.pool or f"({decision.rcode})"] += unit
            for value in decision.values:
                members[value] += unit / len(decision.values)
    return pools, members


def preview(before: dict[tuple[str, str], SteeredRecord], after: dict[tuple[str, str], SteeredRecord],
            networks: list[IPNetwork], geo: GeoSource | None) -> list[Shares]:
    """Shares before and after for every steered record that differs."""
    result = []
    changed = [key for key in sorted(set(before) | set(after))
               if not _same(before.get(key), after.get(key))]
    networks = thinned(networks, MAX_DECISIONS // max(1, 2 * DRAW_SLOTS * len(changed)))
    for key in changed:
        pools_before, members_before = _count(before, key, networks, geo)
        pools_after, members_after = _count(after, key, networks, geo)
        result.append(Shares(key[0], key[1], len(networks),
                             _pair(pools_before, pools_after), _pair(members_before, members_after)))
    return result


def thinned(networks: list[IPNetwork], most: int) -> list[IPNetwork]:
    """At most `most` (at least one) of `networks`, spread evenly over the list."""
    most = max(1, most)
    if len(networks) <= most:
        return networks
    step = len(networks) / most
    return [networks[int(i * step)] for i in range(most)]


def _same(first: SteeredRecord | None, second: SteeredRecord | None) -> bool:
    """Equal but for where they were written (an edit moves the lines of the file)."""
    if first is None or second is None:
        return first is second
    return replace(first, source="") == replace(second, source="")


def _pair(before: dict[str, float], after: dict[str, float]) -> dict[str, tuple[float, float]]:
    return {k: (round(before.get(k, 0.0), 4), round(after.get(k, 0.0), 4)) for k in sorted(set(before) | set(after))}
