"""Both UDP loops in-process on a real loopback socket: answers, counters, stop.

The native loop answers a repeated query from its table without calling Python (the
counters say which path answered), the Python loop answers everything through the
responder; both stop within a fraction of a second of `stop()`, and `udp.counters()`
sums what every running loop counted.
"""

from __future__ import annotations

import ctypes
import socket
import subprocess
import sys
import time
from typing import Iterator

import dns.message
import dns.rcode
import pytest

from gslb.dns.handler import Options
from gslb.server import fastpath, udp
from gslb.server.node import Server
from gslb.settings import Settings
from tests.servers import DEMO_ZONES, wait_until

LOOPS = ["native", "python"]


@pytest.fixture(params=LOOPS)
def loop(request: pytest.FixtureRequest) -> Iterator[tuple[udp.UdpLoop, tuple[str, int]]]:
    if request.param == "native" and not fastpath.available():
        pytest.skip("the C extension is not built")
    server = Server(Settings(zones_dir=DEMO_ZONES, udp=request.param, prewarm=0))
    assert server.load()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    answer = udp.UdpAnswerer(Options(), server.responder.labels, server.current,
                             server.telemetry.taps, sock.getsockname())
    running: udp.UdpLoop
    if request.param == "native":
        running = udp.NativeUdpLoop(sock, answer, server.snapshot.answers.native.table)  # type: ignore[union-attr]
    else:
        running = udp.PythonUdpLoop(sock, answer)
    address = sock.getsockname()
    running.start()
    yield running, address
    running.stop()


def ask(address: tuple[str, int], name: str, rdtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(2.0)
        client.sendto(query.to_wire(), address)
        reply = dns.message.from_wire(client.recv(65535))
    assert reply.id == query.id
    return reply


def test_answers_and_counts(loop: tuple[udp.UdpLoop, tuple[str, int]]) -> None:
    running, address = loop
    for _ in range(5):
        reply = ask(address, "www.example.com.")
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer
    for index in range(5):  # a random-subdomain flood: one per-anchor template
        assert ask(address, f"nx{index}.example.com.").rcode() == dns.rcode.NXDOMAIN
    # The loop counts a batch's replies after sendmmsg returns, which may be just after
    # the client has read the last one.
    assert wait_until(lambda: running.counters()["sent"] == 10, timeout=2), running.counters()
    counts = running.counters()
    assert counts["received"] == 10 and counts["sent"] == 10
    if running.kind == "native":
        assert counts["passed"] == 0  # every one built in C from the zone data
        assert counts["answered"] == 10
    else:
        assert counts["passed"] == 10 and counts["answered"] == 0
    total = udp.counters()
    assert total["received"] >= 10


def built_in_c(zone: str, rcode: int) -> tuple[int, int, int]:
    """The A answers C gave from the zone data for `zone` with `rcode`, as the metrics
    count them: built (cache misses) and served from entries built so (hits); and the
    answers the latency histogram has timed."""
    queries: dict[tuple, int] = {}
    latency = [0] * 65
    fastpath.add_native_counts(queries, latency)
    key = (zone, 1, rcode, False, ())
    return queries.get((key, False), 0), queries.get((key, True), 0), sum(latency[:-1])


@pytest.mark.parametrize("loop", ["native"], indirect=True)
def test_answers_built_in_c_are_counted_under_their_zone(
        loop: tuple[udp.UdpLoop, tuple[str, int]]) -> None:
    running, address = loop
    before = built_in_c("example.com.", 0), built_in_c("example.com.", 3)
    for index in range(3):
        assert ask(address, "www.example.com.").answer
        assert ask(address, f"nx{index}.example.com.").rcode() == dns.rcode.NXDOMAIN
    assert wait_until(lambda: running.counters()["sent"] == 6, timeout=2)
    assert running.counters()["passed"] == 0
    built, hits, timed = built_in_c("example.com.", 0)
    # built once from the zone data, then served from the entry kept for it
    assert (built, hits) == (before[0][0] + 1, before[0][1] + 2)
    assert timed > before[0][2]  # the loop's first answer is always timed
    # NXDOMAIN: built once, then served from the entry kept for the anchor
    assert built_in_c("example.com.", 3)[:2] == (before[1][0] + 1, before[1][1] + 2)


def test_stop_returns_quickly(loop: tuple[udp.UdpLoop, tuple[str, int]]) -> None:
    running, address = loop
    ask(address, "www.example.com.")
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < 0.5
    assert not running.thread.is_alive()
    assert running.error is None
    assert running not in udp._loops


def test_a_weighted_name_fills_each_draw_slot_once(loop: tuple[udp.UdpLoop, tuple[str, int]]) -> None:
    """The native loop hands Python the draw it looked up with, so each miss fills the
    slot that missed: at most 64 misses (one per slot) for any number of queries."""
    running, address = loop
    seen = set()
    for _ in range(400):
        seen.add(ask(address, "www2.example.com.").answer[0][0].address)
    assert seen == {"192.0.2.10", "192.0.2.11"}
    if running.kind == "native":
        counts = running.counters()
        assert counts["passed"] <= 64 and counts["answered"] >= 336, counts


# A client in a process of its own (this one's GIL is held while it asks): the query
# every 20 ms for a second, each reply's round trip; "ready" once its socket is open.
GIL_CLIENT = """
import socket, sys, time
import dns.message
address = (sys.argv[1], int(sys.argv[2]))
names = sys.argv[3:]
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.settimeout(1.0)
print("ready", flush=True)
sys.stdin.readline()
for index in range(50):
    query = dns.message.make_query(names[index % len(names)], "A")
    started = time.monotonic()
    client.sendto(query.to_wire(), address)
    try:
        reply = dns.message.from_wire(client.recv(65535))
        print(f"{time.monotonic() - started:.6f} {dns.rcode.to_text(reply.rcode())} {len(reply.answer)}", flush=True)
    except socket.timeout:
        print("lost", flush=True)
    time.sleep(0.02)
"""


def test_native_loop_answers_while_python_holds_the_gil(
        loop: tuple[udp.UdpLoop, tuple[str, int]]) -> None:
    """What the table holds is answered without the GIL: a Python thread that holds it
    (a GeoIP rebuild, a configuration version, a long TCP answer) delays no such answer.
    Here this process holds the GIL for 1.5 s (a C call through ctypes.PyDLL, which
    keeps it) while another process asks, 50 times, a name and a missing name whose
    answers the table holds: each comes back at once."""
    running, address = loop
    if running.kind != "native":
        pytest.skip("the Python loop needs the GIL for every answer")
    names = ["www.example.com.", "nx1.example.com."]
    for name in names:  # built from the zone data once, with the GIL: kept in the table
        ask(address, name)
    assert wait_until(lambda: running.counters()["sent"] == 2, timeout=2)
    client = subprocess.Popen([sys.executable, "-c", GIL_CLIENT, address[0], str(address[1]), *names],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout is not None and client.stdin is not None
        assert client.stdout.readline().strip() == "ready"
        client.stdin.write("go\n")
        client.stdin.flush()
        ctypes.PyDLL(None).usleep(1_500_000)  # the GIL held throughout: PyDLL keeps it
        output, _ = client.communicate(timeout=10)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    lines = output.split()
    assert "lost" not in lines, output
    rounds = [line.split() for line in output.splitlines()]
    assert len(rounds) == 50 and all(r[1] in ("NOERROR", "NXDOMAIN") for r in rounds), output
    # 1.5 s of held GIL covered the 50 queries (1 s and more): none waited for it
    assert max(float(r[0]) for r in rounds) < 0.2, output
    assert running.counters()["passed"] == 0
