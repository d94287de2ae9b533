"""Running a C extension's suites under AddressSanitizer and UndefinedBehaviorSanitizer
(test_native_asan.py, test_native_located_asan.py, test_geomap_asan.py,
test_zonelines_asan.py).

The extension is compiled again with -fsanitize=address,undefined,alignment (every
undefined behaviour fatal: -fno-sanitize-recover=all) into a temporary folder, and a
pytest subprocess runs the suites that feed it untrusted bytes with libasan preloaded and
that build loaded in place of the normal one (a sitecustomize module, inherited by any
`gslb serve` process the suites start). PYTHONMALLOC=malloc gives every Python object
its own allocation, so reading past a buffer is caught too. Any ASan or UBSan report
aborts the process that made it and fails the test."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.redis_server import require
from tests.servers import ROOT

SITECUSTOMIZE = """\
import importlib.machinery, importlib.util, sys
import {package}
_loader = importlib.machinery.ExtensionFileLoader("{module}", {path!r})
_spec = importlib.util.spec_from_loader("{module}", _loader, origin={path!r})
_module = importlib.util.module_from_spec(_spec)
_loader.exec_module(_module)
sys.modules["{module}"] = {module} = _module
"""


def build(directory: Path, sources: Path, module: str) -> Path:
    """Every `*.c` of `sources` as one ASan- and UBSan-instrumented shared object."""
    target = directory / f"{module.rsplit('.', 1)[1]}_asan.so"
    subprocess.run(
        [require("cc", "gcc"), "-shared", "-fPIC", "-g", "-O1", "-std=gnu11",
         "-fsanitize=address,undefined,alignment", "-fno-sanitize-recover=all",
         "-fno-omit-frame-pointer",
         f"-I{sysconfig.get_paths()['include']}", *map(str, sorted(sources.glob("*.c"))),
         "-o", str(target)],
        check=True, capture_output=True, text=True,
    )
    return target


def asan_environment(directory: Path, module: str, built: Path) -> dict[str, str]:
    """The environment of a process that loads `built` as `module` under ASan."""
    libasan = subprocess.run([require("cc", "gcc"), "-print-file-name=libasan.so"],
                             capture_output=True, text=True, check=True).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.fail("gcc has no libasan.so (Debian: libasan8, a dependency of gcc)")
    (directory / "sitecustomize.py").write_text(SITECUSTOMIZE.format(
        package=module.rsplit(".", 1)[0], module=module, path=str(built)))
    env = dict(os.environ)
    env.update(
        LD_PRELOAD=libasan,
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1",
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1",
        PYTHONMALLOC="malloc",
        PYTHONPATH=f"{directory}{os.pathsep}{ROOT}",
        GSLB_TEST_UDP_PATHS="native",
        GSLB_TEST_ASAN="1",
    )
    return env


def suites_pass_under_asan(directory: Path, sources: Path, module: str,
                           suites: list[str], *pytest_args: str) -> None:
    """Build `sources` with ASan and UBSan as `module`, check a subprocess loads that
    build, then run `suites` there: no sanitizer report, every test passed, none
    skipped."""
    built = build(directory, sources, module)
    env = asan_environment(directory, module, built)
    loaded = subprocess.run(
        [sys.executable, "-c", f"import {module} as m; print(m.__file__)"],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert loaded.stdout.strip() == str(built), loaded.stderr  # the ASan build, not the other
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *pytest_args,
         *suites],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    output = run.stdout + run.stderr
    assert "AddressSanitizer" not in output, output[-4000:]
    assert "runtime error:" not in output, output[-4000:]  # UBSan's report
    assert run.returncode == 0, output[-4000:]
    assert " passed" in output and "skipped" not in output.split("\n")[-2], output[-2000:]
