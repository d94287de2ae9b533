"""Prometheus metrics for a DNS node: plain counters in each process, merged on scrape.

Counting on the query path must cost next to nothing, so no process touches a
Prometheus object per query: the responder and the socket code bump plain dicts and
lists (gslb.dns.handler.Responder.counts, gslb.observability.taps). Once a second, and
right before it answers a scrape, each process writes what it has counted so far (its
*report*: cumulative, never reset) to one file in the metrics directory, replacing the
previous one atomically. A scrape, in whichever process serves it (any worker on the
`--metrics` port, or the API), reads every report and merges them: counters are summed
over every process that ever reported, so they keep counting across reloads and
replaced workers; gauges come from live processes only. prometheus-client renders the
result in the text exposition format (gslb.observability.exposition, imported on the
first scrape: a process that only reports never loads prometheus-client).

Reports are `marshal` files (plain tuples, dicts and numbers: nothing executes on load)
named `<pid>.report`. The supervisor folds the reports of workers it stopped into its
own (`fold_dead`), so the directory does not grow with every reload.
"""

from __future__ import annotations

import marshal
import os
from pathlib import Path
from typing import Any, Callable

FLUSH_SECONDS = 1.0
SUFFIX = ".report"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FIRST_BUCKET, LAST_BUCKET = 3, 22  # le 8 us .. le 4.19 s, then +Inf
# What is summed across processes (including stopped ones) versus taken from live ones.
COUNTERS = ("queries", "udp_latency", "tcp_latency", "tcp_accepted", "tcp_evicted",
            "reloads_ok", "reloads_failed", "zone_problems", "query_log_lines",
            "dnstap_sent", "dnstap_dropped", "dnstap_reconnects", "native_udp",
            "ready_probes", "rrl")
Report = dict[str, Any]


def write_report(directory: Path, report: Report) -> None:
    """Replace this process's report file in one rename, so readers never see half."""
    path = directory / f"{os.getpid()}{SUFFIX}"
    temporary = directory / f".{os.getpid()}.tmp"
    temporary.write_bytes(marshal.dumps(report))
    os.replace(temporary, path)


def read_reports(directory: Path) -> list[Report]:
    """Every report in the directory; one that vanished while read (folded by the
    supervisor, whose own report now holds it) is skipped and the whole read retried."""
    for _ in range(3):
        reports = []
        try:
            for path in sorted(directory.glob(f"*{SUFFIX}")):
                reports.append(marshal.loads(path.read_bytes()))
            return reports
        except (FileNotFoundError, EOFError, ValueError):
            continue
    return reports


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def merge_counters(into: Report, other: Report) -> None:
    """Add `other`'s counters to `into` (dicts by key, lists by index, numbers)."""
    for name in COUNTERS:
        value = other.get(name)
        if value is None:
            continue
        if isinstance(value, dict):
            target = into.setdefault(name, {})
            for key, count in value.items():
                target[key] = target.get(key, 0) + count
        elif isinstance(value, list):
            target = into.setdefault(name, [0] * len(value))
            for index, count in enumerate(value):
                target[index] += count
        else:
            into[name] = into.get(name, 0) + value


def fold_dead(directory: Path, own: Report, write_own: Callable[[], None]) -> int:
    """Move the counters of reports whose process is gone into `own` (the caller's
    retired totals) and delete those files; how many were folded. `write_own` rewrites
    the caller's report (which includes `own`) before each file goes, so a scrape never
    misses those counts. Run by the one process that owns the directory (the
    supervisor), after it has reaped workers."""
    folded = 0
    for path in directory.glob(f"*{SUFFIX}"):
        try:
            report = marshal.loads(path.read_bytes())
        except (OSError, EOFError, ValueError):
            continue
        pid = report.get("pid", 0)
        if pid == os.getpid() or alive(pid):
            continue
        merge_counters(own, report)
        folded += 1
        write_own()  # first hold the counts, then drop their old file
        path.unlink(missing_ok=True)
    return folded


class ReportWriter:
    """Writes one process's report now and then; `report` builds it from live objects."""

    def __init__(self, directory: Path, report: Callable[[], Report]) -> None:
        self.directory = directory
        self.report = report

    def write(self) -> None:
        try:
            write_report(self.directory, self.report())
        except OSError:
            pass  # a full or removed directory must not stop the DNS service


def render(directory: Path) -> bytes:
    """The merged metrics of every process reporting into `directory`, as Prometheus text."""
    from gslb.observability.exposition import render_text

    return render_text(directory)


def newest_snapshot(reports: list[Report]) -> Report:
    """The snapshot of the newest version, from the report written last: workers write
    theirs every second, the supervisor only after a reload, so its state part may be old."""
    return max(reports, key=lambda r: (r["snapshot"]["version"], r.get("written", 0)))["snapshot"]
