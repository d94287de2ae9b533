"""Shared state end to end, all real: redis-server, `gslb checker` agents, `gslb serve`
nodes with --redis, HTTP backends on loopback, `dig`, `gslb override`, `gslb rtt`,
`gslb explain --redis`, and dnsperf while Redis is killed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests.e2e.test_health import DOWN_BOUND, UP_BOUND, Backend, dig
from tests.redis_server import RedisProcess, require
from tests.servers import ROOT, ManagedProcess, copy_demo_zones, wait_until

STEERING = """\
datacenters:
  us-east: {{}}
  eu-west: {{}}
checks:
  web: {{type: http, port: {port_a}, interval: 0.5, timeout: 0.4, rise: 2, fall: 2, jitter: 0}}
  web-b: {{type: http, port: {port_b}, interval: 0.5, timeout: 0.4, rise: 2, fall: 2, jitter: 0}}
records:
  www2:
    type: A
    ttl: 5
    pools:
      web:
        members:
          - {{value: 192.0.2.10, check: web, probe: 127.0.0.1, datacenter: us-east}}
          - {{value: 192.0.2.11, check: web-b, probe: 127.0.0.1, datacenter: eu-west}}
    rules: [{{pool: web}}]
    select: 2
  lat:
    type: A
    pools:
      p:
        members:
          - {{value: 192.0.2.40, datacenter: us-east}}
          - {{value: 192.0.2.41, datacenter: eu-west}}
    rules: [{{pool: p}}]
    policies: [health, latency]
