"""A real `redis-server` on a free loopback port, started by a test and stopped by PID.

Under CI (`CI=true`) a Redis that cannot start fails the test instead of skipping it:
CI must prove the Redis paths, a developer machine without Redis may skip them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.servers import ManagedProcess, free_port, stop_process


def require(command: str, package: str) -> str:
    """The path of `command`; a skip (a failure under CI=true) when it is missing."""
    path = shutil.which(command)
    if path is None:
        message = f"{command} (Debian package {package}) not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " and CI=true", pytrace=False)
        pytest.skip(message)
    return path


class RedisProcess(ManagedProcess):
    """One redis-server with its data in `directory`; `url` is what gslb is given."""

    def __init__(self, directory: Path, port: int | None = None,
                 extra: list[str] | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.extra = extra or []
        self.log_path = directory / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisProcess":
        server = require("redis-server", "redis-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--save", "", "--appendonly", "no", "--daemonize", "no", *self.extra],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.ping():
                return self
            time.sleep(0.05)
        stop_process(self.proc)
        message = f"redis-server did not start on port {self.port}:\n{self.log()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.3) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A fresh, empty Redis for one test."""
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.stop()
