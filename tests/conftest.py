"""Shared fixtures: real `gslb serve` processes on ephemeral loopback ports."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.redis_server import redis_server  # noqa: F401  (a fixture for every test)
from tests.servers import DEMO_ZONES, GslbProcess

DEMO_ZONE_NAMES = ["example.com.", "sub.example.com.", "example.net."]


@pytest.fixture(scope="session")
def demo_server() -> Iterator[GslbProcess]:
    """The demo zones, as `make run` serves them, with NSID and CH identity set."""
    server = GslbProcess(DEMO_ZONES, ["--nsid", "gslb-test", "--identity", "ns-test",
                                      "--version-string", "gslb-test-version"])
    server.start(DEMO_ZONE_NAMES)
    yield server
    server.stop()


@pytest.fixture
def start_server() -> Iterator[Callable[..., GslbProcess]]:
    """Start a server on a custom zones folder; every one started is stopped after the test."""
    started: list[GslbProcess] = []

    def start(zones: Path, extra: list[str] | None = None,
              ready_zones: list[str] | None = None) -> GslbProcess:
        server = GslbProcess(zones, extra)
        started.append(server)
        return server.start(ready_zones)

    yield start
    for server in started:
        server.stop()
