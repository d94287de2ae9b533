"""Response rate limiting against a real `gslb serve`, on each UDP loop: a bounded flood
from one 127/8 network gets the rate (plus the window's burst) and slipped TC replies;
another network, and an exempt one, get every answer; the limited replies are in
/metrics."""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.request

import dns.flags
import dns.message

from tests.conftest import DEMO_ZONE_NAMES
from tests.servers import DEMO_ZONES, GslbProcess, free_port

RATE, SLIP, WINDOW = 20, 2, 2


def flood(port: int, source: str, count: int, seconds: float, sockets: int = 1,
          qname: str = "www.example.com.") -> tuple[int, int]:
    """Send `count` copies of one query from `source` over about `seconds` (from
    `sockets` source ports, in turn), reading replies as they come; (full answers,
    truncated replies)."""
    socks = []
    for _ in range(sockets):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((source, 0))
        sock.setblocking(False)
        socks.append(sock)
    query = dns.message.make_query(qname, "A")
    query.flags = 0
    answered = truncated = 0

    def drain() -> None:
        nonlocal answered, truncated
        for sock in socks:
            while True:
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    break
                message = dns.message.from_wire(data)
                if message.flags & dns.flags.TC:
                    truncated += 1
                elif message.answer:
                    answered += 1

    started = time.monotonic()
    try:
        for i in range(count):
            query.id = i & 0xFFFF
            socks[i % sockets].sendto(query.to_wire(), ("127.0.0.1", port))
            if i % 10 == 9:
                drain()
                pause = started + seconds * (i + 1) / count - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            drain()
            time.sleep(0.02)
    finally:
        for sock in socks:
            sock.close()
    return answered, truncated


def limited_metrics(metrics_port: int) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as page:
        text = page.read().decode()
    return {(action, cls): float(value) for action, cls, value in re.findall(
        r'^gslb_rrl_limited_total\{action="(\w+)",class="(\w+)"\} (\S+)$', text, re.M)}


def test_a_flood_is_held_to_the_rate_and_others_are_answered(udp_path: str) -> None:
    metrics_port = free_port()
    # The native loop's buckets are shared by the workers: two of them, the flood from
    # several source ports (spread over both by SO_REUSEPORT). The Python loop's
    # limiter is per process: one worker.
    workers, sockets = ("2", 4) if udp_path == "native" else ("1", 1)
    server = GslbProcess(DEMO_ZONES, [
        "--workers", workers, "--rrl-rate", str(RATE), "--rrl-slip", str(SLIP),
        "--rrl-window", str(WINDOW), "--rrl-exempt", "127.0.3.0/24",
        "--metrics", f"127.0.0.1:{metrics_port}"]).start(DEMO_ZONE_NAMES)
    try:
        seconds, count = 3.0, 1500
        results: dict[str, tuple[int, int]] = {}

        def run(name: str, *args: object) -> threading.Thread:
            thread = threading.Thread(
                target=lambda: results.__setitem__(name, flood(server.port, *args)))  # type: ignore[arg-type]
            thread.start()
            return thread

        # Three /24s of 127/8 (127.0.0.2 and 127.0.0.3 would share one).
        threads = [run("flood", "127.0.1.2", count, seconds, sockets),
                   run("other", "127.0.2.3", 40, seconds),  # 13 a second: under the rate
                   run("exempt", "127.0.3.4", 600, seconds)]
        for thread in threads:
            thread.join(timeout=30)
        answered, truncated = results["flood"]
        allowed = RATE * (WINDOW + seconds + 1)  # the burst, the flood's time, its tail
        assert RATE * WINDOW <= answered <= allowed, results
        limited = count - answered
        assert 0.4 * limited <= truncated <= limited / SLIP + sockets, results
        assert results["other"] == (40, 0), results
        assert results["exempt"] == (600, 0), results
        counts = limited_metrics(metrics_port)
        assert counts.get(("slipped", "positive"), 0) >= 0.9 * truncated, counts
        assert counts.get(("dropped", "positive"), 0) >= 0.4 * limited, counts
        # TCP is never limited.
        assert server.query("www.example.com.", tcp=True).answer
    finally:
        server.stop()
    assert "rrl: limiting replies to 127.0.1.0/24 (class positive, www.example.com.)" in server.log()


def test_without_a_rate_nothing_is_limited(udp_path: str) -> None:
    server = GslbProcess(DEMO_ZONES, ["--workers", "1"]).start(DEMO_ZONE_NAMES)
    try:
        assert flood(server.port, "127.0.1.2", 400, 1.0) == (400, 0)
    finally:
        server.stop()
    assert "rrl:" not in server.log()