"""
BOTH = {"192.0.2.10", "192.0.2.11"}
STORE = ["--verdict-expiry", "3", "--resync", "0.5"]


class Checker(ManagedProcess):
    def __init__(self, zones: Path, url: str, name: str, directory: Path) -> None:
        self.args = ["--zones", str(zones), "--redis", url, "--agent", name]
        self.log_path = directory / f"checker-{name}.log"

    def start(self) -> "Checker":
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "gslb.cli", "checker", *self.args],
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
        return self


def _setup(tmp_path: Path, backends: list[Backend]) -> Path:
    zones = copy_demo_zones(tmp_path)
    (zones / "example.com.gslb.yaml").write_text(
        STEERING.format(port_a=backends[0].port, port_b=backends[1].port))
    return zones


def _gslb(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gslb.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


def test_two_nodes_and_two_agents_agree_and_overrides_expire(tmp_path: Path, start_server,
                                                             redis_server: RedisProcess) -> None:
    backends = [Backend().start(), Backend().start()]
    zones = _setup(tmp_path, backends)
    agents = [Checker(zones, redis_server.url, name, tmp_path).start() for name in ("eu-1", "us-1")]
    try:
        nodes = [start_server(zones, ["--redis", redis_server.url, "--workers", workers, *STORE],
                              ["example.com."]) for workers in ("1", "2")]
        for node in nodes:
            assert wait_until(lambda: dig(node) == BOTH, timeout=5)
        client = redis.Redis(port=redis_server.port, decode_responses=True)
        assert wait_until(lambda: len(client.hkeys("gslb:verdicts")) == 4, timeout=5)
        entry = json.loads(client.hget("gslb:verdicts", "web@127.0.0.1|eu-1") or "{}")
        assert entry["up"] is True and abs(entry["at"] - time.time()) < 2  # with its time
        assert wait_until(lambda: set(client.hkeys("gslb:agents")) == {"eu-1", "us-1"}, timeout=3)
        # Probe times are RTT telemetry per agent region and member datacenter.
        assert {"eu-1|us-east", "eu-1|eu-west", "us-1|us-east"} <= set(client.hkeys("gslb:rtt"))

        epoch = int(client.get("gslb:epoch") or 0)
        backends[0].stop()
        started = time.monotonic()
        for node in nodes:
            assert wait_until(lambda: dig(node) == {"192.0.2.11"}, timeout=DOWN_BOUND + 1)
        assert time.monotonic() - started <= DOWN_BOUND + 0.5
        assert int(client.get("gslb:epoch") or 0) > epoch  # the flip was announced
        for _ in range(5):  # the nodes agree on every answer after the change
            assert [dig(node) for node in nodes] == [{"192.0.2.11"}] * 2
            time.sleep(0.1)
        # Warm start: a node started now answers from the shared state from its first query.
        late = start_server(zones, ["--redis", redis_server.url, "--workers", "2", *STORE],
                            ["example.com."])
        assert dig(late) == {"192.0.2.11"}
        late.stop()

        explained = _gslb("explain", "www2.example.com", "--client", "192.0.2.1", "--zones",
                          str(zones), "--redis", redis_server.url, *STORE)
        assert explained.returncode == 0, explained.stderr
        assert re.search(r"state store redis://127.0.0.1:\d+/0: connected, epoch \d+", explained.stdout)
        # Each agent's verdict and age (on a loaded machine one may already be stale).
        assert re.search(r"192.0.2.10 .*DOWN \((quorum: 0/\d up|last known).*(eu-1|us-1) DOWN "
                         r"\d+\.\d s ago", explained.stdout), explained.stdout

        # An override with an expiry: takes effect on every node, reverts by itself.
        earliest = time.time() + 3
        done = _gslb("override", "set", "192.0.2.10", "up", "--for", "3s", "--redis", redis_server.url)
        assert done.returncode == 0, done.stderr
        latest = time.time() + 3
        for node in nodes:
            assert wait_until(lambda: dig(node) == BOTH, timeout=1.5)
        listed = _gslb("override", "list", "--redis", redis_server.url)
        assert listed.stdout.startswith("192.0.2.10 up until ")
        while time.time() < earliest - 0.3:  # in force until it expires ...
            assert [dig(node) for node in nodes] == [BOTH] * 2
            time.sleep(0.1)
        for node in nodes:  # ... then reverts by itself, on every node, within a second
            assert wait_until(lambda: dig(node) == {"192.0.2.11"}, timeout=latest - time.time() + 1)

        backends[0] = Backend(backends[0].port).start()
        for node in nodes:
            assert wait_until(lambda: dig(node) == BOTH, timeout=UP_BOUND + 1)
        assert all(node.proc is not None and node.proc.poll() is None for node in nodes)
    finally:
        for agent in agents:
            agent.stop()
        for backend in backends:
            backend.stop()


def test_rtt_ingestion_feeds_latency_after_the_minimum_samples(tmp_path: Path, start_server,
                                                               redis_server: RedisProcess) -> None:
    backends = [Backend().start(), Backend().start()]
    try:
        zones = _setup(tmp_path, backends)
        node = start_server(zones, ["--redis", redis_server.url, "--workers", "1", *STORE,
                                    "--rtt-min-samples", "3"], ["example.com."])
        assert dig(node, "lat.example.com") == {"192.0.2.40"}  # no figures: first member
        pushed = _gslb("rtt", "--redis", redis_server.url, "10.0.0.0/8", "us-east", "80",
                       "10.0.0.0/8", "eu-west", "10")
        assert pushed.returncode == 0 and "2 accepted" in pushed.stdout, pushed.stderr
        time.sleep(1)
        assert dig(node, "lat.example.com", "+subnet=10.1.2.0/24") == {"192.0.2.40"}  # 1 sample
        pushed = _gslb("rtt", "--redis", redis_server.url, *["10.0.0.0/8", "us-east", "82",
                       "10.0.0.0/8", "eu-west", "11"] * 2)
        assert "4 accepted" in pushed.stdout
        assert wait_until(lambda: dig(node, "lat.example.com", "+subnet=10.1.2.0/24") == {"192.0.2.41"},
                          timeout=1.5)
        limited = _gslb("rtt", "--redis", redis_server.url, "--limit", "2",
                        *["EU", "eu-west", "5"] * 5)
        assert "2 accepted, 3 rate-limited" in limited.stdout
        refused = _gslb("rtt", "--redis", redis_server.url, "10.0.0.1/8", "us-east", "5")
        assert refused.returncode == 1 and "has host bits set" in refused.stderr
    finally:
        for backend in backends:
            backend.stop()


def test_redis_outage_under_load_loses_nothing_and_resyncs(tmp_path: Path, start_server) -> None:
    dnsperf = require("dnsperf", "dnsperf")
    backends = [Backend().start(), Backend().start()]
    store = RedisProcess(tmp_path / "redis").start()
    agent = Checker(_setup(tmp_path, backends), store.url, "eu-1", tmp_path)
    try:
        zones = tmp_path / "zones"
        agent.start()
        node = start_server(zones, ["--redis", store.url, "--workers", "2", *STORE], ["example.com."])
        assert wait_until(lambda: dig(node) == BOTH, timeout=5)
        queries = tmp_path / "queries.txt"
        queries.write_text("www2.example.com A\nwww.example.com A\nexample.com SOA\n")
        load = subprocess.Popen([dnsperf, "-s", "127.0.0.1", "-p", str(node.port), "-d", str(queries),
                                 "-l", "6", "-Q", "1500", "-t", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1)
        store.stop()  # Redis gone for about three seconds, under load
        time.sleep(0.5)
        backends[1].stop()  # a change during the outage: the agent sees it, cannot write it
        time.sleep(2.5)
        assert dig(node) == BOTH  # fail-static: the last known state, no failure
        store = RedisProcess(tmp_path / "redis", port=store.port).start()
        output, _ = load.communicate(timeout=30)
        lost = re.search(r"Queries lost:\s+(\d+)", output)
        completed = re.search(r"Queries completed:\s+(\d+)", output)
        assert lost and completed, output
        print(f"dnsperf during the Redis outage: {completed.group(0)}, {lost.group(0)}")
        assert int(lost.group(1)) == 0, output
        assert int(completed.group(1)) > 3000, output
        assert "SERVFAIL" not in output, output
        # Back: the agent writes what it saw meanwhile, the node resyncs and applies it.
        assert wait_until(lambda: dig(node) == {"192.0.2.10"}, timeout=5)
        log = node.log()
        assert log.count("unreachable") == 1, log  # logged once, not per query or retry
        assert "reachable again" in log
    finally:
        agent.stop()
        store.stop()
        for backend in backends:
            backend.stop()
