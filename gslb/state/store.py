"""Where health and latency state lives: the interface and the in-process store.

The DNS path never reads a store directly: each snapshot carries a frozen `StateView`
(health by check id, RTT by client network or region and datacenter, a version number),
so one query sees one consistent state and cached steered answers are keyed by the
version they were decided with. The in-process store is the embedded default (no Redis):
it is filled from a file (`--state`, also read by `gslb explain`) or by code.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol

import yaml
import yaml.constructor

from gslb.steering.model import Health, SteeredRecord


@dataclass(frozen=True)
class StateView:
    """One consistent, immutable reading of the state."""

    version: int = 0
    health: dict[str, Health] = field(default_factory=dict)
    rtt: dict[tuple[str, str], float] = field(default_factory=dict)


class StateStore(Protocol):
    def view(self) -> StateView: ...


class StateFileError(ValueError):
    """The state file is malformed; the message names the file and the field."""


class InProcessStore:
    """State held in this process (the embedded default, no Redis)."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._health: dict[str, tuple[bool, str, float]] = {}
        self._rtt: dict[tuple[str, str], float] = {}
        self.check_lines: dict[str, str] = {}  # check id -> file:line, when read from a file

    def set_health(self, check: str, up: bool, source: str = "in-process") -> None:
        self._health[check] = (up, source, self._clock())

    def set_rtt(self, client: str, datacenter: str, milliseconds: float) -> None:
        self._rtt[(client, datacenter)] = milliseconds

    def view(self) -> StateView:
        """The state now. Its version is derived from what decisions read (up/down and
        RTTs), so two readings with the same content share cached answers and two with
        different content never do, whichever store or file they came from."""
        now = self._clock()
        health = {
            check: Health(up=up, source=source, age=max(0.0, now - since))
            for check, (up, source, since) in self._health.items()
        }
        content = (tuple(sorted((c, h.up) for c, h in health.items())),
                   tuple(sorted(self._rtt.items())))
        return StateView(zlib.crc32(repr(content).encode()), health, dict(self._rtt))

    def unknown_checks(self, records: Mapping[tuple[str, str], SteeredRecord]) -> list[str]:
        """One warning per health check id in the file that no steered member names (a
        typo there leaves the real check up), with its line."""
        used = {m.check for record in records.values() for pool in record.pools.values()
                for m in pool.members if m.check}
        return [f"{where}: health check {check!r} is not the check of any member of a valid "
                "steered record; it changes nothing"
                for check, where in self.check_lines.items() if check not in used]

    @classmethod
    def from_file(cls, path: Path) -> "InProcessStore":
        """Load `health: {check: up|down}` and `rtt: {client: {datacenter: ms}}` (YAML).

        StateFileError names the file and line of the first problem."""
        try:
            root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except (OSError, UnicodeDecodeError) as exc:
            raise StateFileError(f"{path}: cannot read state file: {exc}") from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise StateFileError(f"{path}:{mark.line + 1 if mark else 1}: invalid YAML: "
                                 f"{exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise StateFileError(f"{path}:1: invalid YAML: {exc}") from None
        store = cls()
        if root is None:
            return store
        if not isinstance(root, yaml.MappingNode):
            raise StateFileError(f"{path}:{_line(root)}: expected a mapping with 'health' and 'rtt'")
        for key, value in root.value:
            where = f"{path}:{_line(key)}"
            if key.value == "health":
                store._health_from(value, path)
            elif key.value == "rtt":
                store._rtt_from(value, path)
            else:
                raise StateFileError(f"{where}: unknown key {key.value!r} (expected health, rtt)")
        return store

    def _health_from(self, node: yaml.Node, path: Path) -> None:
        for key, value in _pairs(node, path, "health", "check: up|down"):
            status = value.value if isinstance(value, yaml.ScalarNode) else None
            if status not in ("up", "down"):
                raise StateFileError(f"{path}:{_line(value)}: health.{key.value}: expected 'up' or "
                                     f"'down', got {status!r}")
            self.set_health(str(key.value), status == "up", source=f"file {path.name}")
            self.check_lines[str(key.value)] = f"{path}:{_line(key)}"

    def _rtt_from(self, node: yaml.Node, path: Path) -> None:
        for client, per_dc in _pairs(node, path, "rtt", "client: {datacenter: ms}"):
            for datacenter, ms in _pairs(per_dc, path, f"rtt.{client.value}", "datacenter: milliseconds"):
                number = _CONSTRUCTOR.construct_object(ms) if isinstance(ms, yaml.ScalarNode) else None
                if not isinstance(number, (int, float)) or isinstance(number, bool) or number < 0:
                    raise StateFileError(f"{path}:{_line(ms)}: rtt.{client.value}.{datacenter.value}: "
                                         "expected milliseconds >= 0")
                self.set_rtt(str(client.value), str(datacenter.value), float(number))


_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _pairs(node: yaml.Node, path: Path, where: str, shape: str) -> list[tuple[yaml.Node, yaml.Node]]:
    """A mapping node's (key, value) pairs; empty for an empty value."""
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return []
    if not isinstance(node, yaml.MappingNode):
        raise StateFileError(f"{path}:{_line(node)}: {where}: expected a mapping ({shape})")
    return list(node.value)
