"""The web console served by `gslb api --redis` (the API alone, a fleet on one Redis):
the overview lists the DNS nodes from their heartbeats, and a drain in the console
reaches a `gslb serve --redis` node, seen with dig. `--no-console` leaves /ui/ out."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.console.test_browser import Console, answers, chromium
from tests.e2e.test_api_redis import ApiProcess
from tests.redis_server import RedisProcess, require
from tests.servers import DEMO_ZONES, GslbProcess, admin_token, free_port, wait_until

pytestmark = pytest.mark.browser


def test_the_console_of_a_fleet(redis_server: RedisProcess, tmp_path: Path) -> None:
    require("dig", "bind9-dnsutils")
    port = free_port()
    api = ApiProcess(redis_server.url, port, tmp_path, ["--import", str(DEMO_ZONES)])
    quiet = ApiProcess(redis_server.url, free_port(), tmp_path, ["--no-console"])
    empty = tmp_path / "empty"
    empty.mkdir()
    node = GslbProcess(empty, ["--redis", redis_server.url, "--identity", "ns-fleet-1",
                               "--prewarm", "0"])
    driver = None
    try:
        node.start(ready_zones=["example.com."])
        base = f"http://127.0.0.1:{port}"
        assert "script-src 'self'" in httpx.get(f"{base}/ui/").headers["content-security-policy"]
        assert httpx.get(f"http://127.0.0.1:{quiet.port}/ui/").status_code == 404
        driver = chromium()
        console = Console(driver, node, base, {"admin": admin_token(redis_server.url)})
        console.sign_in()

        def listed() -> bool:
            console.open("#/")
            return "ns-fleet-1" in console.text()

        assert wait_until(listed, timeout=10), console.text()
        row = [line for line in console.text().splitlines() if "ns-fleet-1" in line][0]
        assert "v1" in row and "serving" in row, row  # the imported version, from its heartbeat
        assert "192.0.2.11" in answers(console, "www2.example.com")
        console.open("#/record/example.com./www2/A")
        console.click("button[aria-label='drain 192.0.2.11']")
        console.wait(lambda: console.by("dialog[open]"))
        console.by("#confirm-apply").click()
        console.wait(lambda: "drained" in console.by("tr[data-member='192.0.2.11']").text)
        assert wait_until(lambda: "192.0.2.11" not in answers(console, "www2.example.com", 4), timeout=5)
    finally:
        if driver is not None:
            driver.quit()
            shutil.rmtree(driver.profile_dir, ignore_errors=True)
        node.stop()
        quiet.stop()
        api.stop()
