"""One accepted configuration change, as stored in a version and replayed by every node.

A change is a *setting*, never an increment: "the RRset www A is now [...]", "the
steered record www2 A of example.com. is now {...}", "zone example.org. now has this
text". Replaying one twice gives the same result, so a node that restarts half-way
through a version, or a store recovering an interrupted commit, just applies it again.
Each change keeps what it replaced (`before`), which makes diffs and rollbacks exact.

A steered record change holds that record's mapping only; every node writes it into
the zone's steering text (gslb/config/steertext.py), which gives the same text from the
same text. The whole-text `steering` kind remains for what does change a whole file
(importing a zones folder, deleting a zone) and for versions stored before records had
changes of their own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

RRSET = "rrset"  # before/after: {"ttl": int, "rdata": [text, ...]} or None (absent)
STEERED = "steered"  # before/after: the steered record's mapping, as in YAML, or None (absent)
STEERING = "steering"  # before/after: the zone's steering YAML text, or None (no file)
ZONE = "zone"  # before/after: the zone file's text, or None (no such zone)
KINDS = (RRSET, STEERED, STEERING, ZONE)
KEEP_VERSIONS = 1000  # versions a store keeps; older ones are deleted as new ones come


def oldest_kept(head: int) -> int:
    """The oldest version a store at `head` still holds (history, diffs and rollbacks
    reach back this far; a follower further behind loads the configuration whole)."""
    return max(1, head - KEEP_VERSIONS + 1)


def same(a: Any, b: Any) -> bool:
    """Equal as data, with true not 1 and 1 not 1.0 (as they read in YAML and JSON)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Change:
    kind: str
    zone: str  # the zone's origin, absolute, lowercase
    name: str = ""  # RRset or steered record owner (absolute, lowercase), else ""
    rtype: str = ""  # its type (e.g. "A"), else ""
    before: Any = None
    after: Any = None

    def inverse(self) -> "Change":
        return Change(self.kind, self.zone, self.name, self.rtype, self.after, self.before)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Change":
        return cls(str(data["kind"]), str(data["zone"]), str(data.get("name") or ""),
                   str(data.get("rtype") or ""), data.get("before"), data.get("after"))


@dataclass(frozen=True)
class Version:
    """An immutable, numbered configuration version: who, when, why, and what changed."""

    number: int
    author: str
    time: float  # seconds since the epoch
    message: str
    changes: tuple[Change, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "author": self.author, "time": self.time,
                "message": self.message, "changes": [c.to_json() for c in self.changes]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Version":
        return cls(int(data["number"]), str(data["author"]), float(data["time"]),
                   str(data.get("message", "")),
                   tuple(Change.from_json(c) for c in data.get("changes", [])))

    def zones(self) -> set[str]:
        return {change.zone for change in self.changes}
