"""`make bench`: dnsperf against Knot DNS and gslb on the same zone, in the same run.

Prints three tables: per mix and server, qps (median of --runs), average and p99 latency,
server CPU microseconds per query and the ratios to Knot; then load time and RSS for a
zone of one million A records, and CPU per query over its owners (first queries, uniform,
Zipf: the long tail an answer cache cannot hold); then ready time and memory with a
generated GeoIP database (City-sized and Country-sized, `geoload.py`), gslb against gdnsd,
and latency while the City database is replaced on disk under a steady 10k qps.
Loopback only; every load stops by itself. The steered mix also runs gdnsd and PowerDNS
(LUA records) when their Debian packages install.

Run with the project venv's python: `.venv/bin/python bench/run.py [--seconds 6] [--runs 3]`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import geoload  # noqa: E402
import mmdbgen  # noqa: E402
import zonegen  # noqa: E402
from perf import Load, RunResult, SubRun, run_mix, warm_up  # noqa: E402
from servers import (PEER_PACKAGES, PEERS, ROOT, Gslb, GslbPython, GslbWorkers,  # noqa: E402
                     Knot, Server, compile_project, memory_kib, rss_by_process_kib,
                     shared_kib)

ECS_V4 = "00011800c00002"          # family 1, /24, scope 0, 192.0.2.0
ECS_V6 = "0002380020010db8000001"  # family 2, /56, scope 0, 2001:db8:0:100::
ECS_10_LO = "000118000a0100"       # family 1, /24, scope 0, 10.1.0.0: rule 10.0.0.0/9
ECS_10_HI = "000118000ac800"       # family 1, /24, scope 0, 10.200.0.0: rule 10.128.0.0/9


SIGNED_ORIGIN = "nsec3.test."  # the test suite's signed zone (every type), NSEC3 chain


@dataclass(frozen=True)
class Mix:
    """One row group of the table. `subruns` None means not measurable yet (`unavailable`)."""

    name: str
    description: str
    subruns: tuple[SubRun, ...] | None
    unavailable: str = ""


MIXES: list[Mix] = [
    Mix("static", "A/AAAA hits on 10k hosts, no EDNS",
        (SubRun(1.0, "hits"),)),
    Mix("realistic", "70% hit, 10% NXDOMAIN, 5% NODATA, 5% CNAME, 5% wildcard, 5% referral; "
        "50% no EDNS, 35% EDNS, 10% EDNS+ECS v4, 5% EDNS+ECS v6 (by time)",
        (SubRun(0.50, "realistic"), SubRun(0.35, "realistic", edns=True),
         SubRun(0.10, "realistic", ecs=ECS_V4), SubRun(0.05, "realistic", ecs=ECS_V6))),
    Mix("steered", "50 weighted names (3 members, 3:2:1) and 50 CIDR-rule names (10.0.0.0/9, "
        "10.128.0.0/9, catch-all), A queries half each; four sub-runs by time: no EDNS (client "
        "127.0.0.1: catch-all), EDNS+ECS 10.1.0.0/24, 10.200.0.0/24, 192.0.2.0/24",
        (SubRun(0.25, "steered"), SubRun(0.25, "steered", ecs=ECS_10_LO),
         SubRun(0.25, "steered", ecs=ECS_10_HI), SubRun(0.25, "steered", ecs=ECS_V4))),
    Mix("hash", f"{zonegen.STEERED_HASHED} names chosen by `hash` (sticky per client network) "
        "among the weighted names' members, A queries; the steered mix's four sub-runs (gslb "
        "only: Knot serves every member; compare with the steered row's CPU/query)",
        (SubRun(0.25, "hashed"), SubRun(0.25, "hashed", ecs=ECS_10_LO),
         SubRun(0.25, "hashed", ecs=ECS_10_HI), SubRun(0.25, "hashed", ecs=ECS_V4))),
    Mix("weighted-ecs", f"the weighted names (w*), A queries, each with ECS from one of "
        f"{zonegen.ECS_NETWORKS:,} client networks (/24, /56): the baseline of the closest and "
        "latency rows (gslb: with the GeoIP database those mixes use)",
        (SubRun(1.0, "weighted-ecs", wire=True),)),
    Mix("closest", f"{zonegen.STEERED_LOCATED} names chosen by `closest` among four datacenters, "
        f"over the same {zonegen.ECS_NETWORKS:,} ECS client networks, with a generated City "
        "database (gslb only: Knot serves every member)",
        (SubRun(1.0, "closest", wire=True),)),
    Mix("latency", f"{zonegen.STEERED_LOCATED} names chosen by `latency` (RTTs by continent, "
        f"country and network, from a --state file), over the same {zonegen.ECS_NETWORKS:,} ECS "
        "client networks and City database (gslb only)",
        (SubRun(1.0, "latency", wire=True),)),
    Mix("flood", "random-subdomain flood: 200k unique random names, EDNS",
        (SubRun(1.0, "flood", edns=True),)),
    Mix("signed-flood", "random-subdomain flood with DO, as validating resolvers send it: "
        f"200k unique random names under {SIGNED_ORIGIN} (signed by kzonesign, NSEC3)",
        (SubRun(1.0, "signed-flood", do=True),)),
]


@dataclass(frozen=True)
class QueryFile:
    """A dnsperf query file: how many queries `make bench` writes into it, and its writer
    (seeded), which tests/test_bench_files.py runs for a few thousand."""

    count: int
    write: Callable[[Path, int], None]


QUERY_FILES: dict[str, QueryFile] = {
    "hits": QueryFile(200_000, lambda path, n: zonegen.write_mix(path, {"hit": 1}, n, seed=1)),
    "realistic": QueryFile(200_000, lambda path, n: zonegen.write_mix(
        path, zonegen.REALISTIC_WEIGHTS, n, seed=2)),
    "flood": QueryFile(200_000, lambda path, n: zonegen.write_flood(path, n, seed=3)),
    "steered": QueryFile(100_000, lambda path, n: zonegen.write_steered_queries(path, n, seed=4)),
    "hashed": QueryFile(100_000, lambda path, n: zonegen.write_hashed_queries(path, n, seed=6)),
    "weighted-ecs": QueryFile(100_000, lambda path, n: zonegen.write_ecs_queries(
        path, [rec.name for rec in zonegen.steered_records()[0]], n, seed=7)),
    "closest": QueryFile(100_000, lambda path, n: zonegen.write_located_queries(
        path, "n", n, seed=7)),
    "latency": QueryFile(100_000, lambda path, n: zonegen.write_located_queries(
        path, "t", n, seed=7)),
    "signed-flood": QueryFile(200_000, lambda path, n: zonegen.write_flood(
        path, n, seed=5, origin=SIGNED_ORIGIN)),
}

PEER_MIXES = {"steered"}  # the mixes the peers (gdnsd, PowerDNS) are measured on
GEO_MIXES = {"weighted-ecs", "closest", "latency"}  # gslb serves them with --geoip and --state
GEO_NETWORKS = 1_000_000  # networks of their generated City database


SERVERS: list[type[Server]] = [Knot, Gslb, GslbPython]


def ensure_packages() -> None:
    """Install Debian dnsperf and knot when missing (apt-get update first), as .ci/run does."""
    need = []
    if not shutil.which("dnsperf"):
        need.append("dnsperf")
    if not (shutil.which("knotd") or Path("/usr/sbin/knotd").exists()):
        need.append("knot")
    if not shutil.which("kzonesign"):
        need.append("knot-dnssecutils")
    if not need:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing {' '.join(need)} with apt-get", file=sys.stderr)
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *need],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def ensure_peers(mixes: list[str], skip: bool) -> dict[str, str]:
    """Best-effort install of the peers' Debian packages; name -> why it is unavailable."""
    if not PEER_MIXES & set(mixes):
        return {}
    if skip:
        return {cls.name: "n/a (--no-peers)" for cls in PEERS}
    missing = {cls.name: "n/a (package not available)" for cls in PEERS
               if not Path(cls.binary).exists()}
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for name in list(missing):
            print(f"installing {' '.join(PEER_PACKAGES[name])} with apt-get (optional peer)",
                  file=sys.stderr)
            try:
                subprocess.run([*sudo, "apt-get", "install", "-y", "-qq",
                                "--no-install-recommends", *PEER_PACKAGES[name]],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=600, check=False)
            except (OSError, subprocess.TimeoutExpired):
                pass
    return {cls.name: "n/a (package not available)" for cls in PEERS
            if not Path(cls.binary).exists()}


