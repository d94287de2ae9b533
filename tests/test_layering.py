"""The pure core stays pure: gslb/dns, gslb/steering and snapshot.py do no I/O and read no clock or random source.

`gslb/dns/`, `gslb/steering/` and `gslb/snapshot.py` never import I/O, clock or random
modules, and never call `open(`. The rule is checked on the source's AST, so it holds
whether or not the import would run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "gslb"
FORBIDDEN = {"asyncio", "socket", "redis", "fastapi", "geoip2", "maxminddb", "uvloop", "time", "random", "os"}
# The edges depend on the core, never the other way round (they do I/O, log, read env).
EDGES = ("gslb.server", "gslb.state", "gslb.health", "gslb.load", "gslb.cli",
         "gslb.observability", "gslb.settings", "api")


def core_files() -> list[Path]:
    files = sorted((ROOT / "dns").glob("*.py")) + [ROOT / "snapshot.py"]
    steering = ROOT / "steering"
    if steering.is_dir():
        files += sorted(steering.rglob("*.py"))
    return files


def violations(source: str, filename: str = "<source>", package: str = "gslb.dns") -> list[str]:
    """Every forbidden import and `open(` call in `source`, as `file:line: what`.

    `package` is the package the source lives in, to resolve relative imports."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            modules = [base] if node.module else [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in {"open", "__import__"}:
                found.append(f"{filename}:{node.lineno}: calls {func.id}()")
            elif isinstance(func, ast.Attribute) and func.attr == "import_module":
                found.append(f"{filename}:{node.lineno}: calls import_module()")
        for module in modules:
            edge = any(module == e or module.startswith(e + ".") for e in EDGES)
            if module.split(".")[0] in FORBIDDEN or edge:
                found.append(f"{filename}:{node.lineno}: imports {module}")
    return found


def test_core_files_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in core_files()}
    assert {"dns/resolver.py", "dns/zone.py", "dns/handler.py", "dns/wire.py", "snapshot.py"} <= names


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_core_module_is_pure(path: Path) -> None:
    package = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    found = violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT.parent)), package)
    assert found == []


@pytest.mark.parametrize("source,expected", [
    ("import asyncio", ["<source>:1: imports asyncio"]),
    ("import os.path", ["<source>:1: imports os.path"]),
    ("from time import monotonic", ["<source>:1: imports time"]),
    ("import random as r", ["<source>:1: imports random"]),
    ("from redis.asyncio import Redis", ["<source>:1: imports redis.asyncio"]),
    ("def f():\n    import socket\n", ["<source>:2: imports socket"]),
    ("try:\n    import uvloop\nexcept ImportError:\n    pass\n", ["<source>:2: imports uvloop"]),
    ("import geoip2.database, fastapi", ["<source>:1: imports geoip2.database", "<source>:1: imports fastapi"]),
    ("import maxminddb", ["<source>:1: imports maxminddb"]),
    ("data = open('zones/x.zone').read()", ["<source>:1: calls open()"]),
    ("m = __import__('socket')", ["<source>:1: calls __import__()"]),
    ("import importlib\nm = importlib.import_module('os')", ["<source>:2: calls import_module()"]),
    ("from gslb.server.udp import serve", ["<source>:1: imports gslb.server.udp"]),
    ("from ..load.zonefile import load_zones", ["<source>:1: imports gslb.load.zonefile"]),
    ("from ..load import steering", ["<source>:1: imports gslb.load"]),
    ("from gslb.load.steering import load_steering_files", ["<source>:1: imports gslb.load.steering"]),
    ("from .. import settings", ["<source>:1: imports gslb.settings"]),
    ("import gslb.observability", ["<source>:1: imports gslb.observability"]),
])
def test_checker_detects_violations(source: str, expected: list[str]) -> None:
    assert violations(source) == expected


@pytest.mark.parametrize("source", [
    "import dns.name",
    "from dataclasses import dataclass",
    "from gslb.dns.zone import Zone",
    "from . import wire",  # gslb.dns.wire
    "from .zone import Zone",
    "from ..dns import resolver",
    "from gslb.snapshot import Snapshot",
    "import timeit_is_not_time",
    "def f(path):\n    return path.opened\n",
])
def test_checker_allows_pure_code(source: str) -> None:
    assert violations(source) == []
