"""The zone-line scanner's C extension under AddressSanitizer (how: tests/asan.py): the
differential and mutation suite of test_zonelines.py, and the zone-file loading suite,
whose files all go through the scanner."""

from __future__ import annotations

from pathlib import Path

from tests.asan import suites_pass_under_asan
from tests.servers import ROOT

SUITES = ["tests/unit/load/test_zonelines.py", "tests/unit/load/test_zonefile.py"]


def test_scanner_suites_pass_under_address_sanitizer(tmp_path: Path) -> None:
    suites_pass_under_asan(tmp_path, ROOT / "gslb" / "load" / "native", "gslb.load._zonelines",
                           SUITES, "-n", "0")
