"""One RRset, checked and encoded the way `gslb check` would see it in the zone file.

The API changes a zone one RRset at a time, so it checks the rules of `gslb check` that
one RRset can break, around that name only (never a pass over the whole zone): the name
is inside the zone; the rdata parses (dnspython); TTLs fit RFC 2181's range; a CNAME is
alone at its name and single; a SOA sits only at the apex, and the apex keeps its SOA
and NS; NS targets inside the zone have an address record, and an address record that
is such a target is not removed; no static data collides with a steered record. Every
problem is reported with the request field it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from gslb.dns.zone import RECORD, Zone, iter_records, record_types, to_wire
from gslb.load.zoneparse import rdata_from_text
from gslb.steering.model import SteeredRecord

MAX_TTL = 2**31 - 1  # RFC 2181 section 8
SERIAL_MODULO = 2**32  # RFC 1982 serial number arithmetic, SERIAL_BITS = 32
_COMPANIONS = {"RRSIG", "NSEC", "NSEC3", "CNAME"}
IN = dns.rdataclass.IN


@dataclass(frozen=True)
class FieldProblem:
    """One reason a request is refused: the JSON path of the field, and why."""

    field: str
    message: str


class Invalid(Exception):
    """A change broke at least one rule; nothing was changed."""

    def __init__(self, problems: list[FieldProblem], status: int = 422) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems
        self.status = status


def owner_name(zone: Zone, text: str, field: str = "name") -> dns.name.Name:
    """A name given relative to the zone (`www`, `@`) or absolute, inside the zone."""
    try:
        name = zone.origin if text in ("@", "") else dns.name.from_text(text, zone.origin)
    except dns.exception.DNSException as exc:
        raise Invalid([FieldProblem(field, f"{text!r} is not a valid name: {exc}")]) from None
    if not name.is_subdomain(zone.origin):
        raise Invalid([FieldProblem(field, f"{name} is outside the zone {zone.origin}")])
    return name.canonicalize()


def rdata_type(text: str, field: str = "type") -> str:
    try:
        rtype = dns.rdatatype.from_text(text.upper())
    except dns.exception.DNSException:
        raise Invalid([FieldProblem(field, f"unknown record type {text!r}")]) from None
    if dns.rdatatype.is_metatype(rtype) or rtype in (dns.rdatatype.OPT, dns.rdatatype.TSIG):
        raise Invalid([FieldProblem(field, f"{text} is not a record type a zone can hold")])
    return dns.rdatatype.to_text(rtype)


def parse_rdata(zone: Zone, rtype: str, texts: list[str]) -> list[str]:
    """Each rdata in canonical text with absolute names; every bad one is reported."""
    problems = []
    parsed = []
    for index, text in enumerate(texts):
        control = next((c for c in text if ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F), None)
        if control is not None:
            problems.append(FieldProblem(f"rdata[{index}]", f"contains the control character "
                                         f"{ord(control):#04x}: write it escaped (\\{ord(control):03d})"))
            continue
        if rtype in ("TXT", "SPF") and not text.lstrip().startswith('"') and len(text.split()) > 1:
            quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
            problems.append(FieldProblem(f"rdata[{index}]", f"{text!r} would be {len(text.split())} "
                                         f"strings (rdata is zone-file text): write {quoted} for "
                                         "one string, or quote each string"))
            continue
        try:
            rdata = rdata_from_text(dns.rdatatype.from_text(rtype), text, zone.origin)
            parsed.append(rdata.to_text(origin=None, relativize=False).rstrip())
        except (dns.exception.DNSException, ValueError) as exc:
            problems.append(FieldProblem(f"rdata[{index}]", f"not valid {rtype} data: {exc}"))
    if problems:
        raise Invalid(problems)
    return list(dict.fromkeys(parsed))


def occluded(zones: Mapping[dns.name.Name, Zone], zone: Zone, owner: dns.name.Name,
             rtype: str) -> FieldProblem | None:
    """Why data at `owner` in `zone` would never be answered, or None: it lies at or
    below a delegation of `zone` (where only NS and DS at the cut, and glue addresses
    below it, belong), or in a child zone this server also serves that `zone` does not
    delegate."""
    name = owner
    while name != zone.origin and name.is_subdomain(zone.origin):
        ns = rrset_of(zone, name, "NS")
        if ns is not None:
            at_cut = name == owner
            glue = rtype in ("A", "AAAA") and owner in {dns.name.from_text(t) for t in ns["rdata"]}
            if at_cut and rtype in ("NS", "DS") or not at_cut and glue:
                return None
            return FieldProblem("name", f"{owner} is {'at' if at_cut else 'below'} the "
                                f"delegation {name}: {rtype} data there is never answered "
                                "(only NS and DS at the cut, and the addresses of the name "
                                "servers it names below it)")
        name = name.parent()
    for origin in zones:
        if origin != zone.origin and origin.is_subdomain(zone.origin) and owner.is_subdomain(origin):
            return FieldProblem("name", f"{owner} is in zone {origin}, which this server also "
                                "serves: write it there (here it would never be answered)")
    return None


def rrset_of(zone: Zone, owner: dns.name.Name, rtype: str) -> dict | None:
    """The RRset as the API shows it: {"ttl", "rdata": [...]} or None."""
    code = dns.rdatatype.from_text(rtype)
    blob = zone.records.get(to_wire(owner).lower(), b"")
    texts, ttl = [], None
    for rdtype, record_ttl, wire in iter_records(blob):
        if rdtype == code:
            rdata = dns.rdata.from_wire(IN, code, wire, 0, len(wire))
            texts.append(rdata.to_text(origin=None, relativize=False).rstrip())
            ttl = record_ttl if ttl is None else min(ttl, record_ttl)
    return {"ttl": ttl, "rdata": texts} if texts else None


def types_at(zone: Zone, owner: dns.name.Name) -> list[str]:
    blob = zone.records.get(to_wire(owner).lower(), b"")
    return sorted(dns.rdatatype.to_text(dns.rdatatype.RdataType(t)) for t in record_types(blob))


def owner_blob(blob: bytes, rtype: str, after: dict | None) -> bytes:
    """An owner's records (`blob`) with the RRset of `rtype` replaced by `after` (None:
    removed)."""
    code = dns.rdatatype.from_text(rtype)
    kept = b"".join(RECORD.pack(t, ttl, len(w)) + w for t, ttl, w in iter_records(blob) if t != code)
    if after is None:
        return kept
    added = b""
    for text in after["rdata"]:
        wire = to_wire(rdata_from_text(code, text, dns.name.root))
        added += RECORD.pack(code, after["ttl"], len(wire)) + wire
    return kept + added


def check_rrset(zone: Zone, owner: dns.name.Name, rtype: str, after: dict | None,
                steered: Mapping[tuple[str, str], SteeredRecord]) -> list[FieldProblem]:
    """The rules of `gslb check` this one RRset change could break."""
    if zone.signed:
        raise Invalid([FieldProblem("zone", f"zone {zone.origin} is DNSSEC-signed: change "
                                    "it where it is signed, then replace the zone")], 409)
    problems: list[FieldProblem] = []
    apex = owner == zone.origin
    others = [t for t in types_at(zone, owner) if t != rtype]
    if after is None:
        if apex and rtype in ("SOA", "NS"):
            problems.append(FieldProblem("type", f"the zone apex must keep its {rtype} records"))
        if rtype in ("A", "AAAA") and not ({"A", "AAAA"} & set(others)):
            problems += _glue_needed(zone, owner)
        return problems
    if not 0 <= after["ttl"] <= MAX_TTL:
        problems.append(FieldProblem("ttl", f"TTL {after['ttl']} is out of range 0..{MAX_TTL}"))
    if not after["rdata"]:
        problems.append(FieldProblem("rdata", "an RRset needs at least one record (DELETE removes it)"))
    if rtype == "SOA" and not apex:
        problems.append(FieldProblem("name", f"SOA record at {owner}, which is not the zone apex"))
    if rtype == "SOA" and len(after["rdata"]) > 1:
        problems.append(FieldProblem("rdata", "more than one SOA record at the apex"))
    if rtype == "CNAME":
        if len(after["rdata"]) > 1:
            problems.append(FieldProblem("rdata", f"more than one CNAME record at {owner}"))
        beside = [t for t in others if t not in _COMPANIONS]
        if beside:
            problems.append(FieldProblem("type", f"CNAME at {owner} beside other data ({', '.join(beside)})"))
    elif "CNAME" in others and rtype not in _COMPANIONS:
        problems.append(FieldProblem("type", f"CNAME at {owner} beside other data ({rtype})"))
    if rtype == "NS":
        problems += _ns_targets(zone, owner, after["rdata"])
    problems += _steered_conflicts(owner, rtype, steered)
    return problems


def _ns_targets(zone: Zone, owner: dns.name.Name, rdata: list[str]) -> list[FieldProblem]:
    problems = []
    for index, text in enumerate(rdata):
        target = dns.name.from_text(text)
        if target.is_subdomain(zone.origin) and not ({"A", "AAAA"} & set(types_at(zone, target))):
            what = "address record" if owner == zone.origin else "glue"
            problems.append(FieldProblem(f"rdata[{index}]", f"NS {target} for {owner} has no {what} "
                                         "(A or AAAA) in the zone"))
    return problems


def _glue_needed(zone: Zone, owner: dns.name.Name) -> list[FieldProblem]:
    """Removing a name's last address record strands NS records that point at it (the
    apex's and each delegation's NS: a few owners, not the zone)."""
    for cut in (zone.origin_wire, *zone.cuts):
        name = dns.name.from_wire(cut, 0)[0]
        ns = zone.node(name).get(dns.rdatatype.NS)
        if ns is not None and any(r.target == owner for r in ns):
            return [FieldProblem("name", f"{owner} is the NS target of {name}: it must keep an "
                                 "address record (A or AAAA)")]
    return []


def _steered_conflicts(owner: dns.name.Name, rtype: str,
                       steered: Mapping[tuple[str, str], SteeredRecord]) -> list[FieldProblem]:
    text = owner.to_text().lower()
    if (text, rtype) in steered:
        return [FieldProblem("type", f"{text} {rtype} is steered: change it through its steered record")]
    if (text, "CNAME") in steered:
        return [FieldProblem("type", f"{text} has a steered CNAME: no other data may sit there")]
    if rtype == "CNAME" and any(name == text for name, _ in steered):
        return [FieldProblem("type", f"{text} is steered: a CNAME cannot sit beside it")]
    return []


def next_serial(serial: int) -> int:
    """RFC 1982: the serial after `serial` (wraps from 2**32-1 to 0)."""
    return (serial + 1) % SERIAL_MODULO


def serial_newer(candidate: int, current: int) -> bool:
    """RFC 1982 section 3.2: `candidate` is greater than `current`."""
    delta = (candidate - current) % SERIAL_MODULO
    return 0 < delta < 2**31
