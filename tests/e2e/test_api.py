"""`gslb serve --api` as a subprocess: changes through HTTP, answers through `dig`.

A record added, a member drained, a datacenter drained and a weight changed are seen by
dig within one second (with two workers: the one that took the request and the one that
follows the store); they survive a restart; a rollback brings the old answers back.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.e2e.test_smoke import dig
from tests.redis_server import require
from tests.servers import DEMO_ZONES, IDLE_API_TIMEOUT, ROOT, GslbProcess, free_port

VISIBLE_WITHIN = 1.0  # seconds, the promise


def make_token(zones: Path, role: str = "admin") -> str:
    out = subprocess.run([sys.executable, "-m", "gslb.cli", "token", "create", "--name", "e2e",
                          "--role", role, "--zones", str(zones)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip()


def answers(server: GslbProcess, name: str, times: int = 8) -> set[str]:
    """Every A answer over `times` digs (each from its own source port, so with
    SO_REUSEPORT they spread over the workers)."""
    found: set[str] = set()
    for _ in range(times):
        found |= {r.split()[-1] for r in dig(server, name, "A").records("ANSWER") if " A " in r}
    return found


def seen_within(server: GslbProcess, name: str, expected: set[str]) -> float:
    """Seconds until every query of `name` answers exactly `expected` (timed with fast
    in-process queries, each from a new source port), confirmed at once with dig: the
    first sample dig agrees with. Eight queries can all reach one worker (the kernel
    hashes source ports), so a match dig contradicts is a worker still behind, not a
    failure: sample again."""
    start = time.monotonic()
    while time.monotonic() - start < 5:
        found: set[str] = set()
        for _ in range(8):
            found |= {r.to_text() for rrset in server.query(name).answer for r in rrset if rrset.rdtype == 1}
        if found == expected:
            elapsed = time.monotonic() - start
            if answers(server, name) == expected:
                return elapsed
        time.sleep(0.01)
    raise AssertionError(f"{name}: still {answers(server, name)}, expected {expected}")


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    require("dig", "bind9-dnsutils")
    target = tmp_path / "zones"
    shutil.copytree(DEMO_ZONES, target)
    return target


def start(zones: Path, api_port: int, workers: int) -> GslbProcess:
    return GslbProcess(zones, ["--api", f"127.0.0.1:{api_port}", "--workers", str(workers),
                               "--prewarm", "0"]).start(ready_zones=["example.com."])


@pytest.fixture
def served(zones: Path) -> Iterator[tuple[GslbProcess, httpx.Client]]:
    api_port = free_port()
    server = start(zones, api_port, workers=2)
    client = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=IDLE_API_TIMEOUT,
                          headers={"Authorization": f"Bearer {make_token(zones)}"})
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


def test_changes_reach_dig_within_a_second_and_survive_restart(
        served: tuple[GslbProcess, httpx.Client], zones: Path) -> None:
    server, client = served
    assert httpx.get(f"{client.base_url}/livez", timeout=IDLE_API_TIMEOUT).status_code == 200
    assert client.get("/v1/zones").status_code == 200

    added = client.put("/v1/zones/example.com/rrsets/added/A", json={"ttl": 30, "rdata": ["192.0.2.77"]})
    assert added.status_code == 200, added.text
    assert seen_within(server, "added.example.com", {"192.0.2.77"}) < VISIBLE_WITHIN

    weight = client.patch("/v1/zones/example.com/steered/www2/A/members/192.0.2.11", json={"weight": 0})
    assert weight.status_code == 200, weight.text
    assert seen_within(server, "www2.example.com", {"192.0.2.10"}) < VISIBLE_WITHIN

    drained = client.post("/v1/zones/example.com/steered/api/A/members/192.0.2.20/drain")
    assert drained.status_code == 200, drained.text
    assert seen_within(server, "api.example.com", {"192.0.2.21"}) < VISIBLE_WITHIN

    datacenter = client.post("/v1/datacenters/eu-west/drain")
    assert datacenter.status_code == 200, datacenter.text
    assert seen_within(server, "geo.example.com", {"192.0.2.30"}) < VISIBLE_WITHIN

    server.stop()
    check = subprocess.run([sys.executable, "-m", "gslb.cli", "check", "--zones", str(zones)],
                           capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0, check.stdout
    api_port = client.base_url.port or 0
    restarted = start(zones, api_port, workers=1)
    try:
        assert answers(restarted, "added.example.com") == {"192.0.2.77"}
        assert answers(restarted, "www2.example.com") == {"192.0.2.10"}  # eu-west drained
        assert answers(restarted, "geo.example.com") == {"192.0.2.30"}
        rolled = client.post("/v1/versions/0/rollback")
        assert rolled.status_code == 200, rolled.text
        assert seen_within(restarted, "geo.example.com", {"192.0.2.30", "198.51.100.30"}) < VISIBLE_WITHIN
        assert answers(restarted, "added.example.com") == set()
        assert answers(restarted, "api.example.com") == {"192.0.2.20"}
        assert answers(restarted, "www2.example.com", 30) == {"192.0.2.10", "192.0.2.11"}
    finally:
        restarted.stop()


def test_metrics_on_the_api_port_are_the_nodes(served: tuple[GslbProcess, httpx.Client]) -> None:
    """`--api` without `--metrics`: /metrics on the API port (token needed) merges every
    worker's counts, so the queries sent show up whichever worker answered them."""
    from tests.e2e.test_metrics import delta
    from prometheus_client.parser import text_string_to_metric_families

    server, client = served

    def scrape() -> dict:
        reply = client.get("/metrics")
        assert reply.status_code == 200, reply.text
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(reply.text) for s in family.samples}

    assert httpx.get(f"{client.base_url}/metrics", timeout=IDLE_API_TIMEOUT).status_code == 401
    time.sleep(1.5)  # every worker has reported the readiness queries by now
    before = scrape()
    for _ in range(20):
        server.query("example.com", "SOA")
    time.sleep(1.5)  # each worker writes its report once a second
    moved = delta(scrape(), before, "gslb_queries_total")
    assert sum(count for labels, count in moved.items()
               if ("zone", "example.com.") in labels and ("qtype", "SOA") in labels) == 20


