"""Generate the benchmark zones and the dnsperf query files (deterministic, seeded).

The zone `bench.test.` holds, beside its apex:
  h0..h{N-1}      A for every host, AAAA for the even ones (odd hosts give NODATA for AAAA)
  c0..c{C-1}      CNAME to a host (answer = CNAME + the host's A)
  *.wild          wildcard A (RFC 4592)
  sub0..sub{D-1}  delegations, two NS each, with in-bailiwick glue A records
Everything else under the zone is NXDOMAIN.

Steered names (the steered mix), declared once in `steered_records()` and written in each
server's own form: gslb's `bench.test.gslb.yaml`, gdnsd's plugin config, PowerDNS LUA
records, and for Knot (which does not steer) plain A records of every member:
  w0..w{W-1}      weighted: one pool of three members, weights 3:2:1, one answer per query
  g0..g{G-1}      CIDR rules: 10.0.0.0/9 -> pool lo, 10.128.0.0/9 -> pool hi, else pool
                  world; one member per pool; no GeoIP database needed
  x0..x{W-1}      `hash` over the weighted names' members (gslb only)
  n0..n{L-1}      `closest`: one member in each of four datacenters (gslb only; needs a
                  GeoIP database with coordinates, bench/mmdbgen.py makes one)
  t0..t{L-1}      `latency` over the same members, RTTs from `write_rtt_state` (gslb only)
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import string
from dataclasses import dataclass
from pathlib import Path

ORIGIN = "bench.test."
LARGE_ORIGIN = "large.test."

HOSTS = 10_000
CNAMES = 1_000
DELEGATIONS = 200
STEERED_WEIGHTED = 50
STEERED_GEO = 50
STEERED_TTL = 30

# CIDR rules of the g* names, in order; the last (None) is the catch-all.
GEO_RULES: list[tuple[str | None, str]] = [("10.0.0.0/9", "lo"), ("10.128.0.0/9", "hi"),
                                          (None, "world")]

# The realistic mix (issue: 70% hits, 10% NXDOMAIN, 5% NODATA, 5% CNAME, 5% wildcard, 5% referral).
REALISTIC_WEIGHTS = {
    "hit": 70,
    "nxdomain": 10,
    "nodata": 5,
    "cname": 5,
    "wildcard": 5,
    "referral": 5,
}


@dataclass(frozen=True)
class ZoneShape:
    hosts: int = HOSTS
    cnames: int = CNAMES
    delegations: int = DELEGATIONS


def _soa(origin: str) -> str:
    return (
        f"$ORIGIN {origin}\n$TTL 3600\n"
        f"@ IN SOA ns1.{origin} hostmaster.{origin} 2026010101 7200 3600 1209600 300\n"
        f"@ IN NS ns1.{origin}\n@ IN NS ns2.{origin}\n"
        "ns1 IN A 192.0.2.53\nns2 IN A 198.51.100.53\n"
    )


def write_bench_zone(path: Path, shape: ZoneShape = ZoneShape()) -> int:
    """Write the benchmark zone; returns the number of records."""
    lines = [_soa(ORIGIN), "@ IN A 192.0.2.1\n@ IN AAAA 2001:db8::1\n"]
    records = 6
    for i in range(shape.hosts):
        lines.append(f"h{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
        records += 1
        if i % 2 == 0:
            lines.append(f"h{i} IN AAAA 2001:db8::{i:x}\n")
            records += 1
    for i in range(shape.cnames):
        lines.append(f"c{i} IN CNAME h{(i * 7) % shape.hosts}.{ORIGIN}\n")
        records += 1
    lines.append("*.wild IN A 192.0.2.100\n")
    records += 1
    for i in range(shape.delegations):
        lines.append(
            f"sub{i} IN NS ns1.sub{i}.{ORIGIN}\nsub{i} IN NS ns2.sub{i}.{ORIGIN}\n"
            f"ns1.sub{i} IN A 203.0.113.{i % 250 + 1}\nns2.sub{i} IN A 198.18.0.{i % 250 + 1}\n"
        )
        records += 4
    path.write_text("".join(lines))
    return records


def write_large_zone(path: Path, count: int) -> None:
    """A zone of `count` A records (plus apex), streamed to disk."""
    with path.open("w") as out:
        out.write(_soa(LARGE_ORIGIN))
        chunk = []
        for i in range(count):
            chunk.append(f"r{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
            if len(chunk) == 10_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))


def _label(rng: random.Random, n: int = 12) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=n))


def _query(kind: str, rng: random.Random, shape: ZoneShape) -> str:
    if kind == "hit":
        i = rng.randrange(shape.hosts)
        if i % 2 == 0 and rng.random() < 0.3:
            return f"h{i}.{ORIGIN} AAAA"
        return f"h{i}.{ORIGIN} A"
    if kind == "nxdomain":
        return f"nx-{_label(rng, 8)}.{ORIGIN} A"
    if kind == "nodata":
        i = rng.randrange(shape.hosts)
        return f"h{i | 1}.{ORIGIN} AAAA" if rng.random() < 0.5 else f"h{i}.{ORIGIN} TXT"
    if kind == "cname":
        return f"c{rng.randrange(shape.cnames)}.{ORIGIN} A"
    if kind == "wildcard":
        return f"{_label(rng, 6)}.wild.{ORIGIN} A"
    if kind == "referral":
        return f"www.sub{rng.randrange(shape.delegations)}.{ORIGIN} A"
    raise ValueError(kind)


def write_mix(path: Path, weights: dict[str, int], count: int, seed: int,
              shape: ZoneShape = ZoneShape()) -> None:
    """`count` queries drawn with the given kind weights, shuffled."""
    rng = random.Random(seed)
    kinds: list[str] = []
    total = sum(weights.values())
    for kind, weight in weights.items():
        kinds += [kind] * round(count * weight / total)
    rng.shuffle(kinds)
    path.write_text("".join(_query(kind, rng, shape) + "\n" for kind in kinds))


def write_flood(path: Path, count: int, seed: int, origin: str = ORIGIN) -> None:
    """`count` unique random names directly under the zone (a random-subdomain attack)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    names: list[str] = []
    while len(names) < count:
        name = _label(rng, 16)
        if name not in seen:
            seen.add(name)
            names.append(name)
    path.write_text("".join(f"{name}.{origin} A\n" for name in names))


