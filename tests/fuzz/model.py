"""The Python side of the libFuzzer target (tests/fuzz/fastpath.c): the table C answers
from, warmed as test_native_fuzz.py warms it, and the differential check of each reply
C gives against the pure Python responder."""

from __future__ import annotations

import random
from pathlib import Path

from gslb.dns.handler import Responder
from gslb.server import fastpath
from gslb.snapshot import Snapshot
from tests.unit.test_answer_cache import OPTIONS
from tests.unit.test_native_fuzz import SEED, seeds
from tests.zonesets import INTEROP_ZONES, load_zone_dir

_python: Snapshot | None = None
_responder = Responder(OPTIONS)


def seed_queries() -> list[bytes]:
    """The queries that warm the table: also the fuzzer's starting corpus."""
    return seeds(random.Random(SEED))


def build() -> object:
    """A native table over the interop zones, half of the seed queries rendered into it
    (the other half's names are left to table_render), and a pure Python twin."""
    global _python
    zones = load_zone_dir(INTEROP_ZONES)
    native = Snapshot(zones)
    table = fastpath.attach(native, OPTIONS)
    _python = Snapshot(zones)
    for wire in seed_queries()[::2]:
        _responder.respond(native, wire, False, "127.0.0.1")
    return table


def check(query: bytes, reply: bytes) -> None:
    """Raise unless `reply` is what the Python responder gives for `query`."""
    assert _python is not None
    expected = _responder.respond(_python, query, False, "127.0.0.1")
    if expected != [reply]:
        raise AssertionError(f"C replied {reply!r} to {query!r}; Python: {expected!r}")


def write_corpus(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for number, wire in enumerate(seed_queries()):
        (directory / f"seed-{number:04d}").write_bytes(wire)
