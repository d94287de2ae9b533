"""Accepting a configuration change: lock, catch up, plan, validate, commit, apply.

The API (and the token-free tools) go through `ConfigService.commit`; it is the one
place where a change becomes a version. A node is what holds a `LiveConfig`: the DNS
server in embedded mode (the new version is live in the committing process's snapshot
before the HTTP reply goes out; the API then waits for the node's other workers, see
gslb/server/served.py) or a bare holder when the API runs alone. Versions committed
elsewhere reach a DNS node through its one follower (gslb/config/follower.py); the API
catches up with the store itself before it reads or plans.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Callable, ContextManager, Protocol

import dns.name

from gslb.config.changes import RRSET, STEERED, STEERING, ZONE, Change, Version
from gslb.config.live import LiveConfig, replay
from gslb.config.rrsets import next_serial, rrset_of, serial_newer

Plan = Callable[[LiveConfig], list[Change]]


class ConfigStore(Protocol):
    """Where versions are kept: the zones folder (FileStore) or Redis (RedisStore)."""

    def head(self) -> int: ...
    def version(self, number: int) -> Version | None: ...
    def versions_after(self, number: int) -> list[Version]: ...
    def locked(self) -> ContextManager[None]: ...
    def commit(self, before: LiveConfig, after: LiveConfig, changes: list[Change], author: str,
               message: str) -> Version: ...
    def write_files(self, before: LiveConfig, after: LiveConfig, version: Version) -> None: ...
    def written(self) -> int: ...
    def recover(self, live: LiveConfig) -> bool: ...


class Node(Protocol):
    live: LiveConfig

    def adopt(self, live: LiveConfig) -> None: ...


class Holder:
    """A node without DNS: just the configuration (the API alone, tests)."""

    def __init__(self, live: LiveConfig) -> None:
        self.live = live

    def adopt(self, live: LiveConfig) -> None:
        self.live = live


@dataclass(frozen=True)
class Outcome:
    version: Version | None  # None for a dry run (or a change that changes nothing)
    before: LiveConfig
    after: LiveConfig
    changes: list[Change]


class ConfigService:
    def __init__(self, store: ConfigStore, node: Node) -> None:
        self.store = store
        self.node = node
        self._lock = threading.Lock()

    def current(self) -> LiveConfig:
        """The latest configuration (versions other processes committed included)."""
        self.catch_up()
        return self.node.live

    def catch_up(self) -> int:
        """Apply versions committed elsewhere; how many."""
        with self._lock:
            return self._catch_up()

    def _catch_up(self) -> int:
        if self.store.head() <= self.node.live.version:
            return 0
        return self._apply(self.store.versions_after(self.node.live.version))

    def apply(self, versions: list[Version]) -> int:
        """Apply versions a follower delivered (those not applied yet, in order); how
        many."""
        with self._lock:
            return self._apply(versions)

    def _apply(self, versions: list[Version]) -> int:
        before = self.node.live.version
        replayed = replay(self.node.live, versions)
        if replayed.live.version > before:
            self.node.adopt(replayed.live)
        if replayed.failed is not None:
            raise replayed.failed[1]
        return replayed.live.version - before

    def commit(self, plan: Plan, author: str, message: str, dry_run: bool = False) -> Outcome:
        """Plan against the latest configuration and commit, all or nothing. `plan`
        raises Invalid (or a precondition error) to refuse; nothing is written then."""
        with self._lock, self.store.locked():
            self._catch_up()
            before = self.node.live
            changes = [as_stored(c) for c in with_serials(before, plan(before))]
            if not changes:
                return Outcome(None, before, before, [])
            after = before.apply(changes, before.version + 1)
            if dry_run:
                return Outcome(None, before, after, changes)
            version = self.store.commit(before, after, changes, author, message)
            self.node.adopt(after)  # DNS answers change now; the files follow
            self.store.write_files(before, after, version)
            return Outcome(version, before, after, changes)


def as_stored(change: Change) -> Change:
    """A steered record change as every other node reads it from the store (JSON's
    types), so this node writes it into the steering text exactly as they will."""
    if change.kind != STEERED:
        return change
    return Change.from_json(json.loads(json.dumps(change.to_json(), default=str)))


def with_serials(live: LiveConfig, changes: list[Change]) -> list[Change]:
    """Every zone whose content changes gets its SOA serial bumped (RFC 1982), unless the
    change itself sets a newer serial."""
    touched = {c.zone for c in changes if c.kind in (RRSET, STEERED, STEERING)}
    created_or_deleted = {c.zone for c in changes if c.kind == ZONE}
    result = list(changes)
    for zone_text in sorted(touched - created_or_deleted):
        origin = dns.name.from_text(zone_text)
        zone = live.zones.get(origin)
        if zone is None:
            continue
        current = zone.serial()
        own = [c for c in changes if c.zone == zone_text and c.kind == RRSET and c.rtype == "SOA"]
        if own and own[-1].after and serial_newer(int(own[-1].after["rdata"][0].split()[2]), current):
            continue
        base = own[-1].after if own and own[-1].after else rrset_of(zone, origin, "SOA")
        assert base is not None
        fields = base["rdata"][0].split()
        fields[2] = str(next_serial(current))
        after = {"ttl": base["ttl"], "rdata": [" ".join(fields)]}
        result = [c for c in result if c not in own]
        result.append(Change(RRSET, zone_text, origin.to_text(), "SOA",
                             rrset_of(zone, origin, "SOA"), after))
    return result
