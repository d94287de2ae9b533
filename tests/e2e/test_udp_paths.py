"""Which UDP loop `gslb serve` runs, the fallback when the extension is missing, and how
fast SIGTERM stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DEMO_ZONE_NAMES
from tests.servers import DEMO_ZONES, ROOT, GslbProcess, free_port

# Importing the extension fails, as on a machine where it was never built.
BLOCKER = """\
import sys
class _NoNative:
    def find_spec(self, name, path=None, target=None):
        if name == "gslb.server._fastpath":
            raise ImportError("blocked for the test: no C extension")
sys.meta_path.insert(0, _NoNative())
"""


def without_extension(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    return {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "GSLB_UDP": "auto"}


def test_serve_logs_which_udp_path_runs(udp_path: str) -> None:
    server = GslbProcess(DEMO_ZONES, ["--workers", "1"]).start(DEMO_ZONE_NAMES)
    try:
        assert server.query("www.example.com").answer
        assert server.query("www.example.com").answer
    finally:
        server.stop()
    assert f"udp: {udp_path} (" in server.log()


def test_sigterm_stops_the_udp_loop_quickly(udp_path: str) -> None:
    server = GslbProcess(DEMO_ZONES, ["--workers", "1"]).start(DEMO_ZONE_NAMES)
    assert server.query("www.example.com").answer
    assert server.proc is not None
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    server.proc.wait(timeout=10)
    took = time.monotonic() - started
    server.stop()
    assert server.proc.returncode == 0
    assert took < 1.5, took  # the loop itself stops within 0.1 s; margin for a loaded machine


def test_missing_extension_falls_back_to_the_python_loop(udp_path: str, tmp_path: Path) -> None:
    if udp_path != "native":
        pytest.skip("path-independent: run once")
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gslb.cli", "serve", "--zones", str(DEMO_ZONES),
             "--listen", f"127.0.0.1:{port}", "--workers", "2"],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=without_extension(tmp_path))
    server = GslbProcess(DEMO_ZONES, port=port)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not server._answers_soa(DEMO_ZONE_NAMES):
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.05)
        for _ in range(10):
            assert server.query("www.example.com").answer
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    text = log_path.read_text()
    assert text.count("native fast path unavailable") == 1, text  # once, in the supervisor
    assert "udp: python (blocking loop; the native extension is not available)" in text


def test_native_without_the_extension_is_refused(udp_path: str, tmp_path: Path) -> None:
    if udp_path != "native":
        pytest.skip("path-independent: run once")
    run = subprocess.run(
        [sys.executable, "-m", "gslb.cli", "serve", "--zones", str(DEMO_ZONES), "--udp", "native",
         "--listen", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, cwd=ROOT, env=without_extension(tmp_path), timeout=30)
    assert run.returncode == 2
    assert "--udp native: the C extension gslb.server._fastpath is not built" in run.stderr
