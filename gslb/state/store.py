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
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol

import yaml
import yaml.constructor

from gslb.steering.model import Health, Override, SteeredRecord


@dataclass(frozen=True)
class StateView:
    """One consistent, immutable reading of the state.

    `health` is keyed by health key (`check@address` for probed checks, or a bare check
    id), `overrides` by member value; `verdicts` keeps, per health key, each agent's
    latest verdict (for explain and status; decisions read `health`); `store` says where
    the state came from and whether that source is reachable."""

    version: int = 0
    health: dict[str, Health] = field(default_factory=dict)
    rtt: dict[tuple[str, str], float] = field(default_factory=dict)
    overrides: dict[str, Override] = field(default_factory=dict)
    verdicts: dict[str, tuple[AgentVerdict, ...]] = field(default_factory=dict)
    store: StoreStatus | None = None


@dataclass(frozen=True)
class AgentVerdict:
    """One agent's latest verdict on one health key (`at` is wall-clock time)."""

    agent: str
    up: bool
    at: float
    detail: str = ""
    fresh: bool = True  # within the verdict expiry when the view was built
    expires: float | None = None  # the agent's own expiry (wall-clock), if it gave one


@dataclass(frozen=True)
class StoreStatus:
    """Where the state comes from, and since when it is (un)reachable (wall-clock)."""

    source: str  # "in-process", "redis://host:port/0", "redis+sentinel://...": no password
    connected: bool = True
    since: float = 0.0
    error: str = ""
    epoch: int = 0  # the store's state epoch (Redis), 0 in process
    stale: bool = False  # older than the configured max age: the stale policy applies


def content_version(health: dict[str, Health], rtt: dict[tuple[str, str], float],
                    overrides: dict[str, Override] | None = None) -> int:
    """A version derived from what decisions read (up/down, RTTs, override modes), so
    two readings with the same content share cached answers and two with different
    content never do, whichever store or file they came from."""
    content = (tuple(sorted((c, h.up) for c, h in health.items())),
               tuple(sorted(rtt.items())),
               tuple(sorted((v, o.mode) for v, o in (overrides or {}).items())))
    return zlib.crc32(repr(content).encode())


class StateStore(Protocol):
    def view(self) -> StateView: ...


class StateFileError(ValueError):
    """The state file is malformed; the message names the file and the field."""


class InProcessStore:
    """State held in this process (the embedded default, no Redis)."""

    def __init__(self, clock=time.monotonic, wall=time.time) -> None:
        self._clock = clock
        self._wall = wall
        self._health: dict[str, tuple[bool, str, float]] = {}
        self._rtt: dict[tuple[str, str], float] = {}
        self.overrides: dict[str, tuple[str, float]] = {}  # value -> (mode, until, wall time)
        self.check_lines: dict[str, str] = {}  # check id -> file:line, when read from a file

    def set_health(self, check: str, up: bool, source: str = "in-process") -> None:
        self._health[check] = (up, source, self._clock())

    def set_rtt(self, client: str, datacenter: str, milliseconds: float) -> None:
        self._rtt[(client, datacenter)] = milliseconds

    def set_override(self, value: str, mode: str, until: float) -> None:
        self.overrides[value] = (mode, until)

    def active_overrides(self) -> dict[str, Override]:
        """The overrides that have not expired yet."""
        now = self._wall()
        return {value: Override(mode, f"until {format_time(until)}")
                for value, (mode, until) in self.overrides.items() if until > now}

    def view(self) -> StateView:
        """The state now, versioned by `content_version`."""
        overrides = self.active_overrides()
        now = self._clock()
        health = {
            check: Health(up=up, source=source, age=max(0.0, now - since))
            for check, (up, source, since) in self._health.items()
        }
        return StateView(content_version(health, self._rtt, overrides), health, dict(self._rtt),
                         overrides)

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
        """Load `health: {check: up|down}`, `rtt: {client: {datacenter: ms}}` and
        `overrides: {value: {mode, until}}` (YAML).

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
            elif key.value == "overrides":
                for item, entry in _pairs(value, path, "overrides", "value: {mode, until}"):
                    mode, until = _override(f"{path}:{_line(item)}", str(item.value),
                                            _CONSTRUCTOR.construct_document(entry))
                    store.set_override(str(item.value), mode, until)
            else:
                raise StateFileError(f"{where}: unknown key {key.value!r} (expected health, rtt, "
                                     "overrides)")
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


OVERRIDE_MODES = ("up", "down", "drain")


def format_time(when: float) -> str:
    """A wall-clock time as ISO 8601 UTC, to the second."""
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _override(path: Path | str, value: str, entry: object) -> tuple[str, float]:
    """`{mode: up|down|drain, until: ISO-8601 time or Unix seconds}` from the state file."""
    where = f"{path}: overrides.{value}"
    if not isinstance(entry, dict) or set(entry) - {"by", "reason"} != {"mode", "until"}:
        raise StateFileError(f"{where}: expected {{mode: up|down|drain, until: TIME}} (and "
                             "optionally by: WHO, reason: TEXT)")
    if entry["mode"] not in OVERRIDE_MODES:
        raise StateFileError(f"{where}.mode: expected up, down or drain, got {entry['mode']!r}")
    until = entry["until"]
    if isinstance(until, datetime):
        until = (until if until.tzinfo else until.replace(tzinfo=timezone.utc)).timestamp()
    elif isinstance(until, str):
        try:
            until = datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise StateFileError(f"{where}.until: not an ISO 8601 time: {until!r}") from None
    if not isinstance(until, (int, float)) or isinstance(until, bool):
        raise StateFileError(f"{where}.until: expected an ISO 8601 time or Unix seconds")
    return entry["mode"], float(until)
