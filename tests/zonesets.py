"""Zone folders several tests share, loaded through the real loader."""

from __future__ import annotations

from pathlib import Path

from gslb.dns.resolver import Zones
from gslb.load.zonefile import load_zone_file

# The Knot differential zones: every authoritative case in three zones.
INTEROP_ZONES = Path(__file__).resolve().parent / "interop" / "zones"


def load_zone_dir(directory: Path = INTEROP_ZONES) -> Zones:
    """Every `*.zone` in the folder; a zone that does not load fails the test."""
    loaded = []
    for path in sorted(directory.glob("*.zone")):
        zone, problems = load_zone_file(path)
        assert zone is not None, problems
        loaded.append(zone)
    return Zones(loaded)
