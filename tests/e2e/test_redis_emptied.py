"""A Redis that loses the configuration of record (FLUSHALL, or a new empty Redis at the
same address) while `gslb serve --redis` nodes run, one process and with workers: every
node keeps answering from the configuration it has, says once that the store holds none
(naming Redis without its password), stays idle instead of reloading in a loop, and loads
the next `gslb api --import` whole."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from tests.e2e.test_api_redis import ApiProcess
from tests.redis_server import RedisProcess
from tests.servers import GslbProcess, copy_demo_zones, free_port, wait_until

PASSWORD = "s3cret-pass"
QUIET = 3.0  # seconds watched after the FLUSHALL
NAME = "marker.example.com"


def _zones(directory: Path, address: str) -> Path:
    """The demo zones with `marker.example.com` answering `address`."""
    directory.mkdir()
    zones = copy_demo_zones(directory)
    with open(zones / "example.com.zone", "a") as zone:
        zone.write(f"marker IN A {address}\n")
    return zones


def _answer(node: GslbProcess) -> set[str]:
    """What eight queries of NAME answer (each from its own source port, so they reach
    every worker)."""
    return {r.to_text() for _ in range(8)
            for rrset in node.query(NAME, timeout=1).answer for r in rrset}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and every process below it (workers, the state
    process)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _cpu_seconds(int(child))
    except (OSError, IndexError, ValueError):
        pass  # it exited meanwhile
    return total


def test_an_emptied_redis_leaves_nodes_serving_until_the_next_import(
        tmp_path: Path, udp_path: str, redis_server: RedisProcess) -> None:
    if udp_path != "native":
        pytest.skip("path-independent: run once")
    redis.Redis(port=redis_server.port).config_set("requirepass", PASSWORD)
    admin = redis.Redis(port=redis_server.port, password=PASSWORD)
    url = f"redis://:{PASSWORD}@127.0.0.1:{redis_server.port}/0"
    shown = f"redis://127.0.0.1:{redis_server.port}/0"
    api = ApiProcess(url, free_port(), tmp_path, ["--import", str(_zones(tmp_path / "a", "192.0.2.201"))])
    api.stop()
    empty = tmp_path / "empty"
    empty.mkdir()
    nodes = [GslbProcess(empty, ["--redis", url, "--workers", workers, "--prewarm", "0"])
             for workers in ("1", "2")]
    try:
        with ThreadPoolExecutor(len(nodes)) as pool:
            list(pool.map(lambda node: node.start(ready_zones=["example.com."]), nodes))
        for node in nodes:
            assert _answer(node) == {"192.0.2.201"}, node.log()
        logged = [len(node.log().splitlines()) for node in nodes]
        cpu = [_cpu_seconds(node.pid) for node in nodes]

        admin.flushall()
        deadline = time.monotonic() + QUIET
        while time.monotonic() < deadline:  # DNS answers never stop
            for node in nodes:
                assert _answer(node) == {"192.0.2.201"}
            time.sleep(0.2)
        for node, before, used in zip(nodes, logged, cpu):
            lines = node.log().splitlines()[before:]
            assert len(lines) <= 2, "\n".join(lines[:20]) + f"\n... {len(lines)} lines"
            assert any("holds no configuration" in line and shown in line for line in lines), lines
            assert PASSWORD not in node.log()
            spent = _cpu_seconds(node.pid) - used
            assert spent < 0.5, f"{spent:.2f} s of CPU in {QUIET} s with nothing to do"

        # the next import is loaded whole, and said so
        api = ApiProcess(url, free_port(), tmp_path, ["--import", str(_zones(tmp_path / "b", "192.0.2.202"))])
        for node in nodes:
            assert wait_until(lambda: _answer(node) == {"192.0.2.202"}, timeout=5), node.log()
            assert "holds a configuration again (version 1)" in node.log()
    finally:
        for process in [*nodes, api]:
            process.stop()
