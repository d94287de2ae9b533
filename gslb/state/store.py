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
from typing import Protocol

import yaml

from gslb.steering.model import Health


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

    @classmethod
    def from_file(cls, path: Path) -> "InProcessStore":
        """Load `health: {check: up|down}` and `rtt: {client: {datacenter: ms}}` (YAML)."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise StateFileError(f"{path}: cannot read state file: {exc}") from None
        if not isinstance(data, dict):
            raise StateFileError(f"{path}: expected a mapping with 'health' and 'rtt'")
        unknown = sorted(set(data) - {"health", "rtt"})
        if unknown:
            raise StateFileError(f"{path}: unknown keys: {', '.join(map(str, unknown))}")
        store = cls()
        for check, status in (data.get("health") or {}).items():
            if status not in ("up", "down"):
                raise StateFileError(f"{path}: health.{check}: expected 'up' or 'down', got {status!r}")
            store.set_health(str(check), status == "up", source=f"file {path.name}")
        for client, per_dc in (data.get("rtt") or {}).items():
            if not isinstance(per_dc, dict):
                raise StateFileError(f"{path}: rtt.{client}: expected datacenter: milliseconds")
            for datacenter, ms in per_dc.items():
                if not isinstance(ms, (int, float)) or ms < 0:
                    raise StateFileError(f"{path}: rtt.{client}.{datacenter}: expected milliseconds >= 0")
                store.set_rtt(str(client), str(datacenter), float(ms))
        return store
