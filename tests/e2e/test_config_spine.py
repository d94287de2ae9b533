"""One configuration spine, all real: Redis, `gslb api --redis --import`, two DNS nodes
(one with two workers) and two `gslb checker` agents all started BEFORE the import, real
HTTP backends, dig. Every reader takes the configuration of record from the same place;
a check added through the API is probed by the agents; a weight set to 0 reads the same
in `gslb explain --redis`, `/v1/explain` and dig on both nodes; `gslb status` shows one
configuration version. Plus read-your-writes on `gslb serve --api --workers 2`, and
workers that never read the store."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from gslb.observability.heartbeat import NODES, parse_beats
from tests.e2e.test_api import answers, seen_within
from tests.e2e.test_api_redis import ApiProcess
from tests.e2e.test_health import Backend
from tests.e2e.test_shared_state import STEERING as SHARED_STEERING
from tests.e2e.test_shared_state import Checker
from tests.redis_server import RedisProcess, require
from tests.servers import (IDLE_API_TIMEOUT, ROOT, GslbProcess, admin_token, copy_demo_zones,
                           free_port, wait_until)

INTERVAL, FALL = 0.5, 2
# the shared-state test's steering (www2: two members with checks on live backends, select
# 2), plus a check on a port where nothing listens, and a weighted record
STEERING = SHARED_STEERING.replace("records:\n", (
    "  dead: {{type: http, port: {port_dead}, interval: 0.5, timeout: 0.4, rise: 2, fall: 2, "
    "jitter: 0}}\nrecords:\n")) + """\
  wtd:
    type: A
    pools:
      p:
        members:
          - {{value: 192.0.2.20, weight: 1}}
          - {{value: 192.0.2.21, weight: 1}}
    rules: [{{pool: p}}]
