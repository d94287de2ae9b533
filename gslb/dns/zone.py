"""Immutable in-memory zone: the data the resolver walks.

Built once by `gslb.zonefile` (or by tests) and never mutated, so a snapshot can be
shared by every query without locks. Names are dnspython `Name` objects, whose hash and
equality ignore case, so lookups are case-insensitive for free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import dns.name
import dns.rdatatype
import dns.rrset

Name = dns.name.Name
Node = Mapping[int, dns.rrset.RRset]


@dataclass(frozen=True)
class Zone:
    """One zone: every RRset by owner and type, plus what the lookup needs precomputed.

    `names` holds every owner and every empty non-terminal between an owner and the
    apex (RFC 4592 section 2.2.2: empty non-terminals exist). `cuts` holds the
    delegation points below the apex: names with NS that start a child zone.
    """

    origin: Name
    nodes: Mapping[Name, Node]
    source: str = ""
    names: frozenset[Name] = field(init=False)
    cuts: frozenset[Name] = field(init=False)

    def __post_init__(self) -> None:
        names: set[Name] = set()
        for owner in self.nodes:
            name = owner
            while name not in names and name != self.origin:
                names.add(name)
                name = name.parent()
        names.add(self.origin)
        cuts = frozenset(
            owner
            for owner, node in self.nodes.items()
            if owner != self.origin and dns.rdatatype.NS in node
        )
        object.__setattr__(self, "names", frozenset(names))
        object.__setattr__(self, "cuts", cuts)

    @property
    def soa(self) -> dns.rrset.RRset:
        return self.nodes[self.origin][dns.rdatatype.SOA]

    @property
    def negative_ttl(self) -> int:
        """RFC 2308 section 5: the lesser of the SOA TTL and its MINIMUM field."""
        soa = self.soa
        return min(soa.ttl, soa[0].minimum)

    def serial(self) -> int:
        return int(self.soa[0].serial)

    def get(self, name: Name, rdtype: int) -> dns.rrset.RRset | None:
        node = self.nodes.get(name)
        return None if node is None else node.get(rdtype)

    def exists(self, name: Name) -> bool:
        """True for owners and empty non-terminals alike."""
        return name in self.names

    def rrsets(self) -> Iterable[dns.rrset.RRset]:
        """Every RRset, apex first, in a stable order (used by AXFR)."""
        yield from self.nodes[self.origin].values()
        for owner in sorted(self.nodes):
            if owner != self.origin:
                yield from self.nodes[owner].values()


def build_zone(origin: Name, rrsets: Iterable[dns.rrset.RRset], source: str = "") -> Zone:
    """Group RRsets into nodes; RRsets of the same owner and type are merged."""
    nodes: dict[Name, dict[int, dns.rrset.RRset]] = {}
    for rrset in rrsets:
        node = nodes.setdefault(rrset.name, {})
        existing = node.get(rrset.rdtype)
        if existing is None:
            copy = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
            copy.update(rrset)
            node[rrset.rdtype] = copy
        else:
            existing.update(rrset)
    return Zone(origin=origin, nodes=nodes, source=source)
