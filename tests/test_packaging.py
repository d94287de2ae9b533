"""Run dependencies and test dependencies stay apart.

`make run` installs `pip install .` (the `dependencies` of pyproject.toml) and `make test`
adds the `test` extra. So every third-party module that `gslb/` or `api/` imports, at the top of a
module or inside a function, must come from a run dependency, and none from a test-only one.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _project_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip().lower().replace("_", "-")
            for r in requirements}


def _imported_top_level(package: Path) -> dict[str, str]:
    """Top-level module name -> one file importing it, for every import under `package`."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_gslb_imports_only_run_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    run = _project_names(project["dependencies"])
    test_only = _project_names(project["optional-dependencies"]["test"]) - run
    assert {"pytest", "mypy", "hypothesis"} <= test_only
    distributions = packages_distributions()
    wrong = []
    imported = {**_imported_top_level(ROOT / "api"), **_imported_top_level(ROOT / "gslb")}
    for module, where in imported.items():
        if module in ("gslb", "api") or module in sys.stdlib_module_names:
            continue
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        if not owners & run:
            kind = "a test-only package" if owners & test_only else "no run dependency"
            wrong.append(f"{where}: imports {module} ({kind}: {sorted(owners) or '?'})")
    assert not wrong, "\n".join(wrong)


def test_make_run_installs_without_the_test_extra() -> None:
    makefile = (ROOT / "Makefile").read_text()
    run_install = re.search(r"^\$\(RUN_STAMP\):.*?\n((?:\t.*\n)+)", makefile, re.M)
    assert run_install is not None
    assert "pip install --quiet -e .\n" in run_install.group(1)
    assert "[test]" not in run_install.group(1)
    assert re.search(r"^run: .*\$\(RUN_STAMP\)", makefile, re.M)
    assert not re.search(r"^run: .*\$\(TEST_STAMP\)", makefile, re.M)


def test_the_readme_points_nowhere_outside_the_repository() -> None:
    """The README and docs/ stand alone: no path that climbs out of the repository."""
    readme = (ROOT / "README.md").read_text()
    assert not re.findall(r"\.\./[\w./-]+", readme)
    for page in sorted((ROOT / "docs").glob("*.md")):  # docs/ may reach ../README.md, no further
        assert not re.findall(r"\.\./\.\./", page.read_text()), page.name


def test_the_web_console_ships_in_the_package() -> None:
    """`pip install .` (the image's install) carries every file the console serves: the
    package data covers api/console/static/, and every file the page loads is there."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "static/*" in package_data["api.console"] and "NOTICE" in package_data["api.console"]
    static = ROOT / "api" / "console" / "static"
    assert not [p for p in static.rglob("*") if p.is_dir()]  # static/* reaches every file
    page = (static / "index.html").read_text()
    loaded = set(re.findall(r'(?:src|href)="([\w.-]+)"', page))
    for script in static.glob("*.js"):
        loaded |= set(re.findall(r'from "\./([\w.-]+)"', script.read_text()))
    assert {"app.js", "lib.js", "console.css"} <= loaded
    assert all((static / name).is_file() for name in loaded), loaded
