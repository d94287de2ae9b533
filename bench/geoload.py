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

Then the City database is replaced on disk while gslb answers a steady 10,000 qps of
steered queries (`measure_reload`, alone with `--only-reload`): latency before, during
and after the rebuild, queries lost, and whether answers follow the new database.

    .venv/bin/python bench/geoload.py [--city-networks 5700000] [--country-networks 1000000]
    .venv/bin/python bench/geoload.py --only-reload [--reload-workers 1,2]
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import dns.edns
import dns.message
import dns.query
import maxminddb

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mmdbgen  # noqa: E402
from gslb.settings import Settings  # noqa: E402
from perf import _STAT, Load, SubRun, run_mix  # noqa: E402
from servers import (Gdnsd, Gslb, Server, _descendants, compile_project, cpu_seconds,
                     memory_kib)  # noqa: E402

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
                gdnsd: bool = True, seconds: float = 3.0,
                reload_workers: tuple[int, ...] = (1, 2)) -> list[str]:
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
        if kind == "city" and reload_workers:
            lines += ["", *measure_reload(tmp, networks, timeout, reload_workers, database=path)]
        path.unlink()
    return lines


# --- a database replaced under load (issue 18) ---------------------------------------------

RELOAD_QPS = 10_000
RELOAD_QUIET = 8.0      # seconds of steady load before the file is replaced
RELOAD_AFTER = 8.0      # seconds of load once the rebuild has ended
RELOAD_LIMIT = 60.0     # dnsperf -l: the run ends by itself even if no rebuild shows
RELOAD_REBUILD = 6.0    # seconds a rebuild may take to be measured (with workers, each rebuilds)
RELOAD_SETTLE = 1.0     # dnsperf's first second (sockets opening, rate settling) is left out
RELOAD_TIMEOUT = 1.0    # dnsperf -t: an answer later than this counts as lost
RELOAD_OUTSTANDING = RELOAD_QPS  # dnsperf -q: a one-second stall does not hold back sending
REBUILD_START = "changed on disk; reading it"           # geoip.reload_if_changed, before the walk
REBUILD_END = "serves the new database"  # each serving process (and a supervisor) logs it


class GslbReload(GslbGeo):
    """gslb with `workers` processes and INFO lines in JSON: they date the rebuild."""

    workers = 1

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("--workers") + 1] = str(self.workers)
        return cmd + ["--log-level", "INFO", "--log-format", "json"]


def pool_answer(reader: maxminddb.Reader, address: ipaddress.IPv4Address) -> tuple[str, int]:
    """The steered answer the zone gives for `address` under this database, and the
    prefix length of the database's network holding it."""
    record, prefix = reader.get_with_prefix_len(address)
    continent: Any = record.get("continent") if isinstance(record, dict) else None
    code = continent.get("code") if isinstance(continent, dict) else None
    return POOLS.get(str(code), WORLD), prefix - 96 if prefix > 32 else prefix


def probe_network(old: Path, new: Path) -> tuple[ipaddress.IPv4Network, str, str]:
    """An IPv4 /24, inside one network of each database, whose steered answer differs
    between them; with the old and the new answer."""
    rng = random.Random(5)
    with maxminddb.open_database(str(old)) as before, maxminddb.open_database(str(new)) as after:
        for _ in range(100_000):
            network = ipaddress.IPv4Network((rng.getrandbits(24) << 8, 24))
            first, first_prefix = pool_answer(before, network.network_address)
            second, second_prefix = pool_answer(after, network.network_address)
            if first != second and max(first_prefix, second_prefix) <= 24:
                return network, first, second
    raise RuntimeError(f"{old}, {new}: no /24 found whose answer differs")


class TimedOutput:
    """A process's stdout read as it comes, each chunk stamped with the wall clock:
    dnsperf -v gives each answer's latency, not when it came."""

    def __init__(self, stream: Any) -> None:
        self.chunks: list[tuple[float, bytes]] = []
        self.thread = threading.Thread(target=self._read, args=(stream.fileno(),), daemon=True)
        self.thread.start()

    def _read(self, fd: int) -> None:
        while chunk := os.read(fd, 1 << 16):
            self.chunks.append((time.time(), chunk))

    def lines(self) -> list[tuple[float, str]]:
        self.thread.join(timeout=10)
        found, rest, stamp = [], b"", 0.0
        for stamp, chunk in self.chunks:
            *complete, rest = (rest + chunk).split(b"\n")
            found += [(stamp, line.decode(errors="replace")) for line in complete]
        return found + ([(stamp, rest.decode(errors="replace"))] if rest else [])


