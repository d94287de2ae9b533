"""/ready in-process on real sockets, with both UDP loops: its SOA queries go through the
listening socket and the answering code but are not counted, the same query without the
node's key is, and a DNS port that no longer answers makes /ready 503 naming the zones.

(tests/e2e/test_metrics.py checks the same through a real `gslb serve` and its scrape.)
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.error
import urllib.request

import dns.edns
import dns.message
import dns.query
import pytest

from gslb.dns.edns import OPTION_PROBE
from gslb.server import fastpath, probe
from gslb.server.node import Server
from gslb.settings import ListenAddress, Settings
from tests.conftest import DEMO_ZONE_NAMES
from tests.servers import DEMO_ZONES, free_port


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def counted(server: Server) -> int:
    """Queries this process counted (Python's labels and the C table's hits, which are
    the module's: other tests' in this process too)."""
    report = server.telemetry.report(server)
    return sum(report["queries"].values())


@pytest.mark.parametrize("udp", ["native", "python"])
def test_ready_probes_are_answered_not_counted_and_fail_when_dns_is_gone(udp: str) -> None:
    if udp == "native" and not fastpath.available():
        pytest.skip("the C extension is not built")
    dns_port, metrics_port = free_port(), free_port()
    server = Server(Settings(zones_dir=DEMO_ZONES, udp=udp, prewarm=0,
                             listen=(ListenAddress("127.0.0.1", dns_port),),
                             metrics=ListenAddress("127.0.0.1", metrics_port)))
    assert server.load()
    server.telemetry.open_directory()

    def client_soa(key: bytes) -> None:
        query = dns.message.make_query("example.com.", "SOA", use_edns=0, payload=1232,
                                       options=[dns.edns.GenericOption(OPTION_PROBE, key)])
        assert dns.query.udp(query, "127.0.0.1", port=dns_port, timeout=2).answer

    async def scenario() -> None:
        await server.start()
        loop = asyncio.get_running_loop()
        try:
            zones, base = len(DEMO_ZONE_NAMES), counted(server)
            for _ in range(5):
                status, body = await loop.run_in_executor(None, get, metrics_port, "/ready")
                assert (status, body) == (200, f"ready: {zones} zones answer SOA\n")
            assert counted(server) == base
            assert server.telemetry.ready_probes == {"ok": 5 * zones, "failed": 0}
            answered = [loop.counters() for loop in server.udp_loops][0]
            assert answered["received"] == 5 * zones and answered["answered"] == 0
            if udp == "native":  # every probe answered in C, from the zone data
                assert answered["probes"] == 5 * zones

            # the probe's option with another value is an unknown option: counted
            await loop.run_in_executor(None, client_soa, bytes(16))
            await loop.run_in_executor(None, client_soa, probe.KEY[:15] + b"?")
            assert counted(server) == base + 2

            for udp_loop in server.udp_loops:  # the DNS port stops answering
                udp_loop.stop()
            status, body = await loop.run_in_executor(None, get, metrics_port, "/ready")
            assert status == 503 and body.startswith("not answering SOA: ")
            assert sorted(body.split()[3:]) == sorted(DEMO_ZONE_NAMES)
            assert server.telemetry.ready_probes["failed"] == zones

            # a DNS port that takes queries and never answers (hung): every zone is asked
            # at once, so /ready answers within one probe timeout, not one per zone
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
                silent.bind(("127.0.0.1", dns_port))
                started = time.monotonic()
                status, body = await loop.run_in_executor(None, get, metrics_port, "/ready")
                took = time.monotonic() - started
            assert status == 503 and sorted(body.split()[3:]) == sorted(DEMO_ZONE_NAMES)
            assert probe.TIMEOUT <= took < (zones - 0.5) * probe.TIMEOUT  # before: zones x timeout
        finally:
            await server.stop()

    try:
        asyncio.run(scenario())
    finally:
        server.telemetry.close_directory()