@dataclass(frozen=True)
class WeightedName:
    name: str
    members: tuple[tuple[str, int], ...]   # (address, weight)


@dataclass(frozen=True)
class GeoName:
    name: str
    pools: dict[str, str]                  # pool -> its one member address


def steered_records(weighted: int = STEERED_WEIGHTED,
                    geo: int = STEERED_GEO) -> tuple[list[WeightedName], list[GeoName]]:
    """The steered names of the bench zone (relative to ORIGIN), one definition for all."""
    w = [WeightedName(f"w{i}", tuple((f"198.{18 + k}.100.{i % 250 + 1}", weight)
                                     for k, weight in enumerate((3, 2, 1))))
         for i in range(weighted)]
    g = [GeoName(f"g{i}", {pool: f"203.0.{110 + k}.{i % 250 + 1}"
                           for k, (_, pool) in enumerate(GEO_RULES)})
         for i in range(geo)]
    return w, g


STEERED_HASHED = 50


def hashed_records(count: int = STEERED_HASHED) -> list[WeightedName]:
    """x0..x{count-1}: the weighted names' members, chosen by `hash` (sticky per client
    network) instead of a weighted draw; gslb only (the peers have no such policy)."""
    return [WeightedName(f"x{i}", rec.members)
            for i, rec in enumerate(steered_records(weighted=count, geo=0)[0])]


STEERED_LOCATED = 50  # names per location policy (n*: closest, t*: latency)
DATACENTERS = (("ams", 52.37, 4.9), ("iad", 38.9, -77.0), ("nrt", 35.7, 139.7), ("syd", -33.9, 151.2))
LOCATED_POLICIES = {"n": "closest", "t": "{latency: {tolerance_ms: 5}}"}
ECS_NETWORKS = 4_000  # distinct ECS client networks of the located and weighted-ecs mixes