@pytest.mark.parametrize("workers", [1, 2])
def test_a_check_named_through_the_api_is_probed_at_once(zones: Path, workers: int) -> None:
    """A member added through the API with a health check is probed from that change on,
    without SIGHUP, even when nothing was probed before: here the check finds nothing
    listening, so the member leaves the answers within its interval x fall (+1 s)."""
    steering = zones / "example.com.gslb.yaml"
    text = steering.read_text().replace("{value: 192.0.2.51, check: demo-dead, probe: 127.0.0.1}",
                                        "192.0.2.51")  # no member is probed at start
    steering.write_text(text.replace(
        "checks:\n", "checks:\n  fast-dead: {type: tcp, port: 9, interval: 0.3, timeout: 0.2, "
        "rise: 1, fall: 1, jitter: 0}\n"))
    api_port = free_port()
    server = start(zones, api_port, workers)
    client = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=IDLE_API_TIMEOUT,
                          headers={"Authorization": f"Bearer {make_token(zones)}"})
    try:
        record = {"type": "A", "ttl": 5, "select": 2, "policies": ["health"],
                  "rules": [{"pool": "web"}],
                  "pools": {"web": {"members": [
                      {"value": "192.0.2.60"},
                      {"value": "192.0.2.61", "check": "fast-dead", "probe": "127.0.0.2"}]}}}
        put = client.put("/v1/zones/example.com/steered/probed/A", json=record)
        assert put.status_code == 200, put.text
        assert seen_within(server, "probed.example.com", {"192.0.2.60"}) < 0.3 * 1 + 1.0 + 1.0
        assert "fast-dead@127.0.0.2 is DOWN" in server.log()
    finally:
        client.close()
        server.stop()