def log_events(path: Path) -> list[tuple[float, str]]:
    """(wall-clock time, message) of the server's JSON log lines."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
            when = datetime.datetime.strptime(event["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        except (ValueError, KeyError, TypeError):
            continue
        events.append((when.replace(tzinfo=datetime.timezone.utc).timestamp(), event.get("msg", "")))
    return events


def rebuild_window(events: list[tuple[float, str]], since: float,
                   workers: int) -> tuple[float, float] | None:
    """When the server started reading the replaced file and when the rebuilt steering
    served, from its log; None until both show."""
    since -= 0.001  # log times are truncated to the millisecond
    start = next((t for t, msg in events if t >= since and REBUILD_START in msg), None)
    if start is None:
        return None
    ends = [t for t, msg in events if t >= start and REBUILD_END in msg]
    serving = workers + 1 if workers > 1 else 1  # with workers, the supervisor logs it too
    return None if len(ends) < serving else (start, ends[serving - 1])


def slice_p99s(lines: list[tuple[float, str]], spans: list[tuple[float, float]],
               length: float) -> list[float]:
    """The p99 latency of each whole slice of `length` seconds of the `spans`, by the time
    each query was sent: windows as long as the rebuild, without one, for comparison (on
    a shared machine a short window's p99 varies far more than a long one's)."""
    slices: dict[tuple[int, int], list[float]] = {}
    for stamp, line in lines:
        parts = line.split()
        if not line.startswith("> ") or len(parts) != 5 or parts[1] in ("T", "I"):
            continue
        latency = float(parts[4])
        sent = stamp - latency
        for index, (lo, hi) in enumerate(spans):
            if lo <= sent and sent < lo + (hi - lo) // length * length:
                slices.setdefault((index, int((sent - lo) // length)), []).append(latency)
    return sorted(percentile(sorted(found), 0.99) for found in slices.values() if found)


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def window_rows(lines: list[tuple[float, str]],
                windows: list[tuple[str, float, float]]) -> list[dict[str, Any]]:
    """Per window (by the time each query was sent: answered minus its latency, or
    timed out minus the timeout): answers, p50/p99/max latency, queries lost."""
    latencies: dict[str, list[float]] = {name: [] for name, _, _ in windows}
    lost = dict.fromkeys(latencies, 0)

    def window(sent: float) -> str | None:
        return next((name for name, lo, hi in windows if lo <= sent < hi), None)

    for stamp, line in lines:
        parts = line.split()
        if not line.startswith("> ") or len(parts) < 2:
            continue
        if parts[1] == "T":
            name = window(stamp - RELOAD_TIMEOUT)
            if name:
                lost[name] += 1
        elif len(parts) == 5 and parts[1] != "I":
            latency = float(parts[4])
            name = window(stamp - latency)
            if name:
                latencies[name].append(latency)
    rows = []
    for name, lo, hi in windows:
        ordered = sorted(latencies[name])
        rows.append({"window": name, "seconds": hi - lo, "answered": len(ordered),
                     "p50": percentile(ordered, 0.5), "p99": percentile(ordered, 0.99),
                     "max": ordered[-1] if ordered else 0.0, "lost": lost[name]})
    return rows


def dnsperf_totals(lines: list[tuple[float, str]]) -> dict[str, int]:
    """dnsperf's own sent/completed/lost counts, from its closing statistics."""
    totals = {}
    for _, line in lines:
        for key in ("sent", "completed", "lost"):
            match = _STAT[key].search(line)
            if match:
                totals[key] = int(match.group(1))
    return totals


