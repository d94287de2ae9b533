"""Start Knot DNS and gslb on loopback, wait until they answer SOA, measure them, stop by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def compile_project() -> None:
    """Write the .pyc files of gslb and api once, before any start is timed. A checkout run
    with PYTHONDONTWRITEBYTECODE=1 (as CI and the dev shells set it) has none, so every
    `gslb serve` would compile all its modules again (0.3-0.5 s), which an installed
    package never does: pip install and the Docker image write them. compileall writes
    them whatever that variable says."""
    import importlib.util
    folders = [str(Path(importlib.util.find_spec(name).origin).parent)  # type: ignore[arg-type]
               for name in ("gslb", "api")]
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "compileall", "-q", *folders],
                   check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port found")


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on


def cpu_seconds(pid: int) -> float:
    """utime+stime+cutime+cstime of `pid` plus utime+stime of its live descendants.

    cutime/cstime only count children once they are reaped; live worker processes are
    summed from their own /proc entries so forked workers are counted either way.
    """
    fields = _stat_fields(pid)
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # stat fields 14-17
    for child in _descendants(pid):
        try:
            cf = _stat_fields(child)
        except OSError:
            continue
        ticks += int(cf[11]) + int(cf[12])
    return ticks / CLK_TCK


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry))[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (KiB) of `pid` plus its live descendants."""
    totals = {"VmRSS": 0, "VmHWM": 0}
    for p in [pid, *_descendants(pid)]:
        try:
            status = _status_kib(p)
        except OSError:
            continue
        for key in totals:
            totals[key] += status.get(key, 0)
    return totals


def _status_kib(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.endswith(" kB"):
            fields[key] = int(value.split()[0])
    return fields


def rss_by_process_kib(pid: int) -> dict[int, int]:
    """VmRSS (KiB) of `pid` and of each live descendant, by PID: a server with workers
    shows what each process holds, not only the sum."""
    rss = {}
    for p in [pid, *_descendants(pid)]:
        try:
            rss[p] = _status_kib(p)["VmRSS"]
        except OSError:
            continue
    return rss


def shared_kib(pid: int) -> dict[int, dict[str, int]]:
    """Rss, Pss and Private_Dirty (KiB) of `pid` and each live descendant, from
    /proc/PID/smaps_rollup: what forked workers share and what each holds alone."""
    found = {}
    for p in [pid, *_descendants(pid)]:
        try:
            with open(f"/proc/{p}/smaps_rollup") as rollup:
                fields = dict(line.split()[:2] for line in rollup if line.split()[0].endswith(":"))
        except OSError:
            continue
        found[p] = {name: int(fields.get(f"{name}:", "0")) for name in ("Rss", "Pss", "Private_Dirty")}
    return found


def answers_soa(port: int, origin: str, timeout: float = 0.5) -> bool:
    query = dns.message.make_query(origin, "SOA")
    query.flags &= ~0x0100
    try:
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=timeout)
    except Exception:
        return False
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