"""
BOTH = {"192.0.2.10", "192.0.2.11"}
STORE = ["--verdict-expiry", "3", "--resync", "0.5", "--heartbeat", "0.5", "--prewarm", "0"]


def _gslb(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gslb.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=30)


def _demo_copy(directory: Path) -> Path:
    directory.mkdir()
    return copy_demo_zones(directory)


def _beats(url: str) -> dict[str, dict]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return {beat["node"]: beat for beat in parse_beats(client.hgetall(NODES).values())}
    finally:
        client.close()


def test_the_distributed_shape_follows_one_configuration(tmp_path: Path,
                                                         redis_server: RedisProcess) -> None:
    require("dig", "bind9-dnsutils")
    backends = [Backend().start(), Backend().start()]
    dead_port = free_port()  # nothing listens there
    folder = _demo_copy(tmp_path / "node")  # what the nodes serve until the import
    imported = _demo_copy(tmp_path / "import")
    (imported / "example.com.gslb.yaml").write_text(STEERING.format(
        port_a=backends[0].port, port_b=backends[1].port, port_dead=dead_port))
    url = redis_server.url
    nodes: list[GslbProcess] = []
    agents: list[Checker] = []
    api = None
    try:
        for workers in (1, 2):
            nodes.append(GslbProcess(folder, ["--redis", url, "--workers", str(workers),
                                              "--identity", f"node{workers}", *STORE]
                                     ).start(ready_zones=["example.com."]))
        agents = [Checker(folder, url, name, tmp_path).start() for name in ("eu-1", "us-1")]
        assert answers(nodes[0], "wtd.example.com") == set()  # the demo folder has no wtd
        api = ApiProcess(url, free_port(), tmp_path, ["--import", str(imported)])
        # the nodes switch to Redis once the import lands, and say so
        for node in nodes:
            assert seen_within(node, "wtd.example.com", {"192.0.2.20", "192.0.2.21"}) < 5, node.log()
            assert "configuration source: Redis" in node.log()
        assert wait_until(lambda: all("configuration: redis" in a.log_path.read_text()
                                      for a in agents), timeout=5)
        client = httpx.Client(base_url=f"http://127.0.0.1:{api.port}", timeout=IDLE_API_TIMEOUT,
                              headers={"Authorization": f"Bearer {admin_token(url)}"})
        for node in nodes:
            assert seen_within(node, "www2.example.com", BOTH) < 5

        # a member added through the API with a check on a dead backend: the agents probe
        # it from this version on and it leaves both nodes' answers
        added = client.post("/v1/zones/example.com/steered/www2/A/pools/web/members",
                            json={"value": "192.0.2.12", "check": "dead", "probe": "127.0.0.1"})
        replied = time.monotonic()
        assert added.status_code == 200, added.text
        for node in nodes:
            seen_within(node, "www2.example.com", BOTH)
        assert time.monotonic() - replied < INTERVAL * FALL + 1.0
        assert all(answers(node, "www2.example.com", 16) == BOTH for node in nodes)

        # before: the weighted draw picks 192.0.2.21 for some slots
        picked = {client.get("/v1/explain", params={"name": "wtd.example.com", "client":
                                                     "198.51.100.7", "draw": draw}).json()["values"][0]
                  for draw in range(0, 64, 4)}
        assert picked == {"192.0.2.20", "192.0.2.21"}
        # a weight set to 0, with ?wait: every node serves it when the reply comes
        patched = client.patch("/v1/zones/example.com/steered/wtd/A/members/192.0.2.21",
                               params={"wait": 5}, json={"weight": 0})
        assert patched.status_code == 200 and patched.json()["behind"] == [], patched.text
        version = patched.json()["version"]
        for node in nodes:
            assert answers(node, "wtd.example.com", 16) == {"192.0.2.20"}
        for draw in range(64):
            explained = client.get("/v1/explain", params={"name": "wtd.example.com",
                                                          "client": "198.51.100.7", "draw": draw})
            assert explained.json()["values"] == ["192.0.2.20"], explained.text
        for draw in (0, 33, 63):
            cli = _gslb("explain", "wtd.example.com", "A", "--client", "198.51.100.7", "--draw",
                        str(draw), "--zones", str(folder), "--redis", url)
            assert cli.returncode == 0, cli.stderr
            assert f"configuration: Redis, version {version}" in cli.stdout
            assert "192.0.2.21" in cli.stdout and "weight 0" in cli.stdout.replace("=", " ")
            answer = cli.stdout.split("DNS answer")[1]
            assert "192.0.2.20" in answer and "192.0.2.21" not in answer
        # /v1/explain shows the agents' quorum, as the nodes use it
        states = {s["check"]: s for s in client.get("/v1/health").json()}
        assert any(key.startswith("dead@") and not s["up"] for key, s in states.items()), states

        # every node reports the same configuration version, from Redis
        assert wait_until(lambda: {b["config_version"] for b in _beats(url).values()} == {version},
                          timeout=5), _beats(url)
        status = _gslb("status", "--redis", url)
        for name in ("node1", "node2"):
            line = next(row for row in status.stdout.splitlines() if row.startswith(name))
            assert f"v{version} redis" in line, status.stdout
    finally:
        for process in [*agents, *nodes, *([api] if api else [])]:
            process.stop()
        for backend in backends:
            backend.stop()


def test_workers_never_read_the_store(tmp_path: Path, redis_server: RedisProcess) -> None:
    """Quiet, a node with two workers reads Redis's configuration head about once a
    second (its one follower); a worker polling it would add ten reads a second each."""
    api = ApiProcess(redis_server.url, free_port(), tmp_path,
                     ["--import", str(copy_demo_zones(tmp_path))])
    api.stop()  # the API's own follower reads the head too: measure the node alone
    node = GslbProcess(tmp_path / "zones", ["--redis", redis_server.url, "--workers", "2",
                                            "--prewarm", "0"]).start(ready_zones=["example.com."])
    try:
        client = redis.Redis(port=redis_server.port, decode_responses=True)
        time.sleep(1.5)
        client.config_resetstat()
        time.sleep(4)
        stats = client.info("commandstats")
        reads = stats.get("cmdstat_get", {}).get("calls", 0)
        assert reads <= 8, stats  # about 4 (one a second), not 80+
    finally:
        node.stop()


def test_a_write_answers_once_every_worker_serves_it(tmp_path: Path) -> None:
    zones = copy_demo_zones(tmp_path)
    port = free_port()
    node = GslbProcess(zones, ["--api", f"127.0.0.1:{port}", "--workers", "2",
                               "--prewarm", "0"]).start(ready_zones=["example.com."])
    try:
        token = _gslb("token", "create", "--zones", str(zones), "--name", "ops",
                      "--role", "admin").stdout.strip()
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=IDLE_API_TIMEOUT,
                              headers={"Authorization": f"Bearer {token}"})
        for n in range(1, 7):
            put = client.put(f"/v1/zones/example.com/rrsets/t{n}/A",
                             json={"ttl": 30, "rdata": [f"192.0.2.{n}"]})
            assert put.status_code == 200 and put.json()["behind"] == [], put.text
            # each query from a fresh source port: the kernel spreads them over both workers
            for _ in range(16):
                reply = node.query(f"t{n}.example.com")
                got = {r.to_text() for rrset in reply.answer for r in rrset}
                assert got == {f"192.0.2.{n}"}, (n, reply.rcode(), got)
    finally:
        node.stop()
