"""The UDP fast path's C extension under AddressSanitizer and UndefinedBehaviorSanitizer:
the fuzz, hardening, answers-built-in-C, DO gap, RRL and malformed-input suites (how:
tests/asan.py; the location-class suite has its own file, test_native_located_asan.py,
so that pytest-xdist runs the two halves on two workers). The malformed-input suite's
`gslb serve` processes load the ASan build too (the sitecustomize module is inherited)."""

from __future__ import annotations

from pathlib import Path

from tests.asan import suites_pass_under_asan
from tests.servers import ROOT

# The in-process suites (the answers built in C over the suite's own zones: the zone
# corpus runs unsanitized), and the UDP half of the malformed-input suite (TCP is Python's).
SUITES = ["tests/unit/test_native_fuzz.py", "tests/unit/test_native_hardening.py",
          "tests/unit/test_native_denial.py", "tests/unit/test_rrl.py",
          "tests/unit/test_cookies.py",
          "tests/unit/test_native_steering.py::"
          "test_a_replaced_database_keeps_the_table_and_its_answers_follow_the_new_file",
          "tests/unit/test_native_render.py::test_unsigned_suite_zones",
          "tests/unit/test_native_render.py::test_signed_suite_zones",
          "tests/e2e/test_malformed.py::test_hand_made_udp",
          "tests/e2e/test_malformed.py::test_udp_fuzz"]


def test_fuzz_and_malformed_suites_pass_under_address_and_undefined_sanitizers(tmp_path: Path) -> None:
    suites_pass_under_asan(tmp_path, ROOT / "gslb" / "server" / "native",
                           "gslb.server._fastpath", SUITES)
