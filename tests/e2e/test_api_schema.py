"""Schemathesis over the OpenAPI document, against `gslb serve --api` running for real:
generated requests (valid and not) get no 5xx and only responses the document allows."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.e2e.test_api import make_token
from tests.servers import DEMO_ZONES, IDLE_API_TIMEOUT, GslbProcess, free_port, wait_until


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory,
            udp_path: str) -> Iterator[tuple[str, str]]:
    zones = tmp_path_factory.mktemp("schema") / "zones"
    shutil.copytree(DEMO_ZONES, zones)
    port = free_port()
    server = GslbProcess(zones, ["--api", f"127.0.0.1:{port}", "--workers", "1", "--prewarm", "0"]
                         ).start(ready_zones=["example.com."])
    try:
        base = f"http://127.0.0.1:{port}"
        # The API process runs under SCHED_IDLE: on a machine busy with other tests it may
        # still be importing the control plane when DNS is ready.
        assert wait_until(lambda: live(base), 60), server.log()
        yield base, make_token(zones)
    finally:
        server.stop()


def live(base: str) -> bool:
    try:
        return httpx.get(f"{base}/livez", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_api_conforms_to_its_openapi(running: tuple[str, str]) -> None:
    """Every operation, a dozen generated cases each (hypothesis drives schemathesis's
    strategies directly: one test, one server, bounded in time)."""
    base, token = running
    # The API runs at SCHED_IDLE: beside other tests it may take seconds to answer.
    document = httpx.get(f"{base}/openapi.json", timeout=IDLE_API_TIMEOUT)
    assert document.status_code == 200
    schema = schemathesis.openapi.from_dict(document.json())
    checks = [schemathesis.checks.not_a_server_error, response_schema_conformance,
              content_type_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    calls: list[str] = []
    assert len(operations) > 20
    for operation in operations:

        @given(operation.as_strategy())
        @settings(max_examples=8, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            calls.append(case.method)
            case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {token}"},
                                   checks=checks, timeout=IDLE_API_TIMEOUT)

        run()
    assert len(calls) >= 3 * len(operations)  # it did run: every operation, several cases
