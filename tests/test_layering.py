"""Which package may import which, and the pure core stays pure.

Every import in `gslb/` and `api/` (at module level, inside functions, under
`TYPE_CHECKING`: all of them, read from the AST, so the rule holds whether or not the
import would run) is checked against `ALLOWED`: the packages each package may import
besides itself (the standard library and third-party packages are not listed). Nothing
imports upwards; `ALLOWED` is also kept tight, naming exactly the edges that exist, so it
stays a true picture of the layering (docs/architecture.md draws it).

The pure core (`gslb/dns/`, `gslb/steering/`, `gslb/snapshot.py`) in addition never
imports I/O, clock or random modules, and never calls `open(`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GSLB = ROOT / "gslb"
FORBIDDEN = {"asyncio", "socket", "redis", "fastapi", "geoip2", "maxminddb", "uvloop", "time", "random", "os"}

CORE = ("gslb.dns", "gslb.steering", "gslb.snapshot")
# The gslb.server modules api/ may use: the listening sockets, and the Server type that
# `gslb serve --api` hands to api/serve.py. Not the process mains (single, workers,
# stateproc), which the CLI runs.
API_SERVER_MODULES = ("gslb.server.listen", "gslb.server.node")
# A package (or top-level module) -> what it may import besides itself. "gslb" is the
# top package itself (`gslb.__version__`).
ALLOWED: dict[str, set[str]] = {
    "gslb": set(),
    # the pure core: the protocol, steering decisions, the snapshot that joins them
    "gslb.dns": set(),
    "gslb.steering": {"gslb.dns", "gslb.snapshot"},  # snapshot: steering/explain.py answers through one
    "gslb.snapshot": {"gslb.dns", "gslb.steering"},
    # the settings of `gslb serve` (and StoreSettings, which the state service reads)
    "gslb.settings": {"gslb.dns"},
    # files to data
    "gslb.load": {"gslb.dns", "gslb.steering"},
    # the configuration of record: loads files, reads Redis through gslb.state.redis
    "gslb.config": {"gslb.dns", "gslb.steering", "gslb.load", "gslb.state"},
    # probes and quorum; the checker agent follows the configuration of record
    "gslb.health": {"gslb.steering", "gslb.state", "gslb.config"},
    # state views: the in-process agent and the quorum come from gslb.health
    "gslb.state": {"gslb.steering", "gslb.settings", "gslb.health"},
    "gslb.observability": {"gslb", "gslb.dns", "gslb.state"},
    # processes and sockets: everything in gslb but the CLI (and never api/)
    "gslb.server": {"gslb", "gslb.dns", "gslb.steering", "gslb.snapshot", "gslb.settings",
                    "gslb.load", "gslb.config", "gslb.health", "gslb.state",
                    "gslb.observability"},
    # the commands: everything, the control plane too
    "gslb.cli": {"gslb", "gslb.dns", "gslb.steering", "gslb.snapshot", "gslb.settings",
                 "gslb.load", "gslb.config", "gslb.health", "gslb.state",
                 "gslb.observability", "gslb.server", "api"},
    # the control plane: the layers below the server, and of gslb.server only what
    # API_SERVER_MODULES names
    "api": {"gslb.dns", "gslb.steering", "gslb.snapshot", "gslb.settings", "gslb.load",
            "gslb.config", "gslb.state", "gslb.observability", *API_SERVER_MODULES},
}
UNITS = sorted(ALLOWED, key=len, reverse=True)  # the longest (most specific) match first


def unit_of(module: str) -> str | None:
    """The entry of ALLOWED a module belongs to; None for the stdlib and third parties."""
    for unit in UNITS:
        if module == unit or module.startswith(unit + "."):
            return unit
    return None


def imported(node: ast.AST, package: str) -> list[str]:
    """The modules an import statement names, relative ones resolved against `package`."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parent = ".".join(parts[: len(parts) - node.level + 1])
            base = f"{parent}.{base}" if base else parent
        return [base] if node.module else [f"{base}.{a.name}" for a in node.names]
    return []


def allowed(importer: str, module: str) -> bool:
    """May a module of package `importer` import `module`?"""
    target = unit_of(module)
    if target is None or target == importer:
        return True
    if importer == "api" and target == "gslb.server":
        return any(module == m or module.startswith(m + ".") for m in API_SERVER_MODULES)
    return target in ALLOWED[importer]


def violations(source: str, filename: str = "<source>", package: str = "gslb.dns",
               module: str | None = None) -> list[str]:
    """Every import in `source` that its package may not make, and for the pure core every
    I/O, clock or random import and `open(` call too, as `file:line: what`.

    `package` is the package the source lives in, to resolve relative imports; `module`
    the source's own name when it is not in that package's entry (gslb/settings.py)."""
    importer = unit_of(module or package)
    assert importer is not None, f"{package} is in no entry of ALLOWED"
    pure = importer in CORE
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if pure and isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in {"open", "__import__"}:
                found.append(f"{filename}:{node.lineno}: calls {func.id}()")
            elif isinstance(func, ast.Attribute) and func.attr == "import_module":
                found.append(f"{filename}:{node.lineno}: calls import_module()")
        for name in imported(node, package):
            if (pure and name.split(".")[0] in FORBIDDEN) or not allowed(importer, name):
                found.append(f"{filename}:{node.lineno}: imports {name}")
    return found


def source_files() -> list[Path]:
    return sorted(GSLB.rglob("*.py")) + sorted((ROOT / "api").rglob("*.py"))


