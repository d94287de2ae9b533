"""The `--state` file: every problem names file:line; check ids nobody uses are warned."""

from __future__ import annotations

from pathlib import Path

import pytest

from gslb.state.store import InProcessStore, StateFileError
from gslb.steering.model import Member, Pool, Rule, SteeredRecord


@pytest.mark.parametrize("text, line, message", [
    ("health: {a: up\n", 2, "invalid YAML: expected ',' or '}'"),
    ("health:\n  a: up\n  b: maybe\n", 3, "health.b: expected 'up' or 'down', got 'maybe'"),
    ("health: {a: up}\nrtt:\n  EU: {us-east: -1}\n", 3, "rtt.EU.us-east: expected milliseconds >= 0"),
    ("health: {a: up}\nhealht: {}\n", 2, "unknown key 'healht' (expected health, rtt, overrides)"),
    ("- a\n", 1, "expected a mapping with 'health' and 'rtt'"),
])
def test_problems_name_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "state.yaml"
    path.write_text(text)
    with pytest.raises(StateFileError) as caught:
        InProcessStore.from_file(path)
    assert str(caught.value).startswith(f"{path}:{line}: {message}")


def test_unknown_check_ids_are_warned_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "state.yaml"
    path.write_text("health:\n  api-primary: down\n  api-primray: up\nrtt:\n  EU: {us-east: 12}\n")
    store = InProcessStore.from_file(path)
    record = SteeredRecord("api.example.com.", "A", 30,
                           {"p": Pool("p", (Member("192.0.2.1", check="api-primary"),))},
                           (Rule("p"),), ())
    assert store.unknown_checks({("api.example.com.", "A"): record}) == [
        f"{path}:3: health check 'api-primray' is not the check of any member of a valid "
        "steered record; it changes nothing"]
    assert store.view().health["api-primary"].up is False
    assert store.view().rtt == {("EU", "us-east"): 12.0}


def test_override_problems_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "state.yaml"
    path.write_text("overrides:\n  192.0.2.1: {mode: down, until: 2030-01-01T00:00:00Z}\n"
                    "  192.0.2.2: {mode: sideways, until: 1}\n")
    with pytest.raises(StateFileError) as caught:
        InProcessStore.from_file(path)
    assert str(caught.value) == (f"{path}:3: overrides.192.0.2.2.mode: expected up, down or "
                                 "drain, got 'sideways'")
