"""High availability: Redis primary + replica + a real redis-sentinel. The primary is
killed; Sentinel promotes the replica; the checker agent and the DNS node, both given a
`redis+sentinel://` URL, follow the new primary: answers never fail, and a backend that
dies after the failover still reaches the node's answers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from tests.e2e.test_health import Backend, dig
from tests.e2e.test_shared_state import BOTH, STORE, Checker, _setup
from tests.redis_server import RedisProcess, require
from tests.servers import ManagedProcess, free_port, wait_until

SERVICE = "gslbtest"


class Sentinel(ManagedProcess):
    def __init__(self, directory: Path, primary_port: int) -> None:
        self.port = free_port()
        self.config = directory / f"sentinel-{self.port}.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n")
        self.log_path = directory / f"sentinel-{self.port}.log"

    def start(self) -> "Sentinel":
        command = require("redis-sentinel", "redis-sentinel")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([command, str(self.config)], stdout=self._log,
                                     stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        assert wait_until(lambda: _ask(lambda: client.ping()), timeout=10), self.log()
        return self

    def primary(self) -> int | None:
        client = redis.Redis(port=self.port, socket_timeout=0.5, decode_responses=True)
        found = _ask(lambda: client.sentinel_get_master_addr_by_name(SERVICE))
        return int(found[1]) if found else None


def _ask(call):  # type: ignore[no-untyped-def]
    try:
        return call()
    except (redis.RedisError, OSError):
        return None


def test_a_sentinel_failover_keeps_agents_and_nodes_working(tmp_path: Path, start_server) -> None:
    primary = RedisProcess(tmp_path / "primary").start()
    replica = RedisProcess(tmp_path / "replica", extra=["--replicaof", "127.0.0.1", str(primary.port)]).start()
    sentinel = Sentinel(tmp_path, primary.port).start()
    backends = [Backend().start(), Backend().start()]
    url = f"redis+sentinel://127.0.0.1:{sentinel.port}/{SERVICE}"
    agent = Checker(_setup(tmp_path, backends), url, "eu-1", tmp_path)
    try:
        replicated = redis.Redis(port=replica.port, decode_responses=True)
        assert wait_until(lambda: _ask(lambda: replicated.info("replication")["master_link_status"]) == "up",
                          timeout=10)
        agent.start()
        node = start_server(tmp_path / "zones", ["--redis", url, "--workers", "2", *STORE],
                            ["example.com."])
        assert wait_until(lambda: dig(node) == BOTH, timeout=5)
        assert wait_until(lambda: _ask(lambda: replicated.hlen("gslb:verdicts")) == 2, timeout=5)

        primary.stop()
        deadline = time.monotonic() + 20
        while sentinel.primary() != replica.port and time.monotonic() < deadline:
            # Answers never fail meanwhile (a probe with a 0.4 s timeout may flap on a
            # loaded machine, so any non-empty answer from the pool counts).
            answer = dig(node)
            assert answer and answer <= BOTH, answer
            time.sleep(0.2)
        assert sentinel.primary() == replica.port, sentinel.log()

        backends[0].stop()  # a change after the failover travels through the new primary
        # Within the reconnect backoff (at most 5 s) of both, plus fall x interval.
        assert wait_until(lambda: dig(node) == {"192.0.2.11"}, timeout=15), \
            f"node:\n{node.log()}\nagent:\n{agent.log()}\nsentinel:\n{sentinel.log()}"
        assert "web@127.0.0.1|eu-1" in (replicated.hkeys("gslb:verdicts") or [])
        assert '"up": false' in (replicated.hget("gslb:verdicts", "web@127.0.0.1|eu-1") or "")
    finally:
        agent.stop()
        sentinel.stop()
        replica.stop()
        primary.stop()
        for backend in backends:
            backend.stop()
