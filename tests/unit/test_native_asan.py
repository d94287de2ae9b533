"""The C extension under AddressSanitizer: the fuzz and malformed-input suites.

The extension is compiled again with -fsanitize=address into a temporary folder, and a
pytest subprocess runs the suites that feed it untrusted bytes (the in-process fuzz,
the UDP half of the malformed-input suite) with libasan preloaded and that build loaded
in place of the normal one (a sitecustomize module, inherited by the `gslb serve`
processes the malformed-input suite starts). PYTHONMALLOC=malloc gives
every Python object its own allocation, so reading past a datagram is caught too. Any
ASan report aborts the process that made it and fails this test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.redis_server import require
from tests.servers import ROOT

NATIVE = ROOT / "gslb" / "server" / "native"
# The in-process suites, and the UDP half of the malformed-input suite (TCP is Python's).
SUITES = ["tests/unit/test_native_fuzz.py",
          "tests/e2e/test_malformed.py::test_hand_made_udp",
          "tests/e2e/test_malformed.py::test_udp_fuzz"]
SITECUSTOMIZE = """\
import importlib.machinery, importlib.util, sys
import gslb.server
_loader = importlib.machinery.ExtensionFileLoader("gslb.server._fastpath", {path!r})
_spec = importlib.util.spec_from_loader("gslb.server._fastpath", _loader, origin={path!r})
_module = importlib.util.module_from_spec(_spec)
_loader.exec_module(_module)
sys.modules["gslb.server._fastpath"] = gslb.server._fastpath = _module
"""


def build(directory: Path) -> Path:
    cc = require("cc", "gcc")
    target = directory / "_fastpath_asan.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-g", "-O1", "-std=gnu11", "-fsanitize=address",
         "-fno-omit-frame-pointer", f"-I{sysconfig.get_paths()['include']}",
         *map(str, sorted(NATIVE.glob("*.c"))), "-o", str(target)],
        check=True, capture_output=True, text=True,
    )
    return target


def asan_environment(directory: Path, module: Path) -> dict[str, str]:
    libasan = subprocess.run([require("cc", "gcc"), "-print-file-name=libasan.so"],
                             capture_output=True, text=True, check=True).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.fail("gcc has no libasan.so (Debian: libasan8, a dependency of gcc)")
    (directory / "sitecustomize.py").write_text(SITECUSTOMIZE.format(path=str(module)))
    env = dict(os.environ)
    env.update(
        LD_PRELOAD=libasan,
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1",
        PYTHONMALLOC="malloc",
        PYTHONPATH=f"{directory}{os.pathsep}{ROOT}",
        GSLB_TEST_UDP_PATHS="native",
        GSLB_TEST_ASAN="1",
    )
    return env


def test_fuzz_and_malformed_suites_pass_under_address_sanitizer(tmp_path: Path) -> None:
    module = build(tmp_path)
    env = asan_environment(tmp_path, module)
    loaded = subprocess.run(
        [sys.executable, "-c", "import gslb.server._fastpath as m; print(m.__file__)"],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert loaded.stdout.strip() == str(module), loaded.stderr  # the ASan build, not the other
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *SUITES],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    output = run.stdout + run.stderr
    assert "AddressSanitizer" not in output, output[-4000:]
    assert run.returncode == 0, output[-4000:]
    assert " passed" in output and "skipped" not in output.split("\n")[-2], output[-2000:]