def located_records(prefix: str) -> list[tuple[str, tuple[str, ...]]]:
    """n* or t*: (name, one member address per datacenter, in DATACENTERS order)."""
    return [(f"{prefix}{i}", tuple(f"198.{30 + k}.100.{i % 250 + 1}" for k in range(len(DATACENTERS))))
            for i in range(STEERED_LOCATED)]


def write_rtt_state(path: Path) -> None:
    """The `--state` file of the latency names: RTTs by continent (mmdbgen's world),
    two countries, and a few client networks, to every datacenter."""
    rng = random.Random(7)
    clients = ["AF", "AN", "AS", "EU", "NA", "OC", "SA", "EU-AA", "NA-AB",
               "60.0.0.0/8", "61.128.0.0/9", "2a00::/12"]
    lines = ["rtt:\n"]
    for client in clients:
        times = ", ".join(f"{dc}: {rng.randrange(5, 200)}" for dc, _, _ in DATACENTERS)
        lines.append(f'  "{client}": {{{times}}}\n')
    path.write_text("".join(lines))


def write_steering_yaml(path: Path) -> None:
    """gslb's steering file for ORIGIN (docs/steering.md)."""
    weighted, geo = steered_records()
    dcs = "".join(f"  {dc}: {{latitude: {lat}, longitude: {lon}}}\n" for dc, lat, lon in DATACENTERS)
    out = [f"zone: {ORIGIN}\ndatacenters:\n{dcs}records:\n"]
    for prefix, policy in LOCATED_POLICIES.items():
        for name, addresses in located_records(prefix):
            members = ", ".join(f"{{value: {addr}, datacenter: {dc}}}"
                                for addr, (dc, _, _) in zip(addresses, DATACENTERS))
            out.append(f"  {name}:\n    type: A\n    ttl: {STEERED_TTL}\n"
                       f"    pools: {{web: {{members: [{members}]}}}}\n"
                       f"    rules: [{{pool: web}}]\n    policies: [health, {policy}]\n")
    for rec in hashed_records():
        members = ", ".join(f"{{value: {addr}, weight: {weight}}}" for addr, weight in rec.members)
        out.append(f"  {rec.name}:\n    type: A\n    ttl: {STEERED_TTL}\n"
                   f"    pools: {{web: {{members: [{members}]}}}}\n"
                   "    rules: [{pool: web}]\n    policies: [health, hash]\n")
    for rec in weighted:
        members = ", ".join(f"{{value: {addr}, weight: {weight}}}" for addr, weight in rec.members)
        out.append(f"  {rec.name}:\n    type: A\n    ttl: {STEERED_TTL}\n"
                   f"    pools: {{web: {{members: [{members}]}}}}\n"
                   "    rules: [{pool: web}]\n    policies: [health, weighted]\n")
    for rec in geo:
        pools = ", ".join(f"{pool}: {{members: [{addr}]}}" for pool, addr in rec.pools.items())
        rules = ", ".join(f"{{subnets: [{net}], pool: {pool}}}" if net else f"{{pool: {pool}}}"
                          for net, pool in GEO_RULES)
        out.append(f"  {rec.name}:\n    type: A\n    ttl: {STEERED_TTL}\n"
                   f"    pools: {{{pools}}}\n    rules: [{rules}]\n"
                   "    policies: [health, weighted]\n")
    path.write_text("".join(out))


def steered_static_lines() -> str:
    """Knot's stand-in: every member of every steered name as a plain A record."""
    weighted, geo = steered_records()
    lines = [f"{rec.name} {STEERED_TTL} IN A {addr}\n" for rec in weighted for addr, _ in rec.members]
    lines += [f"{rec.name} {STEERED_TTL} IN A {addr}\n" for rec in geo for addr in rec.pools.values()]
    lines += [f"{rec.name} {STEERED_TTL} IN A {addr}\n" for rec in hashed_records()
              for addr, _ in rec.members]
    lines += [f"{name} {STEERED_TTL} IN A {addr}\n" for prefix in LOCATED_POLICIES
              for name, addresses in located_records(prefix) for addr in addresses]
    return "".join(lines)


