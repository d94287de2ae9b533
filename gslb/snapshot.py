"""The immutable state every query reads: the zones, their steering and the health
and latency state it decides with, and the answer cache that belongs to exactly that state.

A new `Snapshot` is built off the hot path and swapped in with one reference
assignment, so a query always sees one consistent version, and a cached answer can
never outlive the data it was rendered from.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from gslb.dns.answers import AnswerCache, WireIndex
from gslb.dns.resolver import Zones
from gslb.dns.zone import Zone
from gslb.steering.front import Steering, with_placeholders
from gslb.steering.model import Health, Override

DEFAULT_CACHE_ENTRIES = 100_000  # per generation (so up to twice that); see AnswerCache


class Snapshot:
    __slots__ = ("zones", "loaded", "version", "answers", "steering")

    def __init__(self, zones: Zones, version: int = 0,
                 cache_entries: int = DEFAULT_CACHE_ENTRIES,
                 steering: Steering | None = None,
                 answers: AnswerCache | None = None, loaded: tuple[Zone, ...] = ()) -> None:
        self.zones = zones
        # The zones as their files gave them, before steering stand-ins went in: what a
        # reload keeps of a zone whose file broke, so its steering applies to it again
        # exactly as before (a zone with stand-ins would clash with its own steering).
        self.loaded = loaded or tuple(zones)
        self.version = version
        self.answers = answers if answers is not None else AnswerCache(WireIndex(zones), cache_entries)
        self.steering = steering

    def with_state(self, health: Mapping[str, Health], rtt: Mapping[tuple[str, str], float],
                   overrides: Mapping[str, Override], state_version: int) -> "Snapshot":
        """The same zones and the same answer cache with steering over a new health,
        override and RTT reading. Static answers stay cached; a steered answer's key
        carries its own record's state version (`Steering.with_state`), so only the
        records whose members changed are decided again."""
        if self.steering is None:
            return self
        steering = self.steering.with_state(health, rtt, overrides, state_version)
        return Snapshot(self.zones, self.version, self.answers.capacity, steering, self.answers,
                        self.loaded)

    def with_steering(self, steering: Steering) -> "Snapshot":
        """The same zones and the same answer cache with steering over replaced geo
        databases (`Steering.with_rule_maps`): every cached answer holds under any
        database, so none is dropped."""
        return Snapshot(self.zones, self.version, self.answers.capacity, steering, self.answers,
                        self.loaded)

    def replaced_by(self, zones: Iterable[Zone], kept: Iterable[Zone] = (),
                    steering: Steering | None = None) -> "Snapshot":
        """The next version: freshly loaded zones plus last-good zones kept from this one
        (from `loaded`), with steering stand-ins put into the zones that hold steered names."""
        loaded = (*zones, *kept)
        every = list(loaded)
        if steering is not None and steering.records:
            every = [with_placeholders(zone, steering.records) for zone in every]
        return Snapshot(Zones(every), self.version + 1, self.answers.capacity, steering,
                        loaded=loaded)
