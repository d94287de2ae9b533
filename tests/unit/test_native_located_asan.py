"""The UDP fast path's C extension under AddressSanitizer and UndefinedBehaviorSanitizer
(how: tests/asan.py), for the location-class suite: `closest` and `latency` answers
keyed by the classes of a generated City database, a changed RTT table, and a database
replaced under a table that keeps its answers. The other suites run in
test_native_asan.py: apart, pytest-xdist gives each file a worker (together they were
the suite's longest file)."""

from __future__ import annotations

from pathlib import Path

from tests.asan import suites_pass_under_asan
from tests.servers import ROOT


def test_location_class_suite_passes_under_address_and_undefined_sanitizers(tmp_path: Path) -> None:
    suites_pass_under_asan(tmp_path, ROOT / "gslb" / "server" / "native",
                           "gslb.server._fastpath", ["tests/unit/test_native_located.py"])