def versions() -> dict[str, str]:
    def first_line(cmd: list[str], prefix: str = "") -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        except Exception:
            return "?"
        lines = [line.strip() for line in (out.stdout + out.stderr).splitlines()
                 if line.strip().startswith(prefix)]
        return lines[0] if lines else "?"

    commit = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "gslb"],
                           capture_output=True, text=True).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    return {
        "gslb": f"{commit}{' + uncommitted changes in gslb/' if dirty else ''}",
        "knot": first_line(["/usr/sbin/knotd", "-V"]),
        "gdnsd": (first_line(["dpkg-query", "-W", "-f", "${Version}", "gdnsd"])
                  if Path("/usr/sbin/gdnsd").exists() else "not installed"),
        "powerdns": (first_line(["dpkg-query", "-W", "-f", "${Version}", "pdns-server"])
                     if Path("/usr/sbin/pdns_server").exists() else "not installed"),
        "dnsperf": first_line(["dnsperf", "-h"], prefix="Version"),
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} CPUs, {cpu}, {platform.system()} {platform.release()}",
        "load average at start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def median_row(results: list[RunResult]) -> dict[str, float]:
    return {
        "qps": statistics.median(r.qps for r in results),
        "avg": statistics.median(r.avg_latency for r in results),
        "p99": statistics.median(r.p99_latency for r in results),
        "cpu": statistics.median(r.cpu_us_per_query for r in results),
        "lost": sum(r.lost for r in results) / max(1, sum(r.sent for r in results)),
    }


