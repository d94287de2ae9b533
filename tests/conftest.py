"""Shared fixtures: real `gslb serve` processes on ephemeral loopback ports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.redis_server import redis_server  # noqa: F401  (a fixture for every test)
from tests.servers import DEMO_ZONES, GslbProcess

DEMO_ZONE_NAMES = ["example.com.", "sub.example.com.", "example.net."]
# GSLB_TEST_UDP_PATHS narrows it (the AddressSanitizer run asks for native only).
UDP_PATHS = os.environ.get("GSLB_TEST_UDP_PATHS", "native,python").split(",")


@pytest.fixture(scope="session", params=UDP_PATHS)
def udp_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which UDP loop every `gslb serve` started under it runs (GSLB_UDP, inherited by
    the subprocess): the DNS tests (tests/e2e, tests/interop) run once per path.

    The native path needs the built extension: skipped without it, failed under CI=true.
    A module- or session-scoped fixture that starts `gslb serve` must take this fixture
    too, so that it is started again for each path (and not reused by the other path's
    tests when one worker of pytest-xdist runs a whole file)."""
    path = request.param
    if path == "native":
        from gslb.server import fastpath

        if not fastpath.available():
            message = "the C extension gslb.server._fastpath is not built"
            if os.environ.get("CI") == "true":
                pytest.fail(message + " and CI=true", pytrace=False)
            pytest.skip(message)
    before = os.environ.get("GSLB_UDP")
    os.environ["GSLB_UDP"] = path
    yield path
    if before is None:
        os.environ.pop("GSLB_UDP", None)
    else:
        os.environ["GSLB_UDP"] = before


@pytest.fixture(scope="session")
def demo_server(udp_path: str) -> Iterator[GslbProcess]:
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
