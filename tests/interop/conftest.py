"""Every test here runs once per UDP path (the native C loop and the Python loop)."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def every_udp_path(udp_path: str) -> str:
    return udp_path