def reload_run(tmp: Path, zones: Path, databases: tuple[Path, Path], queries: Path,
               workers: int, probe: tuple[ipaddress.IPv4Network, str, str],
               ready_network: ipaddress.IPv4Network, timeout: float) -> dict[str, Any]:
    """gslb serving `databases[0]` under a steady RELOAD_QPS of steered queries; after
    RELOAD_QUIET seconds `databases[1]` is renamed over it (as geoipupdate does). The
    load stops RELOAD_AFTER seconds after the log says the rebuilt steering serves."""
    served, staged = tmp / "served.mmdb", tmp / "served.mmdb.next"
    for link, source in ((served, databases[0]), (staged, databases[1])):
        link.unlink(missing_ok=True)
        os.link(source, link)  # a new inode at `served` on replace, as a fresh download
    server = GslbReload(tmp / f"geo-reload-{workers}", zones, [ORIGIN])
    server.workers, server.database, server.network = workers, served, ready_network
    network, old_answer, new_answer = probe
    try:
        server.start(timeout=timeout)
        answer_before = steered_answer(server.port, network)
        files = {"ecs": queries}
        run_mix(server, (SubRun(1.0, "ecs", wire=True, once=True),), files, 3.0, Load(), tmp)
        cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(server.port), "-d", str(queries), "-B",
               "-l", f"{RELOAD_LIMIT:g}", "-Q", str(RELOAD_QPS), "-c", "4",
               "-q", str(RELOAD_OUTSTANDING), "-t", f"{RELOAD_TIMEOUT:g}", "-v"]
        load_before = os.getloadavg()[0]
        began = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        output = TimedOutput(proc.stdout)
        try:
            time.sleep(RELOAD_QUIET)
            replaced = time.time()
            os.replace(staged, served)
            # Nothing else here while the load runs (reading the server's log meanwhile
            # would hold this process, which must drain dnsperf's per-query lines): the
            # poll sees the file within gslb's default --geoip-check-interval, the rebuild
            # takes a few.
            time.sleep(Settings.geoip_check_interval + RELOAD_REBUILD + RELOAD_AFTER)
            proc.send_signal(signal.SIGINT)  # dnsperf stops sending and prints its totals
            proc.wait(timeout=RELOAD_TIMEOUT + 10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        ended = time.time()
        window = rebuild_window(log_events(server.log_path), replaced, workers)
        if window is not None and window[1] > ended - RELOAD_AFTER:
            window = None  # the rebuild ended too late to be measured with its aftermath
        answer_after = steered_answer(server.port, network)
        walked = next((t for t, msg in log_events(server.log_path)
                       if t >= replaced and "GeoIP database changed" in msg), None)
    finally:
        server.stop()
        served.unlink(missing_ok=True)
        staged.unlink(missing_ok=True)
    lines = output.lines()
    if window is None:
        windows = [("quiet", began + RELOAD_SETTLE, replaced), ("replaced, no rebuild seen", replaced, ended)]
    else:
        windows = [("quiet", began + RELOAD_SETTLE, replaced),
                   ("replaced, not yet noticed", replaced, window[0]),
                   ("rebuild", window[0], window[1]), ("after", window[1], ended)]
    slices = []
    if window is not None and window[1] > window[0]:
        spans = [(began + RELOAD_SETTLE, replaced), (window[1] + RELOAD_SETTLE, ended - RELOAD_SETTLE)]
        slices = slice_p99s(lines, spans, window[1] - window[0])
    return {"workers": workers, "rows": window_rows(lines, windows), "totals": dnsperf_totals(lines),
            "slices": slices,
            "window": window, "walk": None if window is None or walked is None else walked - window[0],
            "before": answer_before, "after": answer_after, "old": old_answer, "new": new_answer,
            "network": network, "load": (load_before, os.getloadavg()[0])}


def measure_reload(tmp: Path, city_networks: int, timeout: float, workers: tuple[int, ...] = (1, 2),
                   database: Path | None = None) -> list[str]:
    """Issue 18's goal: a City database replaced on disk is rebuilt aside and swapped
    while answers keep flowing; p99 during the rebuild within 2x the quiet p99, no query
    lost. `database` (made here when None) is the one served first; the replacement is
    another seed of the same size."""
    zones = tmp / "geo-zones"
    write_zone(zones)
    first = database or tmp / "reload-first.mmdb"
    second = tmp / "reload-second.mmdb"
    for path, seed in ((first, 1), (second, 2)):
        if path.exists():
            continue
        started = time.monotonic()
        counts = mmdbgen.build(path, "city", city_networks, seed=seed)
        print(f"# wrote {path.name}: {counts} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    queries = tmp / "reload.queries"
    write_ecs_queries(queries, 100_000, seed=13)
    probe = probe_network(first, second)
    ready_network = eu_network(first)
    lines = [
        f"City database ({city_networks / 1e6:g}M networks) replaced on disk under load: dnsperf "
        f"at a fixed {RELOAD_QPS:,} qps (`-Q {RELOAD_QPS} -c 4 -q {RELOAD_OUTSTANDING} "
        f"-t {RELOAD_TIMEOUT:g}`) of A queries for the steered names with ECS from "
        f"{CLIENT_NETWORKS:,} client networks, after one unmeasured pass of the file; after {RELOAD_QUIET:g} s a database of another seed, written beforehand "
        f"next to it, is renamed over it (`os.replace`); the load stops "
        f"{Settings.geoip_check_interval + RELOAD_REBUILD + RELOAD_AFTER:g} s later (the poll, the rebuild, "
        f"{RELOAD_AFTER:g} s after it; the bench reads gslb's log only then, so that it does "
        f"nothing but read dnsperf's lines while the load runs). The rebuild runs from gslb's log line "
        f"\"{REBUILD_START}\" (its poll, every {Settings.geoip_check_interval:g} s, saw the new file) to the "
        f"last \"{REBUILD_END}\" (one process; with workers, the supervisor walks the file, "
        f"then every worker walks it too and swaps in its new rule maps, keeping its cached "
        f"answers). Queries go to the window in which they were sent; the first "
        f"{RELOAD_SETTLE:g} s of the load is left out. The 1-minute load average before and "
        f"after each run is under the table (a shared 2-core machine).",
        "",
        "| --workers | window | seconds | answered | p50 | p99 | max | lost |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for count in workers:
        try:
            result = reload_run(tmp, zones, (first, second), queries, count, probe, ready_network, timeout)
        except (TimeoutError, RuntimeError, OSError) as exc:
            notes.append(f"- `--workers {count}`: failed: {str(exc).splitlines()[0][:100]}")
            continue
        print(f"# reload --workers {count}: {result}", file=sys.stderr)
        for row in result["rows"]:
            lines.append(f"| {count} | {row['window']} | {row['seconds']:.1f} | {row['answered']:,} "
                         f"| {row['p50'] * 1e3:.2f} ms | {row['p99'] * 1e3:.2f} ms "
                         f"| {row['max'] * 1e3:.1f} ms | {row['lost']} |")
        notes.append(reload_verdict(result))
    if database is None:
        first.unlink()
    second.unlink()
    return lines + [""] + notes


def reload_verdict(result: dict[str, Any]) -> str:
    """One line per run: the goal met or not, and whether answers followed the new file."""
    count, totals, rows = result["workers"], result["totals"], {r["window"]: r for r in result["rows"]}
    switched = (f"the probe {result['network']} got {result['before']} before "
                f"(old database: {result['old']}) and {result['after']} after (new database: "
                f"{result['new']}): answers "
                + ("switched" if result["after"] == result["new"] and result["before"] == result["old"]
                   else "did NOT switch as expected"))
    lost = totals.get("lost")
    if result["window"] is None:
        return (f"- `--workers {count}` (load average {result['load'][0]:.1f}): no rebuild seen in the log within {RELOAD_LIMIT:g} s; "
                f"dnsperf lost {lost}; {switched}.")
    quiet, during = rows["quiet"]["p99"], rows["rebuild"]["p99"]
    ratio = during / quiet if quiet else float("inf")
    met = ratio <= 2.0 and lost == 0
    walk = f", of which the walk of the new file {result['walk']:.1f} s" if result["walk"] else ""
    after = rows["after"]["p99"] / quiet if quiet else float("inf")
    slices = result.get("slices") or []
    alike = (f"; the {len(slices)} windows as long as the rebuild before and after it, without "
             f"one: p99 {slices[len(slices) // 2] * 1e3:.2f} ms median, "
             f"{slices[0] * 1e3:.2f}-{slices[-1] * 1e3:.2f} ms" if slices else "")
    return (f"- `--workers {count}` (load average {result['load'][0]:.1f}, then "
            f"{result['load'][1]:.1f}): rebuild {result['window'][1] - result['window'][0]:.1f} s"
            f"{walk}; goal (p99 during the rebuild <= 2x quiet, 0 lost): p99 {during * 1e3:.2f} ms "
            f"vs {quiet * 1e3:.2f} ms = {ratio:.1f}x, dnsperf lost {lost} of {totals.get('sent', 0):,} "
            f"sent: **{'met' if met else 'not met'}**{alike}; after the swap p99 {after:.1f}x quiet; "
            f"{switched}.")



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--city-networks", type=int, default=5_700_000)
    parser.add_argument("--country-networks", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--no-gdnsd", action="store_true")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="the steered query run per server (3)")
    parser.add_argument("--only-reload", action="store_true",
                        help="only the City database replaced under a steady 10k qps")
    parser.add_argument("--reload-workers", default="1,2",
                        help="gslb --workers for the replacement case, comma-separated; "
                        "empty skips it (1,2)")
    args = parser.parse_args(argv)
    workers = tuple(int(n) for n in args.reload_workers.split(",") if n)
    compile_project()
    tmp = Path(tempfile.mkdtemp(prefix="gslb-geo-bench-"))
    try:
        if args.only_reload:
            lines = measure_reload(tmp, args.city_networks, args.timeout, workers or (1,))
        else:
            lines = measure_geo(tmp, args.city_networks, args.country_networks, args.timeout,
                                not args.no_gdnsd, args.seconds, workers)
        print("\n".join(lines))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
