"""A coverage-guided fuzz run of the native packet parser and answer builder: libFuzzer
(clang) drives tests/fuzz/fastpath.c, which runs parse_query, table_answer and, on a
table miss, table_render over a table built from the interop zones, under ASan and UBSan,
and compares every reply C gives with the Python responder's (tests/fuzz/model.py).
Bounded in time (FUZZ_SECONDS); the seed corpus is test_native_fuzz.py's queries."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from gslb.server import fastpath
from tests.fuzz.model import write_corpus
from tests.redis_server import require
from tests.servers import ROOT

pytestmark = pytest.mark.skipif(not fastpath.available(), reason="the C extension is not built")
FUZZ_SECONDS = 25
NATIVE = ROOT / "gslb" / "server" / "native"


def build(directory: Path) -> Path:
    """The fuzz target with the native sources, instrumented, linked to libpython."""
    target = directory / "fastpath-fuzz"
    config = sysconfig.get_config_vars()
    version = config["LDVERSION"]
    built = subprocess.run(
        [require("clang", "clang"), "-g", "-O1", "-std=gnu11",
         "-fsanitize=fuzzer,address,undefined,alignment", "-fno-sanitize-recover=all",
         f"-I{sysconfig.get_paths()['include']}", f"-I{NATIVE}",
         *map(str, sorted(NATIVE.glob("*.c"))), str(ROOT / "tests" / "fuzz" / "fastpath.c"),
         f"-L{config['LIBDIR']}", f"-Wl,-rpath,{config['LIBDIR']}", f"-lpython{version}",
         *config["LIBS"].split(), "-lm", "-o", str(target)],
        capture_output=True, text=True,
    )
    assert built.returncode == 0, built.stderr[-4000:]  # libFuzzer: Debian's libclang-rt-14-dev
    return target


def test_parser_and_answer_builder_survive_coverage_guided_fuzzing(tmp_path: Path) -> None:
    target = build(tmp_path)
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    env = dict(os.environ)
    env.update(
        PYTHONHOME=sys.base_prefix,
        PYTHONPATH=os.pathsep.join([str(ROOT), *(p for p in sys.path if p.endswith("site-packages"))]),
        PYTHONMALLOC="malloc",  # every Python object its own allocation: ASan sees overreads
        ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1",
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
    )
    run = subprocess.run(
        [str(target), f"-max_total_time={FUZZ_SECONDS}", "-timeout=10", "-rss_limit_mb=4096",
         "-max_len=1024", "-use_value_profile=1", "-print_final_stats=1", str(corpus)],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=FUZZ_SECONDS + 120,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "runtime error:" not in output and "AddressSanitizer" not in output, output[-6000:]
    done = re.search(r"Done (\d+) runs", output)
    assert done and int(done.group(1)) > 10_000, output[-3000:]
    coverage = re.search(r"stat::new_units_added:\s+(\d+)", output)
    assert coverage and int(coverage.group(1)) > 0, output[-3000:]  # coverage guided it
    compared = re.search(r"compared (\d+) replies", output)
    assert compared and int(compared.group(1)) > 1000, output[-3000:]  # C answered, checked
