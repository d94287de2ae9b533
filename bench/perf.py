"""Run dnsperf against one server for a set of sub-runs, and measure the server's CPU.

dnsperf 2.10 has no latency histogram, so it runs with `-v` (one line per answered query
with its latency, written to a file) and p99 is computed from those lines. Average latency
and qps are taken from dnsperf's own statistics.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from servers import Server, cpu_seconds


@dataclass(frozen=True)
class SubRun:
    """One dnsperf invocation: a share of the mix's time, a query file, EDNS options."""

    share: float            # fraction of --seconds this sub-run lasts
    queries: str            # key of the query file
    edns: bool = False      # dnsperf -e (EDNS0 on every query of this sub-run)
    ecs: str | None = None  # hex ECS option value for -E 8:..., implies EDNS
    do: bool = False        # dnsperf -D (the DNSSEC OK bit, implies EDNS)
    once: bool = False      # send the file once (dnsperf -n 1), for at most the sub-run's
                            # time plus ONCE_GRACE seconds, instead of for a time
    wire: bool = False      # the file holds whole queries in wire form (dnsperf -B)


# A once-run that takes longer than its share of --seconds (a slow server, a long file)
# still stops by itself, this much later.
ONCE_GRACE = 30.0


@dataclass(frozen=True)
class Load:
    """How hard dnsperf pushes: clients (sockets), queries outstanding, query timeout."""

    clients: int = 4
    outstanding: int = 64
    timeout: float = 1.0


@dataclass
class RunResult:
    """Totals over the sub-runs of one run of one mix against one server."""

    sent: int = 0
    completed: int = 0
    lost: int = 0
    seconds: float = 0.0
    latency_sum: float = 0.0          # from dnsperf's average x completed, per sub-run
    cpu: float = 0.0                  # server CPU seconds, children included
    rcodes: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    @property
    def qps(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    @property
    def avg_latency(self) -> float:
        return self.latency_sum / self.completed if self.completed else 0.0

    @property
    def p99_latency(self) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    @property
    def cpu_us_per_query(self) -> float:
        return self.cpu * 1e6 / self.completed if self.completed else 0.0


_STAT = {
    "sent": re.compile(r"Queries sent:\s+(\d+)"),
    "completed": re.compile(r"Queries completed:\s+(\d+)"),
    "lost": re.compile(r"Queries lost:\s+(\d+)"),
    "seconds": re.compile(r"Run time \(s\):\s+([\d.]+)"),
    "avg": re.compile(r"Average Latency \(s\):\s+([\d.]+)"),
}
_RCODES = re.compile(r"Response codes:\s+(.*)")


def run_mix(server: Server, subruns: tuple[SubRun, ...], files: dict[str, Path],
            seconds: float, load: Load, scratch: Path) -> RunResult:
    total = RunResult()
    for sub in subruns:
        _run_one(server, sub, files[sub.queries], max(0.2, seconds * sub.share), load,
                 scratch, total)
    return total


def warm_up(server: Server, subruns: tuple[SubRun, ...], files: dict[str, Path],
            load: Load) -> None:
    """Send every query of the mix once, unmeasured: the table reports steady state.

    A server that caches rendered answers (gslb) pays its first-query cost here, as a
    production server does in its first seconds; `--cold` skips this."""
    for sub in subruns:
        cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(server.port), "-d", str(files[sub.queries]),
               "-n", "1", "-c", str(load.clients), "-q", str(load.outstanding),
               "-t", str(load.timeout)]
        cmd += dnsperf_options(sub)
        subprocess.run(cmd, capture_output=True, timeout=600, check=False)


def dnsperf_options(sub: SubRun) -> list[str]:
    """The EDNS flags of a sub-run's queries."""
    options = ["-B"] if sub.wire else []
    options += ["-e"] if sub.edns or sub.ecs else []
    if sub.ecs:
        options += ["-E", f"8:{sub.ecs}"]
    if sub.do:
        options.append("-D")
    return options


def _run_one(server: Server, sub: SubRun, queries: Path, seconds: float, load: Load,
             scratch: Path, total: RunResult) -> None:
    if sub.once:
        seconds += ONCE_GRACE
    cmd = [
        "dnsperf", "-s", "127.0.0.1", "-p", str(server.port), "-d", str(queries),
        *(["-n", "1"] if sub.once else []), "-l", f"{seconds:.3f}",
        "-c", str(load.clients), "-q", str(load.outstanding), "-t", str(load.timeout), "-v",
    ]
    cmd += dnsperf_options(sub)
    out_path = scratch / "dnsperf.out"
    before = cpu_seconds(server.pid)
    with out_path.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            proc.wait(timeout=seconds + load.timeout + 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    total.cpu += cpu_seconds(server.pid) - before
    stats: dict[str, float] = {}
    with out_path.open() as text:
        for line in text:
            if line.startswith("> "):
                parts = line.split()
                if len(parts) == 5 and parts[1] not in ("T", "I"):
                    total.latencies.append(float(parts[4]))
                continue
            for key, pattern in _STAT.items():
                match = pattern.search(line)
                if match:
                    stats[key] = float(match.group(1))
            match = _RCODES.search(line)
            if match:
                for item in match.group(1).split(", "):
                    code, count = item.split()[:2]
                    total.rcodes[code] = total.rcodes.get(code, 0) + int(count)
    out_path.unlink()
    if proc.returncode != 0 or "completed" not in stats:
        raise RuntimeError(f"dnsperf failed ({proc.returncode}): {' '.join(cmd)}")
    total.sent += int(stats["sent"])
    total.completed += int(stats["completed"])
    total.lost += int(stats["lost"])
    total.seconds += stats["seconds"]
    total.latency_sum += stats.get("avg", 0.0) * stats["completed"]
