"""Ready time and memory with a large GeoIP database: gslb against gdnsd.

Each server starts alone on a small zone `geo.test.` whose names `c0..c{N-1}` are steered
by continent (EU, NA, AS, else the rest of the world) from a MaxMind database generated
at bench time (`mmdbgen.py`): a City-sized one (5.7M networks by default) and a Country
one (1M). "Ready" is process start until a steered query with an ECS option from a
network the database places in Europe gets the EU answer (so the map is built, not
merely the zone loaded); then the CPU time the process and its children used until then
(the steadier figure on a shared machine), VmRSS and VmHWM of the process and its
children, and PSS (shared pages counted once across them). gslb also runs once without a database, for
the memory a database adds.

    .venv/bin/python bench/geoload.py [--city-networks 5700000] [--country-networks 1000000]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import dns.edns
import dns.message
import dns.query
import maxminddb

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mmdbgen  # noqa: E402
from perf import Load, SubRun, run_mix  # noqa: E402
from servers import Gdnsd, Gslb, Server, _descendants, cpu_seconds, memory_kib  # noqa: E402

ORIGIN = "geo.test."
NAMES = 10
POOLS = {"EU": "192.0.2.1", "NA": "192.0.2.2", "AS": "192.0.2.3"}
WORLD = "192.0.2.9"


def write_zone(folder: Path) -> None:
    """The zone and gslb's steering file for it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{ORIGIN}zone").write_text(
        f"$ORIGIN {ORIGIN}\n$TTL 3600\n"
        f"@ IN SOA ns1.{ORIGIN} hostmaster.{ORIGIN} 1 7200 3600 1209600 300\n"
        f"@ IN NS ns1.{ORIGIN}\nns1 IN A 192.0.2.53\n")
    pools = "".join(f"      {code.lower()}:\n        members: [{addr}]\n"
                    for code, addr in POOLS.items())
    rules = "".join(f"      - {{geos: [{code}], pool: {code.lower()}}}\n" for code in POOLS)
    records = "".join(
        f"  c{i}:\n    type: A\n    ttl: 30\n    pools:\n{pools}"
        f"      world:\n        members: [{WORLD}]\n"
        f"    rules:\n{rules}      - pool: world\n    policies: [health, weighted]\n"
        for i in range(NAMES))
    (folder / f"{ORIGIN}gslb.yaml").write_text(f"zone: {ORIGIN}\n\nrecords:\n{records}")


def gdnsd_plugins(database: Path) -> tuple[str, list[str]]:
    """gdnsd's geoip plugin with one map by continent over `database`, and the DYNA lines."""
    dcmap = ", ".join([f"{code.lower()} => {addr}" for code, addr in POOLS.items()]
                      + [f"world => {WORLD}"])
    continents = ", ".join(f"{code} => [ {code.lower()} ]" for code in POOLS)
    resources = "".join(f"      c{i} => {{ map => continents, dcmap => {{ {dcmap} }} }}\n"
                        for i in range(NAMES))
    dcs = ", ".join(["world"] + [code.lower() for code in POOLS])
    plugins = ("plugins => {\n  geoip => {\n    maps => { continents => {\n"
               f"      geoip2_db => {database},\n      datacenters => [ {dcs} ],\n"
               f"      map => {{ default => [ world ], {continents} }}\n    }} }}\n"
               "    resources => {\n" + resources + "    }\n  }\n}\n")
    return plugins, [f"c{i} 30 DYNA geoip!c{i}\n" for i in range(NAMES)]


def eu_network(database: Path) -> ipaddress.IPv4Network:
    """An IPv4 /24 the database places in Europe (found by sampling addresses)."""
    rng = random.Random(7)
    with maxminddb.open_database(str(database)) as reader:
        for _ in range(100_000):
            address = ipaddress.IPv4Address(rng.getrandbits(32))
            record = reader.get(address)
            if isinstance(record, dict) and (record.get("continent") or {}).get("code") == "EU":
                return ipaddress.ip_network(f"{address}/24", strict=False)
    raise RuntimeError(f"{database}: no European network found")


def steered_answer(port: int, network: ipaddress.IPv4Network, timeout: float = 0.5) -> str | None:
    query = dns.message.make_query(f"c0.{ORIGIN}", "A", use_edns=0, options=[
        dns.edns.ECSOption(str(network.network_address), network.prefixlen)])
    try:
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=timeout)
    except Exception:
        return None
    return reply.answer[0][0].to_text() if reply.answer else None


class Ready:
    """A server whose readiness is the EU answer for `network`."""

    network: ipaddress.IPv4Network | None = None

    def ready(self) -> bool:
        assert isinstance(self, Server)
        if self.network is None:
            return super().ready()  # type: ignore[misc]
        return steered_answer(self.port, self.network, timeout=0.2) == POOLS["EU"]


class GslbGeo(Ready, Gslb):
    database: Path | None = None

    def command(self) -> list[str]:
        extra = ["--geoip", str(self.database)] if self.database else []
        return super().command() + extra


class GdnsdGeo(Ready, Gdnsd):
    database: Path

    def command(self) -> list[str]:
        conf = self.workdir / "etc"
        (conf / "zones").mkdir(parents=True, exist_ok=True)
        for sub in ("run", "state"):
            (self.workdir / sub).mkdir(exist_ok=True)
        plugins, dyna = gdnsd_plugins(self.database)
        zone = (self.zones_dir / f"{ORIGIN}zone").read_text()
        (conf / "zones" / ORIGIN.rstrip(".")).write_text(zone + "".join(dyna))
        (conf / "config").write_text(
            "options => {\n"
            f"  listen => [ 127.0.0.1:{self.port} ]\n"
            "  udp_threads => 1\n  tcp_threads => 1\n"
            f"  run_dir => {self.workdir / 'run'}\n  state_dir => {self.workdir / 'state'}\n"
            "}\n" + plugins)
        return [self.binary, "-c", str(conf), "start"]