def steered_pdns_lines() -> str:
    """PowerDNS LUA records: pickwrandom() for weighted, netmask() for the CIDR rules."""
    weighted, geo = steered_records()
    lines = []
    for rec in weighted:
        table = ",".join(f"{{{weight},'{addr}'}}" for addr, weight in rec.members)
        lines.append(f'{rec.name} {STEERED_TTL} IN LUA A "pickwrandom({{{table}}})"\n')
    for rec in geo:
        body = ";" + " ".join(f"if netmask({{'{net}'}}) then return '{rec.pools[pool]}' end"
                              for net, pool in GEO_RULES if net)
        world = next(pool for net, pool in GEO_RULES if net is None)
        body += f" return '{rec.pools[world]}'"
        lines.append(f'{rec.name} {STEERED_TTL} IN LUA A "{body}"\n')
    return "".join(lines)


def steered_gdnsd(zone_lines: list[str]) -> str:
    """gdnsd's `plugins` stanza (weighted + geoip with `nets`); appends the DYNA records."""
    weighted, geo = steered_records()
    w_res, g_res = [], []
    for rec in weighted:
        members = " ".join(f"m{k} = [ {addr}, {weight} ]"
                           for k, (addr, weight) in enumerate(rec.members))
        w_res.append(f"      {rec.name} => {{ {members} }}\n")
        zone_lines.append(f"{rec.name} {STEERED_TTL} DYNA weighted!{rec.name}\n")
    world = next(pool for net, pool in GEO_RULES if net is None)
    dcs = [world] + [pool for net, pool in GEO_RULES if net]   # first = default for the rest
    nets = ", ".join(f"{net} => [ {pool} ]" for net, pool in GEO_RULES if net)
    for rec in geo:
        dcmap = ", ".join(f"{pool} => {addr}" for pool, addr in rec.pools.items())
        g_res.append(f"      {rec.name} => {{ map => rules, dcmap => {{ {dcmap} }} }}\n")
        zone_lines.append(f"{rec.name} {STEERED_TTL} DYNA geoip!{rec.name}\n")
    return ("plugins => {\n  weighted => {\n" + "".join(w_res) + "  }\n"
            "  geoip => {\n    maps => { rules => { datacenters => [ " + ", ".join(dcs)
            + f" ], nets => {{ {nets} }} }} }}\n    resources => {{\n" + "".join(g_res)
            + "    }\n  }\n}\n")


