"""Where steering meets what is around it: the zone's own data, and the GeoIP databases.

A steered name must not collide with the zone (same type, CNAME rules, zone cuts, a
pre-signed zone); `zone_conflict` answers that for one name, so a reload can tell
whether a record's last good version still fits the zone as it is now. `geo_warnings`
finds rules that the GeoIP databases given can never match: warnings, not errors.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import dns.name
import dns.rdatatype

from gslb.dns.zone import Zone, record_types, to_wire
from gslb.load.yamlcheck import Checker
from gslb.load.zonefile import Problem
from gslb.steering.model import SteeredRecord

def static_conflicts(check: Checker, where: str, node: int, owner: str, rdtype: str,
                     zone: Zone) -> None:
    """A steered name must not collide with the zone's own data: the same type, a CNAME
    there, any data at a steered CNAME's name, or a delegation at or above it. Nor may it
    sit in a pre-signed zone: its answer is chosen per query, and no signature made in
    advance covers it (there is no online signing)."""
    if zone.signed:
        check.add(node, where, f"the zone {zone.origin} is DNSSEC-signed: steered answers "
                  "cannot be pre-signed; serve steered names from an unsigned child zone "
                  "delegated from the signed one (see README, DNSSEC)")
        return
    name = dns.name.from_text(owner)
    wire = to_wire(name).lower()
    apex = zone.origin_wire
    cursor = wire
    while len(cursor) > len(apex):
        if cursor in zone.cuts:
            cut = dns.name.from_wire(cursor, 0)[0].to_text().lower()
            relation = "at" if cursor == wire else "below"
            check.add(node, where, f"the name is {relation} the zone cut {cut} (delegated away)")
            return
        cursor = cursor[cursor[0] + 1:]
    blob = zone.records.get(wire)
    if blob is None:
        return
    types = sorted(dns.rdatatype.to_text(dns.rdatatype.RdataType(t)) for t in record_types(blob))
    if rdtype == "CNAME":
        check.add(node, where, f"the zone also has data at this name ({', '.join(types)})")
    elif "CNAME" in types:
        check.add(node, where, "the zone has a CNAME at this name")
    elif rdtype in types:
        check.add(node, where, f"the zone also has {rdtype} records at this name")


def zone_conflict(owner: str, rdtype: str, zone: Zone) -> str | None:
    """Why a steered `owner`/`rdtype` cannot sit in `zone` as it is now, or None."""
    check = Checker(zone.source)
    static_conflicts(check, "", 0, owner, rdtype, zone)
    return check.problems[0].message if check.problems else None


def geo_warnings(records: Mapping[tuple[str, str], SteeredRecord], database_types: Iterable[str]
                 ) -> list[Problem]:
    """Rules that can never match with these GeoIP databases (`--geoip`): `geos` needs a
    City or Country database, `asns` an ASN one. Not errors (the rest of the record
    steers), but the operator almost certainly meant them to match."""
    types = [t.lower() for t in database_types]
    has_geo = any("asn" not in t for t in types)
    has_asn = any("asn" in t for t in types)
    warnings = []
    for record in records.values():
        for number, rule in enumerate(record.rules, 1):
            missing = []
            if rule.geos and not has_geo:
                missing.append("geos need a City or Country database")
            if rule.asns and not has_asn:
                missing.append("asns need an ASN database")
            if missing:
                file, _, line = record.source.rpartition(":")
                warnings.append(Problem(file, int(line), f"{record.owner} {record.rdtype}: rule {number} "
                                        f"never matches: {' and '.join(missing)} (--geoip)"))
    return warnings
