"""The operator's first hour against a real `gslb serve --api`, as the docs show it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_api import answers, seen_within
from tests.e2e.test_api_redis import ApiProcess
from tests.redis_server import RedisProcess
from tests.servers import (DEMO_ZONES, IDLE_API_TIMEOUT, ROOT, GslbProcess, admin_token, free_port,
                           wait_until)


def test_the_make_run_shape_takes_overrides_and_shows_its_status(tmp_path: Path,
                                                                 udp_path: str) -> None:
    """`make run`'s shape (--api, no --state, no --redis) keeps overrides in the zones
    folder's own state file: PUT /v1/overrides takes a member out of the answers. And
    `gslb status` reads the node through the API port with a token."""
    if udp_path != "native":
        pytest.skip("path-independent: run once")
    zones = tmp_path / "zones"
    shutil.copytree(DEMO_ZONES, zones)
    port = free_port()
    node = GslbProcess(zones, ["--api", f"127.0.0.1:{port}", "--workers", "1",
                               "--prewarm", "0"]).start(ready_zones=["example.com."])
    try:
        token = subprocess.run([sys.executable, "-m", "gslb.cli", "token", "create", "--zones",
                                str(zones), "--name", "ops", "--role", "admin"],
                               capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=IDLE_API_TIMEOUT,
                              headers={"Authorization": f"Bearer {token}"})
        assert client.get("/v1/overrides").json() == []
        down = client.put("/v1/overrides/192.0.2.10", json={"mode": "down", "seconds": 300,
                                                            "reason": "maintenance"})
        assert down.status_code == 200, down.text
        assert seen_within(node, "www2.example.com", {"192.0.2.11"}) < 2
        assert (zones / ".gslb" / "state.yaml").stat().st_mode & 0o777 == 0o600
        assert client.delete("/v1/overrides/192.0.2.10").status_code == 204
        # weighted 3:1 again: .10 comes back among the answers of fresh source ports
        assert wait_until(lambda: "192.0.2.10" in answers(node, "www2.example.com", 16), 3)
        shown = subprocess.run([sys.executable, "-m", "gslb.cli", "status", "--metrics",
                                f"127.0.0.1:{port}", "--token", token], capture_output=True,
                               text=True, cwd=ROOT, timeout=30)
        assert shown.returncode == 0 and "1 node(s)" in shown.stdout, shown.stdout + shown.stderr
    finally:
        node.stop()


def test_gslb_api_answers_503_while_redis_is_down(tmp_path: Path, udp_path: str,
                                                 redis_server: RedisProcess) -> None:
    if udp_path != "native":
        pytest.skip("path-independent: run once")
    api = ApiProcess(redis_server.url, free_port(), tmp_path, ["--import", str(DEMO_ZONES)])
    try:
        token = admin_token(redis_server.url)
        client = httpx.Client(base_url=f"http://127.0.0.1:{api.port}", timeout=IDLE_API_TIMEOUT,
                              headers={"Authorization": f"Bearer {token}"})
        assert client.get("/v1/zones").status_code == 200
        redis_server.stop()
        for _ in range(3):
            reply = client.get("/v1/zones")
            assert reply.status_code == 503, reply.text
            assert reply.headers["content-type"].startswith("application/problem+json")
            assert reply.headers["retry-after"] == "5" and "Redis" in reply.json()["detail"]
        log = api.log()
        assert log.count("Redis unreachable") == 1 and "Traceback" not in log, log
    finally:
        api.stop()