def write_steered_queries(path: Path, count: int, seed: int) -> None:
    """`count` A queries, half over the weighted names and half over the CIDR-rule names."""
    weighted, geo = steered_records()
    rng = random.Random(seed)
    names = [rec.name for rec in weighted] * (count // (2 * len(weighted)) + 1)
    names = names[:count // 2] + ([rec.name for rec in geo] * (count // len(geo) + 1))[:count - count // 2]
    rng.shuffle(names)
    path.write_text("".join(f"{name}.{ORIGIN} A\n" for name in names))


def write_ecs_queries(path: Path, names: list[str], count: int, seed: int) -> None:
    """`count` A queries over `names`, each with an ECS option from ECS_NETWORKS client
    networks (/24 IPv4 in mmdbgen's space, /56 IPv6 under its regions), in dnsperf's
    wire format (-B: a 2-byte length before each message)."""
    import dns.edns
    import dns.message

    rng = random.Random(seed)
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for i in range(ECS_NETWORKS):
        if i % 4:
            first = rng.choice([n for n in range(1, 224) if n not in (10, 127)])
            networks.append(ipaddress.IPv4Network(((first << 24 | rng.getrandbits(24)) & ~0xFF, 24)))
        else:
            top = rng.choice([0x2001 << 112, 0x24 << 120, 0x26 << 120, 0x2A << 120])
            networks.append(ipaddress.IPv6Network(((top | rng.getrandbits(104)) >> 72 << 72, 56)))
    with path.open("wb") as out:
        for _ in range(count):
            network = rng.choice(networks)
            query = dns.message.make_query(f"{rng.choice(names)}.{ORIGIN}", "A", use_edns=0, options=[
                dns.edns.ECSOption(str(network.network_address), network.prefixlen)])
            query.flags = 0
            wire = query.to_wire()
            out.write(len(wire).to_bytes(2, "big") + wire)


def write_located_queries(path: Path, prefix: str, count: int, seed: int) -> None:
    """ECS queries (`write_ecs_queries`) over the n* (closest) or t* (latency) names."""
    write_ecs_queries(path, [name for name, _ in located_records(prefix)], count, seed)


def write_hashed_queries(path: Path, count: int, seed: int) -> None:
    """`count` A queries over the `hash` names (x*), shuffled."""
    rng = random.Random(seed)
    names = [rec.name for rec in hashed_records()]
    path.write_text("".join(f"{rng.choice(names)}.{ORIGIN} A\n" for _ in range(count)))


# --- many zones: thousands of small zones (hosting, reverse zones) -------------------------

MANY_HOSTS = 10  # A records per small zone


def many_origin(i: int) -> str:
    return f"z{i:05d}.test."


def write_many_zones(folder: Path, count: int) -> list[str]:
    """`count` small zones (SOA, two NS with glue, MANY_HOSTS A records) named
    `z00000.test.` ..., one file each (`<origin>zone`); their origins."""
    origins = []
    for i in range(count):
        origin = many_origin(i)
        hosts = "".join(f"h{h} IN A 10.{i >> 8 & 255}.{i & 255}.{h + 1}\n"
                        for h in range(MANY_HOSTS))
        (folder / f"{origin}zone").write_text(_soa(origin) + hosts)
        origins.append(origin)
    return origins


def write_many_queries(path: Path, kind: str, zones: int, count: int, seed: int) -> None:
    """Queries spread uniformly over `zones` small zones: `first` (every host's A once, in
    a random order), `hits` (h0..h9 A), `flood` (a
    random 16-character label under a random zone: NXDOMAIN) or `deep` (a random name of
    110 labels under a random zone: NXDOMAIN after the longest zone-finding walk)."""
    rng = random.Random(seed)
    lines = []
    if kind == "first":
        lines = [f"h{h}.{many_origin(i)} A\n" for i in range(zones) for h in range(MANY_HOSTS)]
        rng.shuffle(lines)
        count = 0
    for _ in range(count):
        origin = many_origin(rng.randrange(zones))
        if kind == "hits":
            lines.append(f"h{rng.randrange(MANY_HOSTS)}.{origin} A\n")
        elif kind == "flood":
            lines.append(f"{_label(rng, 16)}.{origin} A\n")
        elif kind == "deep":
            labels = ".".join(rng.choice(string.ascii_lowercase) for _ in range(110))
            lines.append(f"{labels}.{origin} A\n")
        else:
            raise ValueError(kind)
    path.write_text("".join(lines))


# --- long tail: one zone of a million owners (write_large_zone) ---------------------------

def write_large_queries(path: Path, kind: str, records: int, count: int, seed: int,
                        rank_seed: int = 0) -> None:
    """A queries for the owners r0..r{records-1} of the large zone, where a server that
    caches answers sees mostly misses: `first` (`count` distinct owners, each once, in a
    random order), `uniform` (`count` owners drawn uniformly: the working set is the whole
    zone) or `zipf` (Zipf with s = 1: rank k drawn with weight 1/k, inverse CDF by
    bisection over the cumulative weights; which owner has which rank is shuffled with
    `rank_seed`, the same for every file, so a zipf head stays the same across runs)."""
    rng = random.Random(seed)
    if kind == "first":
        owners = rng.sample(range(records), min(count, records))
    elif kind == "uniform":
        owners = rng.choices(range(records), k=count)
    elif kind == "zipf":
        ranked = list(range(records))
        random.Random(rank_seed).shuffle(ranked)
        cumulative = list(itertools.accumulate(1 / rank for rank in range(1, records + 1)))
        owners = rng.choices(ranked, cum_weights=cumulative, k=count)
    else:
        raise ValueError(kind)
    path.write_text("".join(f"r{i}.{LARGE_ORIGIN} A\n" for i in owners))
