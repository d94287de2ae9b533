"""The geo walk's C extension under AddressSanitizer (how: tests/asan.py): the suites that
feed it untrusted bytes, the mutated databases of test_geomap_fuzz.py and the generated
and broken databases of tests/unit/load/test_geoip_walk.py."""

from __future__ import annotations

from pathlib import Path

from tests.asan import suites_pass_under_asan
from tests.servers import ROOT

SUITES = ["tests/unit/test_geomap_fuzz.py",
          "tests/unit/load/test_geoip_walk.py::test_a_broken_tree_or_data_section_is_an_error_naming_the_file",
          "tests/unit/load/test_geoip_walk.py::test_a_city_database_alone_and_with_an_asn_database[1]",
          "tests/unit/load/test_geoip_walk.py::test_generated_databases_of_each_record_size[28]",
          "tests/unit/load/test_geoip_walk.py::test_the_location_map_says_what_locate_says[1]",
          # runs of over 256 KiB: copied into bytes by the low-priority thread
          "tests/unit/load/test_geoip_walk.py::test_the_table_holds_runs_not_a_python_object_per_network"]


def test_walk_suites_pass_under_address_sanitizer(tmp_path: Path) -> None:
    suites_pass_under_asan(tmp_path, ROOT / "gslb" / "steering" / "native",
                           "gslb.steering._geomap", SUITES, "-n", "0")
