"""The package type-checks: `mypy gslb` (configured in pyproject.toml) finds no errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_errors() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "gslb"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    if run.returncode != 0:
        pytest.fail(f"mypy gslb failed (exit {run.returncode}):\n{run.stdout}{run.stderr}",
                    pytrace=False)
