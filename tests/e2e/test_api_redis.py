"""Distributed: `gslb api --redis` alone, two `gslb serve --redis` nodes (one with two
workers); a change through the API reaches every node within a second, with a real Redis.
A Redis that goes away stops changes, never answers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from tests.e2e.test_api import answers, seen_within
from tests.redis_server import RedisProcess, require
from tests.servers import (DEMO_ZONES, ROOT, GslbProcess, ManagedProcess, admin_token, free_port,
                           wait_until)

VISIBLE_WITHIN = 1.0


class ApiProcess(ManagedProcess):
    def __init__(self, redis_url: str, port: int, log_dir: Path, extra: list[str],
                 wait: bool = True) -> None:
        """`wait`: return once it answers /livez (with --import, after the import)."""
        self.port = port
        self.log_path = log_dir / f"gslb-api-{port}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gslb.cli", "api", "--redis", redis_url, "--listen",
             f"127.0.0.1:{port}", *extra], stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
        if wait and not wait_until(self._up, timeout=20):
            self.stop()
            raise RuntimeError(f"gslb api did not start:\n{self.log()}")

    def _up(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/livez", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False


def test_api_and_two_nodes_over_redis(redis_server: RedisProcess, tmp_path: Path) -> None:
    require("dig", "bind9-dnsutils")
    port = free_port()
    api = ApiProcess(redis_server.url, port, tmp_path, ["--import", str(DEMO_ZONES)])
    empty = tmp_path / "empty"
    empty.mkdir()
    nodes: list[GslbProcess] = []
    try:
        for workers in (1, 2):
            nodes.append(GslbProcess(empty, ["--redis", redis_server.url, "--workers", str(workers),
                                             "--prewarm", "0"]).start(ready_zones=["example.com."]))
        token = admin_token(redis_server.url)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5,
                              headers={"Authorization": f"Bearer {token}"})
        assert client.get("/v1/zones/nope/rrsets").status_code == 404
        put = client.put("/v1/zones/example.com/rrsets/spread/A", json={"ttl": 30, "rdata": ["192.0.2.88"]})
        assert put.status_code == 200, put.text
        for node in nodes:
            assert seen_within(node, "spread.example.com", {"192.0.2.88"}) < VISIBLE_WITHIN
        drain = client.post("/v1/datacenters/eu-west/drain")
        assert drain.status_code == 200, drain.text
        for node in nodes:
            assert seen_within(node, "geo.example.com", {"192.0.2.30"}) < VISIBLE_WITHIN
        # the drain is a change per record it drained, which every node wrote into its
        # steering; rolled back, each node answers as before and Redis holds the
        # imported steering file again, byte for byte
        assert sorted((c["kind"], c["name"]) for c in drain.json()["changes"]) == [
            ("rrset", "example.com."), ("steered", "api.example.com."),
            ("steered", "geo.example.com."), ("steered", "www2.example.com.")]
        rolled = client.post(f"/v1/versions/{drain.json()['version'] - 1}/rollback")
        assert rolled.status_code == 200, rolled.text
        for node in nodes:
            assert seen_within(node, "geo.example.com", {"192.0.2.30", "198.51.100.30"}) < VISIBLE_WITHIN
        store = redis.Redis(port=redis_server.port, decode_responses=True)
        assert store.get("gslb:config:steering:example.com.") == (
            DEMO_ZONES / "example.com.gslb.yaml").read_text()
        # a second API replica sees the same configuration and its writes reach the nodes
        second = ApiProcess(redis_server.url, free_port(), tmp_path, [])
        try:
            other = httpx.Client(base_url=f"http://127.0.0.1:{second.port}", timeout=5,
                                 headers={"Authorization": f"Bearer {token}"})
            tag = other.get("/v1/zones/example.com/rrsets/spread/A").headers["etag"]
            assert other.put("/v1/zones/example.com/rrsets/spread/A", headers={"If-Match": tag},
                             json={"ttl": 30, "rdata": ["192.0.2.89"]}).status_code == 200
            stale = client.put("/v1/zones/example.com/rrsets/spread/A", headers={"If-Match": tag},
                               json={"ttl": 30, "rdata": ["192.0.2.90"]})
            assert stale.status_code == 412
            for node in nodes:
                assert seen_within(node, "spread.example.com", {"192.0.2.89"}) < VISIBLE_WITHIN
        finally:
            second.stop()
        # /v1/health of `gslb api` reads the agents' verdicts from Redis: each agent's
        # verdict and age, and the quorum they make (one down of two fresh: still up).
        now = time.time()
        store.hset("gslb:verdicts", mapping={
            "web@192.0.2.99|eu-1": json.dumps({"up": False, "at": now - 1, "detail": "refused"}),
            "web@192.0.2.99|us-1": json.dumps({"up": True, "at": now - 0.5})})
        states = {s["check"]: s for s in client.get("/v1/health").json()}
        web = states["web@192.0.2.99"]
        assert web["up"] is True and web["source"].startswith("quorum"), web
        assert [(a["agent"], a["up"], a["fresh"], a["detail"]) for a in web["agents"]] == [
            ("us-1", True, True, ""), ("eu-1", False, True, "refused")]
        assert 0.5 <= web["agents"][1]["age"] < 5
        # Redis gone: the nodes keep answering what they have
        redis_server.stop()
        time.sleep(0.5)
        for node in nodes:
            assert answers(node, "spread.example.com", 3) == {"192.0.2.89"}
    finally:
        for node in nodes:
            node.stop()
        api.stop()