def pss_kib(pid: int) -> int:
    """PSS of `pid` and its children: pages shared between them (a forked worker's
    copy-on-write memory) counted once in all."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


CLIENT_NETWORKS = 20_000


def write_ecs_queries(path: Path, count: int, seed: int) -> None:
    """`count` A queries over the steered names, each with an ECS option from one of
    CLIENT_NETWORKS random client networks (IPv4 /24 and IPv6 /48, half each), as many
    resolvers ask: dnsperf's binary input (-B: a 2-byte length, then the query)."""
    rng = random.Random(seed)
    networks = []
    for i in range(CLIENT_NETWORKS):
        if i % 2:
            networks.append(ipaddress.ip_network((rng.getrandbits(24) << 8, 24)))
        else:
            address = (0x2000 + rng.getrandbits(13)) << 112 | rng.getrandbits(32) << 80
            networks.append(ipaddress.ip_network((address, 48)))
    with path.open("wb") as out:
        for _ in range(count):
            network = rng.choice(networks)
            query = dns.message.make_query(f"c{rng.randrange(NAMES)}.{ORIGIN}", "A", use_edns=0,
                                           options=[dns.edns.ECSOption(
                                               str(network.network_address), network.prefixlen)])
            query.flags = 0
            wire = query.to_wire()
            out.write(len(wire).to_bytes(2, "big") + wire)


def measure(server: Server, timeout: float, queries: Path | None = None,
            seconds: float = 3.0) -> dict[str, str]:
    """Ready time, CPU and memory; with `queries`, then the server CPU per query of a
    dnsperf run over them."""
    try:
        took = server.start(timeout=timeout)
        cpu = cpu_seconds(server.pid)
        mem = memory_kib(server.pid)
        row = {"ready": f"{took:.2f} s", "cpu": f"{cpu:.2f} s", "rss": f"{mem['VmRSS'] / 1024:,.0f} MiB",
               "hwm": f"{mem['VmHWM'] / 1024:,.0f} MiB", "pss": f"{pss_kib(server.pid) / 1024:,.0f} MiB",
               "query": ""}
        if queries is not None:
            files = {"ecs": queries}
            warm = SubRun(1.0, "ecs", wire=True, once=True)  # the file once: steady state
            run_mix(server, (warm,), files, seconds, Load(), queries.parent)
            result = run_mix(server, (SubRun(1.0, "ecs", wire=True),), files, seconds, Load(),
                             queries.parent)
            row["query"] = (f"{result.cpu_us_per_query:.1f} us ({result.qps:,.0f} qps, "
                            f"{result.lost} lost)")
        return row
    except (TimeoutError, RuntimeError, OSError) as exc:  # OSError: gdnsd not installed
        return {"ready": f"failed: {str(exc).splitlines()[0][:60]}", "cpu": "", "rss": "", "hwm": "",
                "pss": "", "query": ""}
    finally:
        server.stop()


def measure_geo(tmp: Path, city_networks: int, country_networks: int, timeout: float,
                gdnsd: bool = True, seconds: float = 3.0) -> list[str]:
    zones = tmp / "geo-zones"
    write_zone(zones)
    lines = [
        f"Steered names by continent over a generated database; ready = process start until "
        f"an ECS query from a European /24 gets the EU answer; load average "
        f"{os.getloadavg()[0]:.1f} at the start.",
        "",
        f"Steered queries: A for the steered names, each with ECS from one of "
        f"{CLIENT_NETWORKS:,} random client networks (IPv4 /24 and IPv6 /48), one dnsperf run "
        f"of {seconds:g} s after the file was sent once (steady state); server CPU per query.",
        "",
        "| database | server | ready | CPU until ready | VmRSS | VmHWM | PSS | steered query CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    queries = tmp / "ecs.queries"
    write_ecs_queries(queries, 100_000, seed=11)
    row = measure(GslbGeo(tmp / "geo-gslb-none", zones, [ORIGIN]), timeout)
    lines.append(f"| none | gslb | {row['ready']} | {row['cpu']} | {row['rss']} | {row['hwm']} "
                 f"| {row['pss']} | |")
    for kind, networks in (("country", country_networks), ("city", city_networks)):
        if not networks:
            continue
        path = tmp / f"{kind}.mmdb"
        started = time.monotonic()
        counts = mmdbgen.build(path, kind, networks)
        print(f"# wrote {path.name}: {counts} in {time.monotonic() - started:.1f} s", file=sys.stderr)
        network = eu_network(path)
        label = f"{kind}, {networks / 1e6:g}M networks ({path.stat().st_size / 2**20:.0f} MiB)"
        for cls in (GslbGeo, GdnsdGeo) if gdnsd else (GslbGeo,):
            server = cls(tmp / f"geo-{cls.name}-{kind}", zones, [ORIGIN])
            server.database = path
            server.network = network
            row = measure(server, timeout, queries, seconds)
            print(f"# {label} {cls.name}: {row}", file=sys.stderr)
            lines.append(f"| {label} | {cls.name} | {row['ready']} | {row['cpu']} | {row['rss']} "
                         f"| {row['hwm']} | {row['pss']} | {row['query']} |")
        path.unlink()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--city-networks", type=int, default=5_700_000)
    parser.add_argument("--country-networks", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--no-gdnsd", action="store_true")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="the steered query run per server (3)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="gslb-geo-bench-"))
    try:
        print("\n".join(measure_geo(tmp, args.city_networks, args.country_networks,
                                    args.timeout, not args.no_gdnsd, args.seconds)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
