"""Live health end to end: the embedded checker probes real HTTP and TCP backends on
loopback, and `dig` sees members leave and come back within the issue's bounds
(interval x fall + 1 s, interval x rise + 1 s), with one process and with two workers,
without a reload: the same worker PIDs, the same open TCP connection, static answers
still cached. The state file is watched (no SIGHUP) and carries overrides with expiry.
"""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import dns.message
import dns.query
import httpx
import pytest

from tests.servers import IDLE_API_TIMEOUT, GslbProcess, copy_demo_zones, free_port, wait_until

INTERVAL, FALL, RISE = 0.5, 2, 2
DOWN_BOUND = INTERVAL * FALL + 1.0
UP_BOUND = INTERVAL * RISE + 1.0


class Backend:
    """A real HTTP server on a fixed loopback port that can die and come back."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.server: http.server.ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> "Backend":
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"ok\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class TcpBackend:
    """A real TCP listener (accepts and closes)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


STEERING = """\
checks:
  web:
    type: http
    port: {http_port}
    path: /health
    body: ok
    interval: {interval}
    timeout: 0.4
    rise: {rise}
    fall: {fall}
    jitter: 0
  db: {{type: tcp, port: {tcp_port}, interval: {interval}, timeout: 0.4, rise: {rise}, fall: {fall}}}
records:
  www2:
    type: A
    ttl: 5
    pools:
      web:
        members:
          - {{value: 192.0.2.10, check: web, probe: 127.0.0.1}}
          - {{value: 192.0.2.11, check: db, probe: 127.0.0.1}}
    rules: [{{pool: web}}]
    select: 2
"""


@pytest.fixture
def backends() -> Iterator[tuple[Backend, TcpBackend]]:
    web, db = Backend().start(), TcpBackend()
    yield web, db
    web.stop()
    db.close()


def _zones(tmp_path: Path, web: Backend, db: TcpBackend) -> Path:
    zones = copy_demo_zones(tmp_path)
    (zones / "example.com.gslb.yaml").write_text(STEERING.format(
        http_port=web.port, tcp_port=db.port, interval=INTERVAL, rise=RISE, fall=FALL))
    return zones


def dig(server: GslbProcess, name: str = "www2.example.com", *extra: str) -> set[str]:
    out = subprocess.run(["dig", f"@{server.host}", "-p", str(server.port), "+short", "+tries=1",
                          "+time=1", name, *extra], capture_output=True, text=True, timeout=5)
    return {line for line in out.stdout.split() if line and not line.startswith(";")}


