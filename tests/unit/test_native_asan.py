"""The UDP fast path's C extension under AddressSanitizer: the fuzz, RRL and malformed-input
suites (how: tests/asan.py). The malformed-input suite's `gslb serve` processes load the
ASan build too (the sitecustomize module is inherited)."""

from __future__ import annotations

from pathlib import Path

from tests.asan import suites_pass_under_asan
from tests.servers import ROOT

# The in-process suites, and the UDP half of the malformed-input suite (TCP is Python's).
SUITES = ["tests/unit/test_native_fuzz.py", "tests/unit/test_rrl.py",
          "tests/e2e/test_malformed.py::test_hand_made_udp",
          "tests/e2e/test_malformed.py::test_udp_fuzz"]


def test_fuzz_and_malformed_suites_pass_under_address_sanitizer(tmp_path: Path) -> None:
    suites_pass_under_asan(tmp_path, ROOT / "gslb" / "server" / "native",
                           "gslb.server._fastpath", SUITES)
