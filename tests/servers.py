"""Start real `gslb serve` processes on free loopback ports, and stop them by PID."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Callable

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

ROOT = Path(__file__).resolve().parent.parent
DEMO_ZONES = ROOT / "zones"


# Ports handed to test servers come from below the kernel's ephemeral range (32768 and
# up on Linux), so no socket bound to port 0 or connecting out can take one between
# free_port() and the server's bind; each pytest-xdist worker has its own slice, and a
# process never hands out the same port twice until its slice wraps.
PORT_FIRST, PORT_LAST = 20000, 32000


def _port_slice() -> range:
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").lstrip("gw") or 0) % count
    size = (PORT_LAST - PORT_FIRST) // count
    return range(PORT_FIRST + index * size, PORT_FIRST + (index + 1) * size)


_ports = _port_slice()
_next_port = [random.randrange(len(_ports))]


# The API process of `gslb serve --api` runs under SCHED_IDLE: on a machine busy with
# other tests (CI's two cores, three xdist workers) a request may wait seconds for CPU.
IDLE_API_TIMEOUT = 60.0


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1, from this process's slice."""
    for _ in range(len(_ports)):
        port = _ports[_next_port[0] % len(_ports)]
        _next_port[0] += 1
        if _bindable(port):
            return port
    raise RuntimeError("no free port found")


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class ManagedProcess:
    """A server subprocess the tests start: its log file, and a stop by PID."""

    proc: subprocess.Popen | None = None
    log_path: Path
    _log: IO[str]

    def log(self) -> str:
        try:
            return self.log_path.read_text()
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM by PID, then SIGKILL if it does not go; the exit code."""
        if self.proc is None:
            return None
        code = stop_process(self.proc)
        self._log.close()
        return code


class GslbProcess(ManagedProcess):
    """One `gslb serve` subprocess; ready once it answers SOA for every given zone."""

    def __init__(self, zones: Path, extra: list[str] | None = None, port: int | None = None):
        self.zones = zones
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"gslb-test-{self.port}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, ready_zones: list[str] | None = None, timeout: float = 15.0) -> "GslbProcess":
        cmd = [
            sys.executable, "-m", "gslb.cli", "serve",
            "--zones", str(self.zones), "--listen", f"{self.host}:{self.port}", *self.extra,
        ]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        names = ready_zones if ready_zones is not None else []
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gslb exited with {self.proc.returncode}:\n{self.log()}")
            ready = self._answers_soa(names) if names else self._listening()
            if ready:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gslb did not become ready:\n{self.log()}")

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def _answers_soa(self, names: list[str]) -> bool:
        for name in names:
            try:
                reply = self.query(name, "SOA", timeout=0.3)
            except Exception:
                return False
            if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
                return False
        return True

    def query(self, name: str, rdtype: str = "A", tcp: bool = False, timeout: float = 2.0,
              **make_kw) -> dns.message.Message:
        message = dns.message.make_query(name, rdtype, **make_kw)
        message.flags &= ~0x0100  # authoritative servers get no RD from us
        send = dns.query.tcp if tcp else dns.query.udp
        return send(message, self.host, port=self.port, timeout=timeout)

    def send_raw_udp(self, data: bytes, timeout: float = 1.0) -> bytes | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(data, (self.host, self.port))
            try:
                return sock.recv(65535)
            except socket.timeout:
                return None

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signum)



def stop_process(proc: subprocess.Popen) -> int | None:
    """SIGTERM by PID, then SIGKILL if it does not go; the exit code."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return proc.returncode


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def admin_token(redis_url: str) -> str:
    """A new admin token in the Redis store, made the documented way (`gslb token create`)."""
    return subprocess.run([sys.executable, "-m", "gslb.cli", "token", "create", "--redis",
                           redis_url, "--name", "ops", "--role", "admin"],
                          capture_output=True, text=True, check=True, cwd=ROOT,
                          timeout=30).stdout.strip()


def copy_demo_zones(directory: Path) -> Path:
    """A private copy of the demo zone files in `directory`/zones, free to edit."""
    target = directory / "zones"
    target.mkdir()
    for path in DEMO_ZONES.glob("*.zone"):
        shutil.copy(path, target / path.name)
    return target


def http_status(url: str, method: str = "GET") -> int:
    """The HTTP status of a request (0 when nothing answers)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=2) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0
