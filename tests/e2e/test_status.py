"""`gslb status` end to end: two nodes on one real Redis publish heartbeats; one lags a
zone serial, then stops and is flagged; the embedded default shows the one node."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.servers import ROOT, GslbProcess, copy_demo_zones, free_port, wait_until

ZONES = ["example.com.", "sub.example.com.", "example.net."]


def status(*args: str) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "-m", "gslb.cli", "status", *args],
                            capture_output=True, text=True, timeout=30, cwd=ROOT)
    return result.returncode, result.stdout + result.stderr


def node_line(output: str, node: str) -> str:
    for line in output.splitlines():
        if line.startswith(node + " "):
            return line
    return ""


def bump_serial(zones: Path) -> None:
    path = zones / "example.com.zone"
    text = path.read_text()
    serial = re.search(r"\b(20\d{8})\b", text)
    assert serial is not None
    path.write_text(text.replace(serial.group(1), str(int(serial.group(1)) + 1), 1))


def test_two_nodes_on_one_redis_one_lagging_then_stopped(tmp_path: Path, redis_server) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    zones_a, zones_b = copy_demo_zones(tmp_path / "a"), copy_demo_zones(tmp_path / "b")
    common = ["--redis", redis_server.url, "--heartbeat", "0.2"]
    node_a = GslbProcess(zones_a, ["--workers", "1", "--identity", "node-a", *common])
    node_b = GslbProcess(zones_b, ["--workers", "2", "--identity", "node-b", *common])
    try:
        node_a.start(ZONES)
        node_b.start(ZONES)
        for _ in range(20):
            node_a.query("www.example.com")
        both = lambda: status("--redis", redis_server.url)  # noqa: E731
        assert wait_until(lambda: both()[0] == 0 and "2 node(s)" in both()[1], timeout=15)
        code, output = both()
        assert "0 stopped reporting, 0 lagging" in output, output
        for node in ("node-a", "node-b"):
            assert node_line(output, node).endswith(" ok"), output
        assert re.search(r"example\.com\.\s+node-a=\d+, node-b=\d+", output), output
        assert "state store: reachable, epoch" in output

        bump_serial(zones_a)
        node_a.signal(signal.SIGHUP)
        assert wait_until(lambda: "LAGGING: example.com." in node_line(both()[1], "node-b"),
                          timeout=15)
        code, output = both()
        assert code == 1 and node_line(output, "node-a").endswith(" ok"), output

        assert node_b.stop() == 0
        assert wait_until(lambda: "STOPPED REPORTING" in node_line(both()[1], "node-b"),
                          timeout=15)
        code, output = both()
        assert code == 1, output
        assert "1 stopped reporting" in output and node_line(output, "node-a").endswith(" ok")
    finally:
        node_a.stop()
        node_b.stop()


def test_embedded_default_shows_the_one_node(tmp_path: Path) -> None:
    metrics = f"127.0.0.1:{free_port()}"
    node = GslbProcess(ROOT / "zones", ["--workers", "1", "--metrics", metrics])
    try:
        node.start(ZONES)
        code, output = status("--metrics", metrics)
        assert code == 0, output
        assert "1 node(s), 0 stopped reporting, 0 lagging" in output
        assert node_line(output, metrics).endswith(" ok"), output
        assert re.search(r"example\.net\.\s+127\.0\.0\.1:\d+=\d{10}", output), output
        assert "state store: in-process (up)" in output
        # the health table lists health keys (checks) with their verdicts, not member
        # values or pool names (once the embedded checker has probed)
        def health_keys() -> set[str]:
            text = status("--metrics", metrics)[1]
            lines = text.split("HEALTH KEY", 1)[1].splitlines()[1:] if "HEALTH KEY" in text else []
            return {line.split()[0] for line in lines if line.strip()}

        assert wait_until(lambda: "demo-dead@127.0.0.1" in health_keys(), timeout=15)
        keys = health_keys()
        assert not any(key[0].isdigit() for key in keys), keys
        assert " pool " not in status("--metrics", metrics)[1]
    finally:
        node.stop()
    code, output = status("--metrics", metrics)  # the node is gone: a clear error
    assert code == 2 and "cannot read http://" in output


def test_state_store_outage_shows_in_metrics_and_status(tmp_path: Path, redis_server) -> None:
    from tests.e2e.test_metrics import scrape

    port = free_port()
    node = GslbProcess(ROOT / "zones", ["--workers", "2", "--metrics", f"127.0.0.1:{port}",
                                        "--redis", redis_server.url])
    store = ("gslb_state_store_up", frozenset({("store", redis_server.url)}))
    try:
        node.start(ZONES)
        assert wait_until(lambda: scrape(port).get(store) == 1.0, timeout=10)
        assert status("--metrics", f"127.0.0.1:{port}")[0] == 0
        redis_server.stop()
        assert wait_until(lambda: scrape(port).get(store) == 0.0, timeout=10)
        code, output = status("--metrics", f"127.0.0.1:{port}")
        assert code == 1 and "STATE STORE UNREACHABLE" in output, output
        assert node.query("www.example.com").answer  # DNS goes on answering
    finally:
        node.stop()