def package_of(path: Path) -> str:
    """The package a file's relative imports resolve against (the package itself for an
    __init__.py)."""
    return ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def edges() -> dict[str, set[str]]:
    """What each entry of ALLOWED imports today."""
    found: dict[str, set[str]] = {unit: set() for unit in ALLOWED}
    for path in source_files():
        importer = unit_of(module_of(path))
        assert importer is not None
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for module in imported(node, package_of(path)):
                target = unit_of(module)
                if target is not None and target != importer:
                    found[importer].add(module if target == "gslb.server" and importer == "api"
                                        else target)
    return found


def core_files() -> list[Path]:
    return [p for p in source_files() if unit_of(module_of(p)) in CORE]


def ids(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_core_files_are_found() -> None:
    names = {path.relative_to(GSLB).as_posix() for path in core_files()}
    assert {"dns/resolver.py", "dns/zone.py", "dns/handler.py", "dns/wire.py", "snapshot.py",
            "steering/engine.py"} <= names


def test_every_module_has_an_entry() -> None:
    """A new package (or top-level module) must say what it may import."""
    assert [ids(p) for p in source_files() if unit_of(module_of(p)) is None] == []


@pytest.mark.parametrize("path", source_files(), ids=ids)
def test_module_imports_only_what_its_package_may(path: Path) -> None:
    found = violations(path.read_text(encoding="utf-8"), ids(path), package_of(path),
                       module_of(path))
    assert found == []


def test_allowlist_is_tight() -> None:
    """ALLOWED names exactly the edges that exist: an edge that goes away is taken out,
    so the list never allows more than the code needs."""
    unused = {unit: sorted(ALLOWED[unit] - found) for unit, found in edges().items()
              if ALLOWED[unit] - found}
    assert unused == {}


def test_nothing_but_the_cli_imports_api() -> None:
    assert [unit for unit, may in ALLOWED.items() if "api" in may] == ["gslb.cli"]
    assert "gslb.cli" not in set().union(*ALLOWED.values())


@pytest.mark.parametrize("path", [p for p in source_files() if p.name == "__init__.py"], ids=ids)
def test_package_says_what_lives_there(path: Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))


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
    ("from gslb.snapshot import Snapshot", ["<source>:1: imports gslb.snapshot"]),  # dns is below it
    ("from gslb.steering.model import Health", ["<source>:1: imports gslb.steering.model"]),
    ("import api.app", ["<source>:1: imports api.app"]),
])
def test_checker_detects_violations(source: str, expected: list[str]) -> None:
    assert violations(source) == expected


@pytest.mark.parametrize("source,package,expected", [
    # upward, in a function, under TYPE_CHECKING: all count
    ("def f():\n    from gslb.server.node import Server\n", "gslb.state",
     ["<source>:2: imports gslb.server.node"]),
    ("if TYPE_CHECKING:\n    from gslb.cli.explain import explain\n", "gslb.server",
     ["<source>:2: imports gslb.cli.explain"]),
    ("from api.serve import embedded_api", "gslb.server", ["<source>:1: imports api.serve"]),
    ("from ..server.node import Server", "gslb.config", ["<source>:1: imports gslb.server.node"]),
    ("from gslb.observability import metrics", "gslb.load",
     ["<source>:1: imports gslb.observability"]),
    ("from gslb.cli import main", "api", ["<source>:1: imports gslb.cli"]),
    # api/ may use gslb.server's sockets and Server type, not its process mains
    ("from gslb.server.single import run_loop", "api.routes",
     ["<source>:1: imports gslb.server.single"]),
    ("from gslb.server import workers", "api", ["<source>:1: imports gslb.server"]),
    ("import gslb.server", "api", ["<source>:1: imports gslb.server"]),
    # outside the core, I/O is fine, upward imports are not
    ("import asyncio\nimport gslb.health.agent", "gslb.observability",
     ["<source>:2: imports gslb.health.agent"]),
])
def test_checker_detects_layering_violations(source: str, package: str, expected: list[str]) -> None:
    assert violations(source, package=package) == expected


@pytest.mark.parametrize("source", [
    "import dns.name",
    "from dataclasses import dataclass",
    "from gslb.dns.zone import Zone",
    "from . import wire",  # gslb.dns.wire
    "from .zone import Zone",
    "from ..dns import resolver",
    "import timeit_is_not_time",
    "def f(path):\n    return path.opened\n",
])
def test_checker_allows_pure_code(source: str) -> None:
    assert violations(source) == []


@pytest.mark.parametrize("source,package", [
    ("from gslb.snapshot import Snapshot", "gslb.steering"),
    ("from gslb.steering.front import Steering", "gslb.snapshot"),
    ("import asyncio\nimport time\nfrom gslb.state.redis import parse_url", "gslb.config"),
    ("data = open('x').read()", "gslb.load"),
    ("from gslb.server.listen import bind_http\nfrom gslb.server.node import Server", "api"),
    ("from gslb.config.live import LiveConfig", "api.routes"),
    ("from api.serve import embedded_api", "gslb.cli"),
    ("from gslb.server.single import run_loop", "gslb.cli"),
    ("from gslb.state.store import StateView", "gslb.server"),
    ("from .node import Server", "gslb.server"),
    ("from gslb import __version__", "gslb.observability"),
])
def test_checker_allows_permitted_imports(source: str, package: str) -> None:
    assert violations(source, package=package) == []
