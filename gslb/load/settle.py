"""Which steered records a load serves, given what served before.

A steering file is edited by hand, so a reload must not turn one typo into a wrong
answer that resolvers cache: a record left out for a problem keeps its last good version
(the other records of the file apply), and a record with no good version at all (at
start, or added broken) answers SERVFAIL instead of NXDOMAIN. A zone whose file failed
to load is kept whole: its last good zone data with exactly its previous steering.

Pure bookkeeping over loaded data; the server logs the notes.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import dns.name

from gslb.dns.zone import Zone, record_types, to_wire
from gslb.load.steering import SteeringLoad, zone_conflict
from gslb.steering.model import SteeredRecord

Key = tuple[str, str]


def settle(load: SteeringLoad, previous: Mapping[Key, SteeredRecord], zones: Iterable[Zone],
           kept: Iterable[dns.name.Name] = ()) -> tuple[dict[Key, SteeredRecord], list[str]]:
    """The records to serve, and one note per record carried over or standing in.

    `zones` are every zone the next snapshot serves (as loaded, without stand-ins),
    `kept` the origins of those kept from before because their file failed."""
    # only when a record is to be placed: a dnspython name hashes in Python (a microsecond)
    by_origin = {zone.origin: zone for zone in zones} if previous or load.broken else {}
    kept_origins = set(kept)
    records = dict(load.records)
    notes: list[str] = []
    for key, record in previous.items():
        zone = _zone_of(record.owner, by_origin)
        if key in records or zone is None:
            continue
        if zone.origin in kept_origins:
            records[key] = record  # the zone and its steering stay exactly as they were
        elif not record.unusable and _left_out(record, load):
            conflict = zone_conflict(record.owner, record.rdtype, zone)
            if conflict is None:
                records[key] = record
                notes.append(f"{record.source}: {record.owner} {record.rdtype}: keeping the last good "
                             "version of this record until its problem is fixed")
            else:
                notes.append(f"{record.source}: {record.owner} {record.rdtype}: dropped, {conflict}")
    for (owner, rdtype), source in sorted(load.broken.items(), key=lambda item: item[1]):
        stand_in = _stand_in(owner, rdtype, source, records, by_origin)
        if stand_in is not None:
            records[(stand_in.owner, stand_in.rdtype)] = stand_in
            notes.append(f"{source}: {owner} {stand_in.rdtype}: no valid version of this steered "
                         "record; answering SERVFAIL for it until its problem is fixed")
    return records, notes


def _left_out(record: SteeredRecord, load: SteeringLoad) -> bool:
    """Was this record (or its whole file) left out of `load` for a problem?"""
    file = record.source.rpartition(":")[0]
    return (file in load.broken_files or (record.owner, record.rdtype) in load.broken
            or (record.owner, None) in load.broken)


def _stand_in(owner: str, rdtype: str | None, source: str, records: Mapping[Key, SteeredRecord],
              by_origin: Mapping[dns.name.Name, Zone]) -> SteeredRecord | None:
    """A SERVFAIL record for a broken one that nothing else answers: never NXDOMAIN (or
    NODATA) for a name the operator meant to steer. None when the zone's own data or
    another steered record answers there (the problem is logged either way)."""
    zone = _zone_of(owner, by_origin)
    if zone is None:
        return None
    steered = {key[1] for key in records if key[0] == owner}
    if steered and (rdtype in (None, "CNAME") or steered & {rdtype, "CNAME"}):
        return None
    wire = to_wire(dns.name.from_text(owner)).lower()
    types = record_types(zone.records.get(wire, b""))
    if types and (rdtype is None or zone_conflict(owner, rdtype, zone) is not None):
        return None
    if zone_conflict(owner, rdtype or "A", zone) is not None:  # at or below a zone cut
        return None
    type_ = rdtype or "CNAME"  # type unreadable: a steered CNAME answers every type
    return SteeredRecord.stand_in(owner, type_, source, "see the problems reported for this line")


def _zone_of(owner: str, by_origin: Mapping[dns.name.Name, Zone]) -> Zone | None:
    """The most specific zone that holds `owner`."""
    name = dns.name.from_text(owner)
    while True:
        zone = by_origin.get(name)
        if zone is not None or name == dns.name.root:
            return zone
        name = name.parent()