class Server:
    """One server process on 127.0.0.1:port serving the zones in `zones_dir`."""

    name = "?"

    def __init__(self, workdir: Path, zones_dir: Path, origins: list[str]):
        self.workdir = workdir
        self.zones_dir = zones_dir
        self.origins = origins
        self.ready_origins = origins  # the zones whose SOA answers mean "ready"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / f"{self.name}.log"
        self.started_at = 0.0
        self.load_seconds: float | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float, max_rss_kib: int | None = None) -> float:
        """Start and wait until SOA answers for every origin; returns the seconds it took.

        Raises TimeoutError after `timeout` seconds, MemoryError when the process grows past
        `max_rss_kib` (both leave the process stopped), RuntimeError when it exits.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "w")
        self.started_at = time.monotonic()
        env = {**os.environ, "GSLB_LOG_LEVEL": "WARNING"}  # no log lines on the measured path
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=ROOT, env=env)
        log.close()
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-2000:]}")
            if self.ready():
                self.load_seconds = time.monotonic() - self.started_at
                return self.load_seconds
            if max_rss_kib and memory_kib(self.pid)["VmRSS"] > max_rss_kib:
                self.stop()
                raise MemoryError(f"{self.name} passed the RSS limit of {max_rss_kib} KiB")
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{self.name} did not answer SOA within {timeout:.0f} s")

    def ready(self) -> bool:
        """Whether the server answers as it should once loaded: SOA for each of
        `ready_origins` (every origin unless set)."""
        return all(answers_soa(self.port, origin, timeout=0.2) for origin in self.ready_origins)

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class Gslb(Server):
    """gslb with the native UDP loop (the C extension); `GslbPython` with the fallback."""

    name = "gslb"
    udp = "native"
    extra: tuple[str, ...] = ()  # more `gslb serve` flags (bench/rrl.py: the --rrl-* ones)

    def command(self) -> list[str]:
        gslb = ROOT / ".venv" / "bin" / "gslb"
        return [str(gslb), "serve", "--zones", str(self.zones_dir), "--udp", self.udp,
                "--listen", f"127.0.0.1:{self.port}", "--workers", "1",  # as Knot's 1 UDP worker
                *self.extra]


class GslbWorkers(Gslb):
    """gslb with two forked workers: what the workers share of the zone data."""

    name = "gslb-2-workers"

    def command(self) -> list[str]:
        command = super().command()
        command[command.index("--workers") + 1] = "2"
        return command


class GslbPython(Gslb):
    name = "gslb-python"
    udp = "python"


class Knot(Server):
    name = "knot"
    # mod-rrl (Knot 3.2: a token bucket per netblock and class, 4 s deep) as (rate-limit,
    # slip); None: no RRL
    rrl: tuple[int, int] | None = None

    def command(self) -> list[str]:
        conf = self.workdir / "knot.conf"
        zones = "".join(f"  - domain: {origin}\n" for origin in self.origins)
        rrl = module = ""
        if self.rrl is not None:
            rrl = (f"mod-rrl:\n  - id: default\n    rate-limit: {self.rrl[0]}\n"
                   f"    slip: {self.rrl[1]}\n")
            module = "    global-module: mod-rrl/default\n"
        conf.write_text(
            "server:\n"
            f"    rundir: {self.workdir}\n"
            f"    listen: 127.0.0.1@{self.port}\n"
            "    udp-workers: 1\n"
            "    tcp-workers: 1\n"
            "    background-workers: 1\n"
            "log:\n"
            "  - target: stderr\n"
            "    any: warning\n"
            "database:\n"
            f"    storage: {self.workdir / 'db'}\n" + rrl +
            "template:\n"
            "  - id: default\n"
            f"    storage: {self.zones_dir}\n"
            '    file: "%s.zone"\n'
            "    zonefile-sync: -1\n"
            "    zonefile-load: whole\n"
            "    journal-content: none\n"
            "    semantic-checks: off\n" + module +
            "zone:\n" + zones
        )
        return ["/usr/sbin/knotd", "-c", str(conf)]


class Gdnsd(Server):
    """gdnsd 3 (Debian `gdnsd`): the bench zone plus the steered names as DYNA records,
    `weighted` plugin for the weighted names, `geoip` plugin with `nets` only (no GeoIP
    database) for the CIDR-rule names. One UDP and one TCP thread, as Knot."""

    name = "gdnsd"
    binary = "/usr/sbin/gdnsd"

    def command(self) -> list[str]:
        import zonegen
        conf = self.workdir / "etc"
        (conf / "zones").mkdir(parents=True, exist_ok=True)
        for sub in ("run", "state"):
            (self.workdir / sub).mkdir(exist_ok=True)
        plugins = ""
        for origin in self.origins:
            lines = [(self.zones_dir / f"{origin}zone").read_text()]
            if origin == zonegen.ORIGIN:
                plugins = zonegen.steered_gdnsd(lines)
            (conf / "zones" / origin.rstrip(".")).write_text("".join(lines))
        (conf / "config").write_text(
            "options => {\n"
            f"  listen => [ 127.0.0.1:{self.port} ]\n"
            "  udp_threads => 1\n"
            "  tcp_threads => 1\n"
            f"  run_dir => {self.workdir / 'run'}\n"
            f"  state_dir => {self.workdir / 'state'}\n"
            "}\n" + plugins)
        return [self.binary, "-c", str(conf), "start"]


class PowerDns(Server):
    """PowerDNS Authoritative (Debian `pdns-server` + `pdns-backend-bind`): the bench zone
    plus the steered names as LUA records (`enable-lua-records=shared`, `pickwrandom()` and
    `netmask()`), ECS processing on. One receiver and one distributor thread; PowerDNS's
    default packet and query caches."""

    name = "powerdns"
    binary = "/usr/sbin/pdns_server"

    def command(self) -> list[str]:
        import zonegen
        self.workdir.mkdir(parents=True, exist_ok=True)
        named = []
        for origin in self.origins:
            text = (self.zones_dir / f"{origin}zone").read_text()
            if origin == zonegen.ORIGIN:
                text += zonegen.steered_pdns_lines()
            path = self.workdir / f"{origin}zone"
            path.write_text(text)
            named.append(f'zone "{origin}" {{ type master; file "{path}"; }};\n')
        (self.workdir / "named.conf").write_text("".join(named))
        (self.workdir / "pdns.conf").write_text(
            "launch=bind\n"
            f"bind-config={self.workdir / 'named.conf'}\n"
            f"local-address=127.0.0.1:{self.port}\n"
            f"socket-dir={self.workdir}\n"
            "guardian=no\ndaemon=no\nwrite-pid=no\ndisable-syslog=yes\nloglevel=3\n"
            "security-poll-suffix=\n"          # no security-status lookup over the network
            "receiver-threads=1\ndistributor-threads=1\n"
            "enable-lua-records=shared\n"
            "edns-subnet-processing=yes\n")
        return [self.binary, f"--config-dir={self.workdir}"]


PEERS: list[type[Server]] = [Gdnsd, PowerDns]
# Debian packages a peer needs (installed best-effort when the steered mix runs).
PEER_PACKAGES = {"gdnsd": ["gdnsd"], "powerdns": ["pdns-server", "pdns-backend-bind"]}
