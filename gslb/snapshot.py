"""The immutable state every query reads: the zones (and, later, steering and health).

A new `Snapshot` is built off the hot path and swapped in with one reference
assignment, so a query always sees one consistent version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from gslb.dns.resolver import Zones
from gslb.dns.zone import Zone


@dataclass(frozen=True)
class Snapshot:
    zones: Zones
    version: int = 0

    def replaced_by(self, zones: Iterable[Zone], kept: Iterable[Zone] = ()) -> "Snapshot":
        """The next version: freshly loaded zones plus last-good zones kept from this one."""
        return Snapshot(Zones([*zones, *kept]), self.version + 1)
