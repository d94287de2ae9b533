"""The geo walk's C extension under AddressSanitizer: its fuzz suite and the walk tests.

As test_native_asan.py does for the UDP fast path: gslb/steering/native is compiled again
with -fsanitize=address into a temporary folder, and a pytest subprocess runs the suites
that feed it untrusted bytes (the mutated databases of test_geomap_fuzz.py; generated and
broken databases from tests/unit/load/test_geoip_walk.py) with libasan preloaded and
that build loaded in place of the normal one. PYTHONMALLOC=malloc gives every Python
object its own allocation, so a read past a buffer is caught too. Any ASan report aborts
the process and fails this test.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.redis_server import require
from tests.servers import ROOT
from tests.unit.test_native_asan import asan_environment

NATIVE = ROOT / "gslb" / "steering" / "native"
SUITES = ["tests/unit/test_geomap_fuzz.py",
          "tests/unit/load/test_geoip_walk.py::test_a_broken_tree_or_data_section_is_an_error_naming_the_file",
          "tests/unit/load/test_geoip_walk.py::test_a_city_database_alone_and_with_an_asn_database[1]",
          "tests/unit/load/test_geoip_walk.py::test_generated_databases_of_each_record_size[28]"]
SITECUSTOMIZE = """\
import importlib.machinery, importlib.util, sys
import gslb.steering
_loader = importlib.machinery.ExtensionFileLoader("gslb.steering._geomap", {path!r})
_spec = importlib.util.spec_from_loader("gslb.steering._geomap", _loader, origin={path!r})
_module = importlib.util.module_from_spec(_spec)
_loader.exec_module(_module)
sys.modules["gslb.steering._geomap"] = gslb.steering._geomap = _module
"""


def build(directory: Path) -> Path:
    target = directory / "_geomap_asan.so"
    subprocess.run(
        [require("cc", "gcc"), "-shared", "-fPIC", "-g", "-O1", "-std=gnu11", "-fsanitize=address",
         "-fno-omit-frame-pointer", f"-I{sysconfig.get_paths()['include']}",
         *map(str, sorted(NATIVE.glob("*.c"))), "-o", str(target)],
        check=True, capture_output=True, text=True,
    )
    return target


def test_walk_suites_pass_under_address_sanitizer(tmp_path: Path) -> None:
    module = build(tmp_path)
    env = asan_environment(tmp_path, module)
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE.format(path=str(module)))
    loaded = subprocess.run(
        [sys.executable, "-c", "import gslb.steering._geomap as m; print(m.__file__)"],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert loaded.stdout.strip() == str(module), loaded.stderr  # the ASan build, not the other
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-n", "0", *SUITES],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    output = run.stdout + run.stderr
    assert "AddressSanitizer" not in output, output[-4000:]
    assert run.returncode == 0, output[-4000:]
    assert " passed" in output and "skipped" not in output.split("\n")[-2], output[-2000:]
