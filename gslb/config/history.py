"""Versions read back: diffs between two versions, rollbacks, the audit trail.

A diff of versions a..b folds the changes of a+1..b per resource: the value before the
first and after the last. A rollback to version n is that fold from n to the head,
undone last first, committed as a new version (history is never rewritten).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import dns.name

from gslb.config import steertext
from gslb.config.changes import RRSET, STEERED, STEERING, ZONE, Change, Version, same
from gslb.config.rrsets import Invalid


def fold(versions: Iterable[Version]) -> list[Change]:
    """One change per resource, in the order they first changed: the first `before`,
    the last `after`; no-ops dropped. A zone's whole steering text and its steered
    records are parts of one file, so a change of either kind after the other starts
    a new run rather than merging into an earlier change (that would reorder them: a
    record change written into a text that a later whole text replaced)."""
    folded: list[Change] = []
    where: dict[tuple[str, str, str, str, int], int] = {}
    runs: dict[str, tuple[str, int]] = {}  # zone -> (kind of its last steering change, run)
    for version in versions:
        for change in version.changes:
            run = 0
            if change.kind in (STEERING, STEERED):
                kind, run = runs.get(change.zone, (change.kind, 0))
                run += kind != change.kind
                runs[change.zone] = (change.kind, run)
            key = (change.kind, change.zone, change.name, change.rtype, run)
            if key not in where:
                where[key] = len(folded)
                folded.append(change)
            else:
                first = folded[where[key]]
                folded[where[key]] = Change(change.kind, change.zone, change.name, change.rtype,
                                            first.before, change.after)
    return [c for c in folded if not same(c.before, c.after)]


def rollback_changes(versions_after_target: list[Version]) -> list[Change]:
    """What takes the configuration from the head back to the target version: the
    folded changes undone, the last first."""
    changes = [c.inverse() for c in reversed(fold(versions_after_target))]
    # Zones come back before what lives in them, and leave after it.
    order = {ZONE: 0, STEERING: 1, STEERED: 1, RRSET: 1}
    return sorted(changes, key=lambda c: order[c.kind] if c.after is not None else 2 - order[c.kind])


@dataclass(frozen=True)
class AuditQuery:
    zone: str | None = None
    name: str | None = None  # absolute, or relative to the zone changed (see `owners`)
    author: str | None = None
    since: float | None = None
    until: float | None = None
    type: str | None = None


def audit(versions: Iterable[Version], query: AuditQuery) -> list[tuple[Version, Change]]:
    """(version, change) pairs matching the query, newest first."""
    found = []
    for version in sorted(versions, key=lambda v: -v.number):
        if query.since is not None and version.time < query.since:
            continue
        if query.until is not None and version.time > query.until:
            continue
        if query.author is not None and version.author != query.author:
            continue
        for change in version.changes:
            if query.zone is not None and change.zone != query.zone:
                continue
            if (query.name is not None or query.type is not None) and not any(
                    (query.name is None or owner in owners(query.name, change.zone))
                    and query.type in (None, rtype) for owner, rtype in concerns(change)):
                continue
            found.append((version, change))
    return found


def owners(name: str, zone: str) -> set[str]:
    """The owners (absolute, lowercase) a name asked for may mean in a zone: a name
    with the final dot is absolute; without, it is either absolute (www.example.com) or
    relative to the zone (www; @ for the apex), as in a zone file."""
    name = name.lower()
    if name.endswith("."):
        return {name}
    if name in ("@", ""):
        return {zone}
    return {f"{name}.", f"{name}.{zone}".replace("..", ".")}


def concerns(change: Change) -> set[tuple[str, str]]:
    """The (owner, type) pairs a change concerns: its RRset's or steered record's; for a
    whole steering text, the steered records that differ between its two texts."""
    if change.kind != STEERING:
        return {(change.name, change.rtype)} if change.name else set()
    origin = dns.name.from_text(change.zone)
    try:
        sides = [steertext.records(text, origin) if text else {}
                 for text in (change.before, change.after)]
    except Invalid:  # a text that is not a mapping: it names no record
        return set()
    return {key for key in set(sides[0]) | set(sides[1])
            if not same(sides[0].get(key), sides[1].get(key))}
