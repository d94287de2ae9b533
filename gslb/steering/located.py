"""What `closest` and `latency` decisions depend on, as small numbers: location classes.

A steered answer is cached under a key saying everything its decision depends on
(`gslb.steering.front.Steering.bucket`). For these two policies that used to be the
client's location network itself, so every new client network cost a Python render.
Their decisions depend on much less:

- `closest`: only on the order of the record's datacenters by distance from the client's
  coordinates, and on which of them are within the policy's tie margin of each other
  (or on there being no coordinates). Each entry of the `LocationMap` (a distinct place
  and coordinates of the databases) gets the id of that ranking, once per distinct set of
  datacenter coordinates, computed with the policy's own distance function.
- `latency`: only on which keys of the RTT table `rtt_key` would try for the client, in
  order: the network keys holding the client network (an id per set of them, from a
  small map of the table's network keys; which of them count also depends on the client
  network's length, which is in the key as the scope) and the region keys of its place
  that have a measurement (an id per place's list). The RTT values are in the record's
  version already.

Ids are the same in Python and C because both read them from these arrays; 0 is "no
coordinates" / "no key", `UNSERVABLE` an entry only Python can place (odd coordinates).
"""

from __future__ import annotations

import ipaddress
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import _geomap  # type: ignore[attr-defined]
from .geo import HAS_LATITUDE, HAS_LONGITUDE, ODD_LATITUDE, ODD_LONGITUDE, WIDTH, LocationMap
from .model import Datacenter, IPNetwork
from .policies import CLOSEST_MARGIN_KM, great_circle_km, region_keys

UNSERVABLE = -2
RANKINGS_KEPT = 64  # sets of datacenter coordinates whose closest classes a map keeps

Coordinates = tuple[tuple[str, float, float], ...]  # (datacenter, latitude, longitude), sorted


def coordinates_of(datacenters: Mapping[str, Datacenter]) -> Coordinates:
    """The datacenters `closest` can measure a distance to: what its classes depend on."""
    return tuple(sorted((name, dc.latitude, dc.longitude) for name, dc in datacenters.items()
                        if dc.latitude is not None and dc.longitude is not None))


def ranking(latitude: float, longitude: float, datacenters: Coordinates) -> tuple:
    """The datacenters nearest first (ties by name), and for each pair, whether the later
    one is within the margin of the earlier: `closest` keeps, of any set of candidates,
    those within the margin of the first, so this is all its answer depends on."""
    distance = {name: great_circle_km(latitude, longitude, lat, lon) for name, lat, lon in datacenters}
    order = sorted(distance, key=lambda name: (distance[name], name))
    near = tuple(distance[later] <= distance[earlier] + CLOSEST_MARGIN_KM
                 for i, earlier in enumerate(order) for later in order[i + 1:])
    return tuple(order), near


def closest_classes(locations: LocationMap | None, datacenters: Coordinates) -> bytes:
    """Each entry's ranking id (native int32): 0 without coordinates, `UNSERVABLE` where
    a coordinate is not a number the walk reads. Kept with the map (`rankings`)."""
    if locations is None:
        return b""
    known = locations.rankings.get(datacenters)
    if known is None:
        if len(locations.rankings) >= RANKINGS_KEPT:
            locations.rankings.clear()
        known = locations.rankings[datacenters] = _closest_classes(locations, datacenters)
    return known


def _closest_classes(locations: LocationMap, datacenters: Coordinates) -> bytes:
    ids: dict[tuple, int] = {(): 0}
    by_point: dict[tuple[float, float], int] = {}
    out = array("i")
    both = HAS_LATITUDE | HAS_LONGITUDE
    for entry in range(len(locations)):
        bits = locations.coordinates[entry]
        if bits & (ODD_LATITUDE | ODD_LONGITUDE):
            out.append(UNSERVABLE)
            continue
        if bits & both != both:
            out.append(0)
            continue
        point = (locations.latitude[entry], locations.longitude[entry])
        known = by_point.get(point)
        if known is None:
            key = ranking(*point, datacenters)
            known = by_point[point] = ids.setdefault(key, len(ids))
        out.append(known)
    return out.tobytes()


@dataclass(frozen=True)
class LatencyClasses:
    """The classes of one RTT table's keys: per location entry, the id of its measured
    region keys; per family, runs of the id of the set of measured network keys holding
    each address (big-endian starts, native int32 ids); and whether the table has
    network keys at all (then the client network's length is the answer's scope)."""

    keys: frozenset[str]
    network_keys: bool
    regions: bytes
    nets: dict[int, tuple[bytes, bytes]]

    @classmethod
    def build(cls, keys: Iterable[str], locations: LocationMap | None) -> LatencyClasses:
        keys = frozenset(keys)
        ids: dict[tuple[str, ...], int] = {(): 0}
        regions = array("i")
        if locations is not None:
            by_place = [ids.setdefault(tuple(k for k in region_keys(*place) if k in keys), len(ids))
                        for place in locations.places]
            regions = array("i", (by_place[p] for p in locations.place))
        networks: list[IPNetwork] = []
        for key in keys:
            try:
                network = ipaddress.ip_network(key)
            except ValueError:
                continue
            if str(network) == key:  # `rtt_key` asks for networks as str() writes them
                networks.append(network)
        return cls(keys, any("/" in key for key in keys), regions.tobytes(),
                   {version: _net_runs([n for n in networks if n.version == version], version)
                    for version in (4, 6)})

    def net(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
        """The id of the measured network keys holding the address."""
        starts, ids = self.nets[address.version]
        index = _geomap.find(starts, WIDTH[address.version], address.packed)
        return memoryview(ids).cast("i")[index]


def _net_runs(networks: list[IPNetwork], version: int) -> tuple[bytes, bytes]:
    """The family as runs of the id of the set of networks holding them (0: none), by a
    sweep over the networks' starts and ends."""
    events: dict[int, list[tuple[int, IPNetwork]]] = {}
    top = 1 << (32 if version == 4 else 128)
    for network in networks:
        events.setdefault(int(network.network_address), []).append((1, network))
        end = int(network.broadcast_address) + 1
        if end < top:
            events.setdefault(end, []).append((-1, network))
    ids: dict[frozenset[IPNetwork], int] = {frozenset(): 0}
    active: set[IPNetwork] = set()
    starts, values = bytearray(), array("i")
    for point in sorted(events.keys() | {0}):
        for kind, network in events.get(point, ()):
            if kind > 0:
                active.add(network)
            else:
                active.discard(network)
        ident = ids.setdefault(frozenset(active), len(ids))
        if values and values[-1] == ident:
            continue
        starts += point.to_bytes(WIDTH[version], "big")
        values.append(ident)
    return bytes(starts), values.tobytes()