def sign_zone(tmp: Path, folders: list[Path]) -> str:
    """The test suite's signed-zone source signed by kzonesign with an NSEC3 chain, copied
    into each zones folder (Knot and gslb serve the same signed file); its origin."""
    sys.path.insert(0, str(ROOT))
    from tests.interop.signing import sign_zones

    kzonesign = shutil.which("kzonesign") or "/usr/bin/kzonesign"
    signed = sign_zones(kzonesign, tmp / "signing", [SIGNED_ORIGIN])
    for folder in folders:
        shutil.copy(signed.directory / f"{SIGNED_ORIGIN}zone", folder)
    return SIGNED_ORIGIN


def measure_mixes(args: argparse.Namespace, tmp: Path, peer_status: dict[str, str]) -> list[str]:
    zones = tmp / "zones"          # gslb: the zone plus its steering file
    zones.mkdir()
    records = zonegen.write_bench_zone(zones / "bench.test.zone")
    zonegen.write_steering_yaml(zones / f"{zonegen.ORIGIN}gslb.yaml")
    knot_zones = tmp / "knot-zones"  # Knot does not steer: the members as plain A records
    knot_zones.mkdir()
    (knot_zones / "bench.test.zone").write_text(
        (zones / "bench.test.zone").read_text() + zonegen.steered_static_lines())
    mixes = [m for m in MIXES if m.name in args.mixes]
    origins = [zonegen.ORIGIN]
    if any(sub.do for mix in mixes for sub in mix.subruns or ()):
        origins.append(sign_zone(tmp, [zones, knot_zones]))
    files: dict[str, Path] = {}
    for mix in mixes:
        for sub in mix.subruns or ():
            if sub.queries not in files:
                files[sub.queries] = tmp / f"{sub.queries}.queries"
                query_file = QUERY_FILES[sub.queries]
                query_file.write(files[sub.queries], query_file.count)
    servers = [cls(tmp / cls.name, knot_zones if cls is Knot else zones, origins)
               for cls in SERVERS]
    if GEO_MIXES & {m.name for m in mixes}:
        city, state = tmp / "city.mmdb", tmp / "rtt-state.yaml"
        mmdbgen.build(city, "city", GEO_NETWORKS, cities=20_000)
        zonegen.write_rtt_state(state)
        for server in servers:
            if isinstance(server, Gslb):
                server.extra = (*server.extra, "--geoip", str(city), "--state", str(state))
    peers = [cls(tmp / cls.name, zones, [zonegen.ORIGIN]) for cls in PEERS
             if PEER_MIXES & {m.name for m in mixes} and cls.name not in peer_status]
    try:
        for server in servers:
            took = server.start(timeout=args.start_timeout)
            print(f"# {server.name} pid {server.pid} on 127.0.0.1:{server.port}, "
                  f"ready in {took:.2f} s", file=sys.stderr)
        for peer in list(peers):  # optional: one that does not start is reported, not fatal
            try:
                took = peer.start(timeout=args.start_timeout)
            except (RuntimeError, TimeoutError, MemoryError) as exc:
                peer_status[peer.name] = f"n/a (did not start: {str(exc).splitlines()[0][:60]})"
                peers.remove(peer)
                continue
            print(f"# {peer.name} pid {peer.pid} on 127.0.0.1:{peer.port}, "
                  f"ready in {took:.2f} s", file=sys.stderr)
        load = Load(args.clients, args.outstanding, args.query_timeout)
        results: dict[tuple[str, str], list[RunResult]] = {}
        for mix in mixes:
            if mix.subruns is None:
                continue
            measured = servers + (peers if mix.name in PEER_MIXES else [])
            if not args.cold:
                for server in measured:
                    warm_up(server, mix.subruns, files, load)
            for run in range(args.runs):
                for server in measured:  # interleaved, so drift hits all alike
                    result = run_mix(server, mix.subruns, files, args.seconds, load, tmp)
                    results.setdefault((mix.name, server.name), []).append(result)
                    print(f"# {mix.name} run {run + 1}/{args.runs} {server.name}: "
                          f"{result.qps:,.0f} qps, {result.cpu_us_per_query:.1f} us CPU/query, "
                          f"lost {result.lost}, rcodes {result.rcodes}", file=sys.stderr)
    finally:
        for server in servers + peers:
            server.stop()
    lines = [
        f"Zone `{zonegen.ORIGIN}`: {records:,} records, plus {zonegen.STEERED_WEIGHTED} "
        f"weighted and {zonegen.STEERED_GEO} CIDR-rule steered names. dnsperf -c {args.clients} "
        f"-q {args.outstanding} -t {args.query_timeout:g}, {args.seconds:g} s per run, "
        f"median of {args.runs} run(s). Knot: 1 UDP worker; gslb: --workers 1. Each mix is sent once unmeasured first (steady state; --cold skips it).",
        *(["Steered mix only: gdnsd (1 UDP thread, `weighted` and `geoip` with `nets`) and "
           "PowerDNS (1 receiver + 1 distributor thread, bind backend, LUA records, "
           "`enable-lua-records=shared`, `edns-subnet-processing=yes`) when installed. "
           "Knot does not steer: in every mix it serves the steered names as plain A records "
           "(every member), so its steered row is static answers to the same queries."]
          if PEER_MIXES & {m.name for m in mixes} else []),
        "",
        "| server | mix | qps (median) | avg latency | p99 latency | CPU us/query "
        "| qps vs Knot | CPU/query vs Knot | lost |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mix in mixes:
        if mix.subruns is None:
            for server in servers:
                lines.append(f"| {server.name} | {mix.name} | {mix.unavailable} | | | | | | |")
            continue
        knot = median_row(results[(mix.name, "knot")])
        names = [s.name for s in servers] + ([cls.name for cls in PEERS]
                                             if mix.name in PEER_MIXES else [])
        for name in names:
            if (mix.name, name) not in results:
                lines.append(f"| {name} | {mix.name} | {peer_status.get(name, 'n/a')} "
                             "| | | | | | |")
                continue
            row = median_row(results[(mix.name, name)])
            label = "knot (static)" if name == "knot" and mix.name in PEER_MIXES else name
            lines.append(
                f"| {label} | {mix.name} | {row['qps']:,.0f} | {row['avg'] * 1e3:.2f} ms "
                f"| {row['p99'] * 1e3:.2f} ms | {row['cpu']:.1f} "
                f"| {row['qps'] / knot['qps']:.3f}x | {row['cpu'] / knot['cpu']:.2f}x "
                f"| {row['lost']:.2%} |")
    lines += ["", "Mixes:"] + [f"- {m.name}: {m.description}" for m in mixes]
    lines += peer_targets(mixes, results)
    lines += rcode_warnings(mixes, results)
    return lines


def peer_targets(mixes: list[Mix], results: dict[tuple[str, str], list[RunResult]]) -> list[str]:
    """The steered targets: qps >= 4x PowerDNS LUA, CPU/query <= 1.5x gdnsd."""
    out = []
    for mix in mixes:
        if mix.name not in PEER_MIXES or (mix.name, "gslb") not in results:
            continue
        gslb = median_row(results[(mix.name, "gslb")])
        pdns = results.get((mix.name, "powerdns"))
        gdnsd = results.get((mix.name, "gdnsd"))
        if pdns:
            ratio = gslb["qps"] / median_row(pdns)["qps"]
            out.append(f"- {mix.name}: gslb qps / PowerDNS qps = {ratio:.2f}x (target >= 4x: "
                       f"{'met' if ratio >= 4 else 'not met'}); CPU/query ratio "
                       f"{gslb['cpu'] / median_row(pdns)['cpu']:.2f}x")
        else:
            out.append(f"- {mix.name}: PowerDNS not measured; the >= 4x qps target is unchecked")
        if gdnsd:
            ratio = gslb["cpu"] / median_row(gdnsd)["cpu"]
            out.append(f"- {mix.name}: gslb CPU/query / gdnsd CPU/query = {ratio:.2f}x "
                       f"(target <= 1.5x: {'met' if ratio <= 1.5 else 'not met'}); qps ratio "
                       f"{gslb['qps'] / median_row(gdnsd)['qps']:.2f}x")
        else:
            out.append(f"- {mix.name}: gdnsd not measured; the <= 1.5x CPU target is unchecked")
    return ["", "Steered targets (issue):", *out] if out else []


def rcode_warnings(mixes: list[Mix], results: dict[tuple[str, str], list[RunResult]]) -> list[str]:
    """Flag a server whose response-code shares differ from Knot's by over 2 points."""
    warnings = []
    for mix in mixes:
        if mix.subruns is None:
            continue
        shares = {}
        for (mix_name, server_name), runs in results.items():
            if mix_name != mix.name:
                continue
            counts: dict[str, int] = {}
            for result in runs:
                for code, n in result.rcodes.items():
                    counts[code] = counts.get(code, 0) + n
            total = sum(counts.values()) or 1
            shares[server_name] = {code: n / total for code, n in counts.items()}
        for name, share in shares.items():
            codes = set(share) | set(shares["knot"])
            if any(abs(share.get(c, 0) - shares["knot"].get(c, 0)) > 0.02 for c in codes):
                warnings.append(f"- warning: {mix.name}: {name} response codes "
                                f"{_fmt_shares(share)} differ from Knot's "
                                f"{_fmt_shares(shares['knot'])}")
    return ["", *warnings] if warnings else []


def _fmt_shares(share: dict[str, float]) -> str:
    return ", ".join(f"{code} {value:.1%}" for code, value in sorted(share.items()))


def measure_large(args: argparse.Namespace, tmp: Path) -> list[str]:
    zones = tmp / "large-zones"
    zones.mkdir()
    path = zones / "large.test.zone"
    started = time.monotonic()
    zonegen.write_large_zone(path, args.large_records)
    print(f"# wrote {args.large_records:,} A records ({path.stat().st_size / 2**20:.0f} MiB) "
          f"in {time.monotonic() - started:.1f} s", file=sys.stderr)
    tail_files = write_tail_queries(args, tmp)
    tails: dict[str, tuple[dict[str, list[RunResult]], dict[int, int]]] = {}
    limit_kib = args.max_rss_mib * 1024
    rows: dict[str, dict[str, str]] = {}
    numbers: dict[str, tuple[float, int]] = {}
    for cls in SERVERS:
        server = cls(tmp / f"large-{cls.name}", zones, [zonegen.LARGE_ORIGIN])
        try:
            took = server.start(timeout=args.large_timeout, max_rss_kib=limit_kib)
            mem = memory_kib(server.pid)
            numbers[cls.name] = (took, mem["VmRSS"])
            rows[cls.name] = {"load": f"{took:.1f} s", "rss": f"{mem['VmRSS'] / 1024:,.0f} MiB",
                              "hwm": f"{mem['VmHWM'] / 1024:,.0f} MiB"}
        except TimeoutError:
            rows[cls.name] = {"load": f"timeout (> {args.large_timeout:g} s)", "rss": "", "hwm": ""}
        except MemoryError:
            rows[cls.name] = {"load": f"stopped: RSS over {args.max_rss_mib:,} MiB",
                              "rss": "", "hwm": ""}
        except RuntimeError as exc:
            rows[cls.name] = {"load": f"failed: {str(exc).splitlines()[0][:60]}", "rss": "",
                              "hwm": ""}
        else:
            print(f"# large zone {cls.name}: {rows[cls.name]}", file=sys.stderr)
            if cls in TAIL_SERVERS:
                tails[cls.name] = measure_tail(server, args, tmp, tail_files)
        finally:
            server.stop()
    lines = [
        f"Zone of {args.large_records:,} A records; load time = process start until it "
        "answers SOA; memory from /proc/PID/status once ready.",
        "",
        "| server | load time | VmRSS | VmHWM | load vs Knot | RSS vs Knot |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    knot = numbers.get("knot")
    for cls in SERVERS:
        row = rows[cls.name]
        mine = numbers.get(cls.name)
        ratio_t = f"{mine[0] / knot[0]:.1f}x" if mine and knot else ""
        # two decimals: the goal is stated as 0.75x, which one decimal cannot tell apart
        ratio_m = f"{mine[1] / knot[1]:.2f}x" if mine and knot else ""
        lines.append(f"| {cls.name} | {row['load']} | {row['rss']} | {row['hwm']} "
                     f"| {ratio_t} | {ratio_m} |")
    lines += ["", "### The long tail: queries over every owner", ""]
    return lines + tail_table(args, tails) + measure_shared(args, tmp, zones, tail_files)


def measure_shared(args: argparse.Namespace, tmp: Path, zones: Path,
                   files: dict[str, Path]) -> list[str]:
    """gslb with two workers on the large zone, after a uniform pass over every owner:
    the memory of each process, and how much of it the workers share (the zone data
    the C path reads in place is never written after the fork)."""
    server = GslbWorkers(tmp / "large-workers", zones, [zonegen.LARGE_ORIGIN])
    try:
        server.start(timeout=args.large_timeout, max_rss_kib=args.max_rss_mib * 1024)
        load = Load(args.clients, args.outstanding, args.query_timeout)
        run_mix(server, (SubRun(1.0, "uniform-0"),), files, args.seconds, load, tmp)
        memory = shared_kib(server.pid)
    except (TimeoutError, MemoryError, RuntimeError) as exc:
        return ["", f"gslb with two workers: failed ({str(exc).splitlines()[0][:60]})"]
    finally:
        server.stop()
    lines = ["", "### Memory per process with two workers", "",
             f"`gslb serve --workers 2` on the same zone, after {args.seconds:g} s of uniform "
             "queries over all owners; from /proc/PID/smaps_rollup (Pss splits shared pages "
             "between the processes sharing them):", "",
             "| process | Rss | Pss | Private_Dirty |", "|---|---:|---:|---:|"]
    for number, (pid, kib) in enumerate(memory.items()):
        role = "supervisor" if number == 0 else f"worker {number}"
        lines.append(f"| {role} | {kib['Rss'] / 1024:,.0f} MiB | {kib['Pss'] / 1024:,.0f} MiB "
                     f"| {kib['Private_Dirty'] / 1024:,.0f} MiB |")
    total = sum(kib["Pss"] for kib in memory.values())
    lines.append(f"| all ({len(memory)} processes) | | {total / 1024:,.0f} MiB | |")
    return lines


TAIL_SERVERS = (Knot, Gslb)
TAIL_FIRST = 300_000    # distinct owners in the first pass
TAIL_LINES = 2_000_000  # per uniform or zipf file: far more names than 200,000 cached answers
TAIL_CACHE = 200_000    # gslb's answer cache per worker, for the zipf head's share


def tail_passes(args: argparse.Namespace) -> int:
    """Passes of uniform and of zipf per server: --runs, plus one unmeasured unless --cold."""
    return args.runs + (0 if args.cold else 1)


def write_tail_queries(args: argparse.Namespace, tmp: Path) -> dict[str, Path]:
    """The long-tail query files: `first`, and a fresh file for every pass of uniform and
    of zipf (a pass that replayed an earlier pass's names would find them cached)."""
    started = time.monotonic()
    files = {"first": tmp / "large-first.queries"}
    zonegen.write_large_queries(files["first"], "first", args.large_records, TAIL_FIRST, 39)
    for kind, seed in (("uniform", 40), ("zipf", 60)):
        for n in range(tail_passes(args)):
            files[f"{kind}-{n}"] = tmp / f"large-{kind}-{n}.queries"
            zonegen.write_large_queries(files[f"{kind}-{n}"], kind, args.large_records,
                                        TAIL_LINES, seed + n)
    print(f"# wrote {len(files)} long-tail query files in {time.monotonic() - started:.1f} s",
          file=sys.stderr)
    return files


def measure_tail(server: Server, args: argparse.Namespace, tmp: Path,
                 files: dict[str, Path]) -> tuple[dict[str, list[RunResult]], dict[int, int]]:
    """Right after `server` is ready on the large zone: the first pass, then uniform and
    zipf (an unmeasured pass first unless --cold, then --runs runs, each on its own file);
    the results by case and the RSS of each server process after."""
    load = Load(args.clients, args.outstanding, args.query_timeout)
    results: dict[str, list[RunResult]] = {}
    unmeasured = 0 if args.cold else 1
    passes = [("first", "first", True)] + [
        (kind, f"{kind}-{n}", n >= unmeasured) for kind in ("uniform", "zipf")
        for n in range(tail_passes(args))]
    for kind, key, measured in passes:
        sub = SubRun(1.0, key, once=kind == "first")
        result = run_mix(server, (sub,), files, args.seconds, load, tmp)
        if measured:
            results.setdefault(kind, []).append(result)
        print(f"# long tail {server.name} {key}{'' if measured else ' (unmeasured)'}: "
              f"{result.completed:,} answers, {result.qps:,.0f} qps, "
              f"{result.cpu_us_per_query:.1f} us CPU/query, lost {result.lost}, "
              f"rcodes {result.rcodes}", file=sys.stderr)
    return results, rss_by_process_kib(server.pid)


def tail_table(args: argparse.Namespace,
               tails: dict[str, tuple[dict[str, list[RunResult]], dict[int, int]]]) -> list[str]:
    """The long-tail table: qps and CPU per query of each case, RSS after, gslb/Knot."""
    harmonic = [0.0]
    for rank in range(1, args.large_records + 1):
        harmonic.append(harmonic[-1] + 1 / rank)
    head = harmonic[min(TAIL_CACHE, args.large_records)] / harmonic[-1]
    answered = ", ".join(f"{name} {runs['first'][0].completed:,}"
                         for name, (runs, _) in tails.items())
    lines = [
        "A queries without EDNS for the owners of the zone above, each server alone, in this "
        "order right after it answers SOA (Knot; gslb with its native loop: gslb-python "
        "only loads):",
        f"- first: {min(TAIL_FIRST, args.large_records):,} distinct owners in a random "
        f"order, each asked once (stops at --seconds + 30 s; answered: {answered}); the "
        "cost of a name's first query.",
        f"- uniform: {TAIL_LINES:,} owners drawn uniformly per file, a fresh file per pass: "
        f"the working set is the whole zone, {args.large_records / TAIL_CACHE:g} times an "
        f"answer cache of {TAIL_CACHE:,}.",
        f"- zipf: {TAIL_LINES:,} owners per file drawn by Zipf with s = 1 (owner ranks "
        f"shuffled once, the same in every file); the {TAIL_CACHE:,} most frequent owners "
        f"get {head:.0%} of the queries.",
        "",
        "Uniform and zipf: " + ("no unmeasured pass (--cold)" if args.cold else
                                "one unmeasured pass of --seconds each first")
        + f", then {args.runs} run(s) of {args.seconds:g} s, median. dnsperf -c {args.clients} "
        f"-q {args.outstanding}; RSS from /proc/PID/status after the last run.",
        "", "| case | knot | gslb | gslb vs Knot |", "|---|---:|---:|---:|"]

    def row(case: str, values: dict[str, float], unit: str, digits: int) -> None:
        knot, mine = values.get("knot"), values.get("gslb")
        cells = [f"{v:,.{digits}f} {unit}".rstrip() if v is not None else ""
                 for v in (knot, mine)]
        ratio = f"{mine / knot:.2f}x" if knot and mine else ""
        lines.append(f"| {case} | {cells[0]} | {cells[1]} | {ratio} |")

    for kind in ("first", "uniform", "zipf"):
        medians = {name: median_row(runs[kind]) for name, (runs, _) in tails.items()}
        row(f"{kind}: qps", {name: m["qps"] for name, m in medians.items()}, "", 0)
        row(f"{kind}: CPU/query", {name: m["cpu"] for name, m in medians.items()}, "us", 1)
    row("RSS after the runs", {name: sum(rss.values()) / 1024
                               for name, (_, rss) in tails.items()}, "MiB", 0)
    for name, (_, rss) in tails.items():
        if len(rss) > 1:
            lines.append(f"- {name} RSS by process: " + ", ".join(
                f"pid {pid} {kib / 1024:,.0f} MiB" for pid, kib in rss.items()))
    return lines


MANY_MIXES = [("hits", "A hits spread over all zones"),
              ("flood", "random-subdomain flood spread over all zones, EDNS"),
              ("deep", "random names of 110 labels spread over all zones, EDNS")]


def measure_many(args: argparse.Namespace, tmp: Path) -> list[str]:
    """Thousands of small zones: time until ready, RSS, then CPU per query of hits, a
    random-subdomain flood and 110-label names, each spread over every zone. The first
    pass of hits (cold: nothing cached) is its own row."""
    folder = tmp / "many-zones"
    folder.mkdir()
    origins = zonegen.write_many_zones(folder, args.many_zones)
    files = {}
    for seed, kind in enumerate(["first", *(kind for kind, _ in MANY_MIXES)], start=20):
        files[kind] = tmp / f"many-{kind}.queries"
        zonegen.write_many_queries(files[kind], kind, args.many_zones,
                                   100_000 if kind == "deep" else 200_000, seed)
    load = Load(args.clients, args.outstanding, args.query_timeout)
    numbers: dict[tuple[str, str], float] = {}
    for cls in (Knot, Gslb):
        server = cls(tmp / f"many-{cls.name}", folder, origins)
        server.ready_origins = [origins[0], origins[-1]]
        try:
            took = server.start(timeout=args.start_timeout)
            rss = memory_kib(server.pid)["VmRSS"]
            numbers[("ready", cls.name)], numbers[("rss", cls.name)] = took, rss
            print(f"# many zones {cls.name}: ready in {took:.2f} s, RSS {rss / 1024:.0f} MiB",
                  file=sys.stderr)
            for label, kind in [("hits, first pass", "first"),
                                *((kind, kind) for kind, _ in MANY_MIXES)]:
                sub = SubRun(1.0, kind, edns=kind in ("flood", "deep"), once=kind == "first")
                result = run_mix(server, (sub,), files, args.seconds, load, tmp)
                numbers[(label, cls.name)] = result.cpu_us_per_query
                print(f"# many zones {cls.name} {label}: {result.qps:,.0f} qps, "
                      f"{result.cpu_us_per_query:.1f} us CPU/query, rcodes {result.rcodes}",
                      file=sys.stderr)
        finally:
            server.stop()
    lines = [f"{args.many_zones:,} small zones ({zonegen.MANY_HOSTS} hosts each), one file "
             "each; ready = process start until the first and last zone answer SOA. "
             "CPU per query of one dnsperf run each; `hits, first pass` sends every host's "
             "name once right after start (nothing cached), `hits` the same names again "
             "(warm).",
             *(f"- {kind}: {text}" for kind, text in MANY_MIXES),
             "", "| case | knot | gslb | gslb vs Knot |", "|---|---:|---:|---:|"]

    def row(case: str, unit: str, scale: float = 1.0) -> None:
        knot, mine = numbers.get((case, "knot")), numbers.get((case, "gslb"))
        if knot is None or mine is None:
            lines.append(f"| {case} | {knot or ''} | {mine or ''} | |")
            return
        lines.append(f"| {case} | {knot * scale:,.1f} {unit} | {mine * scale:,.1f} {unit} "
                     f"| {mine / knot:.2f}x |")

    row("ready", "s")
    row("rss", "MiB", 1 / 1024)
    for case in ["hits, first pass", "hits", "flood", "deep"]:
        row(case, "us CPU/query")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="dnsperf -l per run (6)")
    parser.add_argument("--runs", type=int, default=3, help="runs per mix and server (3)")
    parser.add_argument("--gslb-flags", default="", metavar="FLAGS",
                        help="more `gslb serve` flags for every gslb server of the run, e.g. "
                             "\"--rrl-rate 100 --cookie-secret FILE\" (none)")
    parser.add_argument("--cold", action="store_true",
                        help="skip the unmeasured pass that sends each query once first")
    parser.add_argument("--mixes", default=",".join(m.name for m in MIXES),
                        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                        help="comma-separated subset of: " + ", ".join(m.name for m in MIXES)
                        + " (empty: only the large-zone table)")
    parser.add_argument("--clients", type=int, default=4, help="dnsperf -c (4)")
    parser.add_argument("--outstanding", type=int, default=64, help="dnsperf -q (64)")
    parser.add_argument("--query-timeout", type=float, default=1.0, help="dnsperf -t (1)")
    parser.add_argument("--start-timeout", type=float, default=120.0,
                        help="seconds a server may take to answer SOA for the bench zone (120)")
    parser.add_argument("--skip-geo", action="store_true",
                        help="skip the GeoIP database loads (also skipped by --skip-large)")
    parser.add_argument("--geo-city-networks", type=int, default=5_700_000,
                        help="networks of the generated City database (5.7M, GeoLite2-City's size)")
    parser.add_argument("--geo-country-networks", type=int, default=1_000_000)
    parser.add_argument("--skip-large", action="store_true",
                        help="skip the large loads: the one-million-record zone and the GeoIP databases")
    parser.add_argument("--only-large", action="store_true",
                        help="only the one-million-record zone: its load and its long-tail "
                        "queries (as --mixes '' --skip-many --skip-geo)")
    parser.add_argument("--skip-many", action="store_true",
                        help="skip the many-zones case (load, RSS, hits/flood/deep names)")
    parser.add_argument("--many-zones", type=int, default=5_000,
                        help="zones in the many-zones case (5000)")
    parser.add_argument("--large-records", type=int, default=1_000_000)
    parser.add_argument("--large-timeout", type=float, default=300.0,
                        help="seconds a server may take to load the large zone (300)")
    parser.add_argument("--max-rss-mib", type=int, default=_default_rss_limit(),
                        help="stop a server whose RSS passes this while loading "
                        "(default: 60%% of MemAvailable)")
    parser.add_argument("--no-peers", action="store_true",
                        help="do not install or run gdnsd and PowerDNS for the steered mix")
    parser.add_argument("--output", type=Path, help="also write the tables to this Markdown file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    unknown = set(args.mixes) - {m.name for m in MIXES}
    if unknown:
        parser.error(f"unknown mix: {', '.join(sorted(unknown))}")
    if args.only_large:
        if args.skip_large:
            parser.error("--only-large and --skip-large leave nothing to run")
        args.mixes, args.skip_many, args.skip_geo = [], True, True
    if args.runs < 1 or args.seconds <= 0:
        parser.error("--runs and --seconds must be positive")
    return args


def _default_rss_limit() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(int(line.split()[1]) * 0.6 / 1024)
    return 4096


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Gslb.extra = tuple(shlex.split(args.gslb_flags))  # every gslb variant of the run
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    ensure_packages()
    peer_status = ensure_peers(args.mixes, args.no_peers)
    info = versions()
    compile_project()
    tmp = Path(tempfile.mkdtemp(prefix="gslb-bench-"))
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        out = [f"Date: {started:%Y-%m-%d %H:%M} UTC"] + [f"{k}: {v}" for k, v in info.items()]
        if args.gslb_flags:
            out.append(f"gslb flags: {args.gslb_flags}")
        if args.mixes:
            out += ["", "## Query load", ""] + measure_mixes(args, tmp, peer_status)
        if not args.skip_many:
            out += ["", f"## {args.many_zones:,} zones", ""] + measure_many(args, tmp)
        if not args.skip_large:
            out += ["", f"## One zone of {args.large_records:,} A records: loading and the "
                    "long tail", ""]
            out += measure_large(args, tmp)
        if not args.skip_large and not args.skip_geo:
            out += ["", "## GeoIP: loading, steered answers for many client networks, "
                    "and a database replaced under load", ""]
            out += geoload.measure_geo(tmp, args.geo_city_networks, args.geo_country_networks,
                                       args.large_timeout, seconds=args.seconds)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"# kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    given = sys.argv[1:] if argv is None else argv
    command = "make bench" + (f' BENCH_ARGS="{shlex.join(given)}"' if given else "")
    out.insert(len(info) + 1, f"command: {command}")
    print("\n".join(out))
    if args.output:
        args.output.write_text("# Benchmark results\n\n" + "\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
