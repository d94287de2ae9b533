"""Response rate limiting, gslb against Knot DNS's mod-rrl configured alike: server CPU
per query of a flood that is almost all limited.

One client socket on 127.0.0.1 sends the same A query at a fixed rate for a fixed time
(open loop: a dropped reply is not waited for) to each server in turn, with RRL on
(rate 20, slip 2; gslb's window 4 s, Knot 3.2's fixed bucket depth) and, for
reference, off. The server's user+sys CPU from /proc/PID/stat before and after, divided
by the queries it read (sent, less what the kernel dropped at its socket), is the figure; the replies read back (full answers, truncated)
show the limit held. Both servers run one UDP worker. Loopback only; each flood stops
by itself.

    .venv/bin/python bench/rrl.py [--qps 20000] [--seconds 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import dns.flags
import dns.message

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import ROOT, Gslb, Knot, Server, cpu_seconds  # noqa: E402

RATE, SLIP, WINDOW = 20, 2, 4
QNAME = "www.example.com."
ORIGINS = ["example.com.", "example.net.", "sub.example.com."]


def flood(port: int, qps: int, seconds: float) -> tuple[int, int, int]:
    """Send `qps` a second for `seconds`; (sent, full answers, truncated replies)."""
    query = dns.message.make_query(QNAME, "A")
    query.flags = 0
    wire = query.to_wire()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    counts = {"answered": 0, "truncated": 0}
    done = threading.Event()

    def receive() -> None:
        while not done.is_set():
            try:
                data = sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            counts["truncated" if data[2] & 0x02 else "answered"] += 1

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    total = int(qps * seconds)
    batch = 50
    started = time.monotonic()
    sent = 0
    while sent < total:
        for _ in range(min(batch, total - sent)):
            sock.sendto(wire, ("127.0.0.1", port))
            sent += 1
        pause = started + sent / qps - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    time.sleep(0.5)
    done.set()
    reader.join(timeout=2)
    sock.close()
    return sent, counts["answered"], counts["truncated"]


def socket_drops(port: int) -> int:
    """Datagrams the kernel dropped at the UDP sockets bound to `port` (/proc/net/udp's
    last column): queries the server never read, so never spent CPU on."""
    drops = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            drops += int(fields[-1])
    return drops


def measure(server: Server, qps: int, seconds: float) -> dict[str, float]:
    before, dropped = cpu_seconds(server.pid), socket_drops(server.port)
    sent, answered, truncated = flood(server.port, qps, seconds)
    used = cpu_seconds(server.pid) - before
    read = sent - (socket_drops(server.port) - dropped)
    return {"sent": sent, "read": read, "answered": answered, "truncated": truncated,
            "us_per_query": used * 1e6 / read, "cpu_s": used}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qps", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if shutil.which("knotd") is None and not Path("/usr/sbin/knotd").exists():
        print("knotd is not installed (Debian package knot)", file=sys.stderr)
        return 2
    rrl = ("--rrl-rate", str(RATE), "--rrl-slip", str(SLIP), "--rrl-window", str(WINDOW))
    with tempfile.TemporaryDirectory(prefix="gslb-rrl-bench-") as tmp:
        zones = Path(tmp) / "zones"
        zones.mkdir()
        for origin in ORIGINS:
            shutil.copy(ROOT / "zones" / f"{origin}zone", zones / f"{origin}zone")
        servers: dict[str, Server] = {}
        for label, kind, on in (("gslb rrl", Gslb, True), ("knot rrl", Knot, True),
                                ("gslb off", Gslb, False), ("knot off", Knot, False)):
            server = kind(Path(tmp) / label.replace(" ", "-"), zones, ORIGINS)
            if isinstance(server, Gslb):
                server.extra = rrl if on else ()
            elif on:
                server.rrl = (RATE, SLIP)
            servers[label] = server
        results: dict[str, list[dict[str, float]]] = {label: [] for label in servers}
        try:
            for server in servers.values():
                server.start(timeout=30)
            for _ in range(args.runs):  # interleaved: background drift hits all alike
                for label, server in servers.items():
                    results[label].append(measure(server, args.qps, args.seconds))
        finally:
            for server in servers.values():
                server.stop()
    print(f"flood: {args.qps} qps of one query for {args.seconds:g} s from one address, "
          f"{args.runs} runs (median); RRL rate {RATE}, slip {SLIP}")
    print(f"{'server':<10} {'sent':>8} {'read':>8} {'answered':>9} {'truncated':>10} "
          f"{'CPU us/query read':>18}")
    for label, rows in results.items():
        median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        print(f"{label:<10} {median['sent']:>8.0f} {median['read']:>8.0f} "
              f"{median['answered']:>9.0f} {median['truncated']:>10.0f} "
              f"{median['us_per_query']:>18.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
