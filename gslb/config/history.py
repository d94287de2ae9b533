"""Versions read back: diffs between two versions, rollbacks, the audit trail.

A diff of versions a..b folds the changes of a+1..b per resource: the value before the
first and after the last. A rollback to version n is that fold from n to the head,
inverted, committed as a new version (history is never rewritten).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import dns.name

from gslb.config import steertext
from gslb.config.changes import Change, Version


def fold(versions: Iterable[Version]) -> list[Change]:
    """One change per resource: the first `before`, the last `after`; no-ops dropped."""
    folded: dict[tuple[str, str, str, str], Change] = {}
    for version in versions:
        for change in version.changes:
            key = (change.kind, change.zone, change.name, change.rtype)
            first = folded.get(key)
            folded[key] = change if first is None else Change(
                change.kind, change.zone, change.name, change.rtype, first.before, change.after)
    return [c for c in folded.values() if c.before != c.after]


def rollback_changes(versions_after_target: list[Version]) -> list[Change]:
    """What takes the configuration from the head back to the target version."""
    changes = [c.inverse() for c in fold(versions_after_target)]
    # Zones come back before what lives in them, and leave after it.
    order = {"zone": 0, "steering": 1, "rrset": 1}
    return sorted(changes, key=lambda c: order[c.kind] if c.after is not None else 2 - order[c.kind])


@dataclass(frozen=True)
class AuditQuery:
    zone: str | None = None
    name: str | None = None
    author: str | None = None
    since: float | None = None
    until: float | None = None


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
            if query.name is not None and query.name not in names(change):
                continue
            found.append((version, change))
    return found


def names(change: Change) -> set[str]:
    """The names a change concerns: the RRset's owner, or the steered records whose
    definition differs between the steering file's two texts."""
    if change.kind != "steering":
        return {change.name} if change.name else set()
    origin = dns.name.from_text(change.zone)
    sides = []
    for text in (change.before, change.after):
        doc = steertext.load(text, origin) if text else None
        sides.append({(owner, rtype): steertext.plain(item)
                      for owner, rtype, item in (steertext.entries(doc, origin) if doc else ())})
    return {owner for owner, rtype in set(sides[0]) | set(sides[1])
            if sides[0].get((owner, rtype)) != sides[1].get((owner, rtype))}