def _time_until(server: GslbProcess, predicate, bound: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < bound + 2:
        if predicate(dig(server)):
            return time.monotonic() - started
        time.sleep(0.05)
    return float("inf")


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_dead_backend_leaves_and_returns_within_the_bounds(
        tmp_path: Path, start_server, backends, workers: str) -> None:
    web, db = backends
    server = start_server(_zones(tmp_path, web, db), ["--workers", workers], ["example.com."])
    assert wait_until(lambda: dig(server) == {"192.0.2.10", "192.0.2.11"}, timeout=5)
    static = dig(server, "www.example.com")
    assert "192.0.2.80" in static
    children = _children(server.pid)
    tcp = socket.create_connection((server.host, server.port))
    before = server.query("www.example.com", "A", tcp=True)

    web.stop()
    took = _time_until(server, lambda answer: answer == {"192.0.2.11"}, DOWN_BOUND)
    assert took <= DOWN_BOUND, f"the dead member left after {took:.2f} s"
    for _ in range(10):  # after the bound, no answer names the dead member
        assert dig(server) == {"192.0.2.11"}
        time.sleep(0.1)

    web = Backend(web.port).start()
    try:
        took = _time_until(server, lambda answer: answer == {"192.0.2.10", "192.0.2.11"}, UP_BOUND)
        assert took <= UP_BOUND, f"the member came back after {took:.2f} s"
    finally:
        web.stop()

    # No reload happened: the same workers, and the TCP connection opened before still answers.
    assert _children(server.pid) == children
    query = dns.message.make_query("www.example.com", "A")
    dns.query.send_tcp(tcp, query)
    reply, _ = dns.query.receive_tcp(tcp, expiration=time.time() + 2)
    assert reply.answer == before.answer
    tcp.close()
    assert "reload" not in server.log()


def test_tcp_check_and_all_down_fail_open(tmp_path: Path, start_server, backends) -> None:
    web, db = backends
    server = start_server(_zones(tmp_path, web, db), ["--workers", "1"], ["example.com."])
    assert wait_until(lambda: dig(server) == {"192.0.2.10", "192.0.2.11"}, timeout=5)
    db.close()
    assert wait_until(lambda: dig(server) == {"192.0.2.10"}, timeout=DOWN_BOUND)
    web.stop()  # every member down: all_down fail_open answers them all
    assert wait_until(lambda: "web@127.0.0.1 is DOWN" in server.log(), timeout=DOWN_BOUND)
    assert wait_until(lambda: dig(server) == {"192.0.2.10", "192.0.2.11"}, timeout=1.0)


def test_state_file_applies_live_with_overrides_that_expire(tmp_path: Path, start_server) -> None:
    zones = copy_demo_zones(tmp_path)
    for path in Path(__file__).resolve().parents[2].joinpath("zones").glob("*.gslb.yaml"):
        (zones / path.name).write_text(path.read_text())
    state = tmp_path / "state.yaml"
    state.write_text("health: {api-primary: up}\n")
    server = start_server(zones, ["--workers", "2", "--state", str(state)], ["example.com."])
    assert dig(server, "api.example.com") == {"192.0.2.20"}
    pid_before = _children(server.pid)

    started = time.monotonic()
    state.write_text("health: {api-primary: down}\n")  # no SIGHUP
    assert wait_until(lambda: dig(server, "api.example.com") == {"192.0.2.21"}, timeout=2)
    assert time.monotonic() - started < 1.5

    until = time.time() + 2.0
    state.write_text("health: {api-primary: down}\n"
                     f"overrides: {{192.0.2.21: {{mode: down, until: {until}}}}}\n")
    assert wait_until(lambda: dig(server, "api.example.com") == {"198.51.100.20"}, timeout=1.5)
    # The override expires on its own: the secondary comes back without any edit.
    assert wait_until(lambda: dig(server, "api.example.com") == {"192.0.2.21"}, timeout=3)
    assert time.time() >= until - 0.05
    assert _children(server.pid) == pid_before
    os.kill(server.pid, 0)


def test_the_demo_shows_a_member_down(start_server) -> None:
    """`make run`'s zones: checked.example.com has a member probed where nothing listens."""
    zones = Path(__file__).resolve().parents[2] / "zones"
    server = start_server(zones, ["--workers", "1"], ["example.com."])
    assert wait_until(lambda: dig(server, "checked.example.com") == {"192.0.2.50"}, timeout=5)
    assert "demo-dead@127.0.0.1 is DOWN" in server.log()
    explained = subprocess.run(
        [sys.executable, "-m", "gslb.cli", "explain", "checked.example.com", "--client", "127.0.0.1",
         "--zones", str(zones)], capture_output=True, text=True, timeout=30)
    assert explained.returncode == 0, explained.stderr
    assert "192.0.2.51 weight 1 priority 1 enabled; check demo-dead@127.0.0.1: DOWN" in explained.stdout
    assert "result     noerror: 192.0.2.50" in explained.stdout


def test_the_api_shows_the_verdict_behind_each_state(tmp_path: Path, start_server) -> None:
    """GET /v1/health on `gslb serve --api --workers 2` (the state reaches the workers
    over their control channel): the demo's dead member is down, with the embedded
    checker's verdict, its age and why the probe failed."""
    from tests.e2e.test_api import make_token

    zones = tmp_path / "zones"
    shutil.copytree(Path(__file__).resolve().parents[2] / "zones", zones)
    token = make_token(zones, "read")
    api_port = free_port()
    server = start_server(zones, ["--workers", "2", "--api", f"127.0.0.1:{api_port}"],
                          ["example.com."])
    url = f"http://127.0.0.1:{api_port}/v1/health"

    def dead() -> dict:
        reply = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=IDLE_API_TIMEOUT)
        assert reply.status_code == 200, reply.text
        return {s["check"]: s for s in reply.json()}.get("demo-dead@127.0.0.1", {})

    assert wait_until(lambda: dead().get("up") is False, timeout=5), dead()
    (verdict,) = dead()["agents"]
    assert verdict["agent"] == "local" and verdict["up"] is False and verdict["fresh"] is True
    assert 0 <= verdict["age"] < 5 and "refused" in verdict["detail"].lower(), verdict
    assert httpx.get(url, timeout=IDLE_API_TIMEOUT).status_code == 401
    assert server.proc is not None and server.proc.poll() is None


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_reload_changes_what_is_probed(tmp_path: Path, start_server, backends, workers: str) -> None:
    """SIGHUP with a new check: the running checker (the state process, with workers)
    starts probing it; its verdict reaches the answers of the new generation."""
    web, db = backends
    zones = _zones(tmp_path, web, db)
    server = start_server(zones, ["--workers", workers], ["example.com."])
    assert wait_until(lambda: dig(server) == {"192.0.2.10", "192.0.2.11"}, timeout=5)
    steering = zones / "example.com.gslb.yaml"
    dead = TcpBackend()
    dead.close()  # a port nothing listens on any more
    steering.write_text(steering.read_text().replace(
        "  db: {", f"  gone: {{type: tcp, port: {dead.port}, interval: 0.5, timeout: 0.4}}\n  db: {{").replace(
        "check: db, probe", "check: gone, probe"))
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: dig(server) == {"192.0.2.10"}, timeout=DOWN_BOUND + 3), server.log()
    assert "gone@127.0.0.1 is DOWN" in server.log()
