"""dnstap with the real consumer: Debian fstrm-bin's fstrm_capture receives the Frame
Streams (bidirectional handshake over a unix socket and over TCP), dnstap-ldns decodes
the file. A dead or stuck collector neither slows nor stops answers."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from tests.conftest import DEMO_ZONE_NAMES
from tests.e2e.test_metrics import delta, labels, scrape
from tests.redis_server import require
from tests.servers import DEMO_ZONES, GslbProcess, free_port, stop_process, wait_until

# Not the zone apexes: the readiness check's SOA queries are tapped too.
NAMES = ["www.example.com.", "www2.example.com.", "nothing.example.net.", "api.example.com."]


def capture(tmp_path: Path, where: list[str]) -> tuple[subprocess.Popen, Path]:
    binary = require("fstrm_capture", "fstrm-bin")
    output = tmp_path / "tap.fstrm"
    proc = subprocess.Popen([binary, "-t", "protobuf:dnstap.Dnstap", *where, "-w", str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc, output


def decoded(output: Path) -> list[tuple[str, str, str]]:
    """(AQ|AR, transport, name) per frame, from dnstap-ldns's one-line format."""
    binary = require("dnstap-ldns", "dnstap-ldns")
    text = subprocess.run([binary, "-r", str(output)], capture_output=True, text=True,
                          timeout=30, check=True).stdout
    frames = []
    for line in text.splitlines():
        parts = line.split()
        # 2026-11-29 21:05:28.652582 AQ 127.0.0.1 UDP 56b "www.example.com." IN A
        frames.append((parts[2], parts[4], parts[6].strip('"')))
    return frames


def send_known(server: GslbProcess, rounds: int) -> Counter:
    sent: Counter = Counter()
    for index in range(rounds):
        for number, name in enumerate(NAMES):
            tcp = (index + number) % 3 == 0
            message = dns.message.make_query(name, "A")
            send = dns.query.tcp if tcp else dns.query.udp
            send(message, "127.0.0.1", port=server.port, timeout=3)
            sent[("TCP" if tcp else "UDP", name)] += 1
    return sent


def run_capture(tmp_path: Path, where: list[str], target: str, workers: int) -> None:
    collector, output = capture(tmp_path, where)
    server = GslbProcess(DEMO_ZONES, ["--workers", str(workers), "--dnstap", target])
    try:
        time.sleep(0.3)  # fstrm_capture listening; gslb would retry anyway
        server.start(DEMO_ZONE_NAMES)
        sent = send_known(server, 10)
        assert server.stop() == 0  # drains the queue, STOP, FINISH
    finally:
        server.stop()
        stop_process(collector)
    frames = decoded(output)
    for kind in ("AQ", "AR"):
        got = Counter((transport, name) for k, transport, name in frames
                      if k == kind and name in NAMES)
        assert got == sent, kind
    assert sum(f[0] == "AQ" for f in frames) == sum(f[0] == "AR" for f in frames)
    # Each message names the zone that answered (query_zone), as BIND and Knot do.
    yaml_text = subprocess.run([require("dnstap-ldns", "dnstap-ldns"), "-y", "-r", str(output)],
                               capture_output=True, text=True, timeout=30, check=True).stdout
    zones = Counter(re.findall(r'query_zone: "([^"]+)"', yaml_text))
    assert zones["example.com."] >= 2 * sum(n for (_, name), n in sent.items()
                                            if name.endswith("example.com."))
    assert zones["example.net."] >= 2 * sum(n for (_, name), n in sent.items()
                                            if name.endswith("example.net."))


def test_unix_socket_collector_gets_every_query_and_response(tmp_path: Path) -> None:
    path = tmp_path / "tap.sock"
    run_capture(tmp_path, ["-u", str(path)], f"unix:{path}", workers=1)


def test_tcp_collector_with_two_workers(tmp_path: Path) -> None:
    port = free_port()
    run_capture(tmp_path, ["-a", "127.0.0.1", "-p", str(port)], f"tcp:127.0.0.1:{port}",
                workers=2)


def _stuck_collector(path: Path, stop: threading.Event) -> socket.socket:
    """Accepts, completes the handshake, then never reads another byte."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    listener.settimeout(0.2)
    held: list[socket.socket] = []

    def serve() -> None:
        from gslb.observability.dnstap import ACCEPT, control_frame, read_control
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:  # closed by the test
                break
            conn.settimeout(2)
            try:
                read_control(conn)
                conn.sendall(control_frame(ACCEPT))
            except OSError:
                conn.close()
                continue
            held.append(conn)  # and never read from it
        for conn in held:
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener


def _timed_queries(server: GslbProcess, count: int) -> list[float]:
    took = []
    message = dns.message.make_query("www.example.com.", "A")
    for _ in range(count):
        started = time.monotonic()
        reply = dns.query.udp(message, "127.0.0.1", port=server.port, timeout=2)
        took.append(time.monotonic() - started)
        assert reply.rcode() == dns.rcode.NOERROR
    return sorted(took)


def test_dead_or_stuck_collector_never_slows_answers(tmp_path: Path) -> None:
    stop = threading.Event()
    stuck = tmp_path / "stuck.sock"
    listener = _stuck_collector(stuck, stop)
    metrics_port = free_port()
    servers = [
        GslbProcess(DEMO_ZONES, ["--workers", "1", "--dnstap", f"unix:{tmp_path}/nobody.sock"]),
        GslbProcess(DEMO_ZONES, ["--workers", "1", "--dnstap", f"unix:{stuck}",
                                 "--dnstap-queue", "64", "--metrics",
                                 f"127.0.0.1:{metrics_port}"]),
    ]
    try:
        for server in servers:
            server.start(DEMO_ZONE_NAMES)
        for server in servers:
            # Far more than the stuck socket's buffers and the queue can hold.
            took = _timed_queries(server, 1500)
            # A server blocked on the collector would take seconds (the write timeout);
            # a loaded shared machine still answers loopback queries in milliseconds.
            assert took[len(took) // 2] < 0.05, took[len(took) // 2]
            assert took[int(len(took) * 0.99)] < 0.5, took[int(len(took) * 0.99)]
        dropped = lambda: delta(scrape(metrics_port), {},  # noqa: E731
                                "gslb_dnstap_frames_total")[labels(result="dropped")]
        assert wait_until(lambda: dropped() > 0, timeout=5)
        for server in servers:
            server.signal(signal.SIGTERM)
        for server in servers:
            assert server.proc is not None
            server.proc.wait(timeout=10)  # stopping does not hang on the collector either
    finally:
        for server in servers:
            server.stop()
        stop.set()
        listener.close()
