"""Steering on the DNS path: which names are steered, who the client is, what to answer.

Built once per snapshot (records, the state reading, a rule map per record) and then read
by every query. The DNS path asks three things:

- `covers(name)`: is this owner steered at all (one set lookup per query);
- `bucket(name, qtype, client, draw)`: the part of the answer-cache key that says when
  two queries must get the same decision — the rule map's block (which rule matched, on
  the widest network where that holds), the client network's slot for `hash`, the
  location classes for `closest`/`latency` (`gslb.steering.located`: the ranking of the
  datacenters, the RTT keys that apply, and the scope they hold on), and one of
  `DRAW_SLOTS` slots for the weighted draw. The native fast path computes the same;
- `hook(qtype, client, draw)`: the resolver hook that puts the decision's RRset in place.

The same `decide` serves `gslb explain`, so the explanation and the DNS answer agree.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import zlib
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from gslb.dns.edns import ECS_MAX_SOURCE, ClientSubnet
from gslb.dns.resolver import SteerFn
from gslb.dns.zone import RECORD, Name, Node, Zone, to_wire
from gslb.steering.engine import MAX_SCOPE, decide
from gslb.steering.geo import ALIAS, GeoTable, LocationMap, RuleMap
from gslb.steering.located import (
    UNSERVABLE,
    Coordinates,
    LatencyClasses,
    closest_classes,
    coordinates_of,
)
from gslb.steering.model import (
    DRAW_SLOTS,
    Client,
    Context,
    Decision,
    Health,
    Location,
    Override,
    Rule,
    SteeredRecord,
    hash_slot,
)

MEMO_ENTRIES = 50_000  # clients and buckets remembered per snapshot (then forgotten at once)
_SLOT_WIDTH = 2**32 // DRAW_SLOTS
NO_SLOT = 0xFFFF  # the hash slot of a bucket whose record has no `hash` policy
_TYPES = {"A": dns.rdatatype.A, "AAAA": dns.rdatatype.AAAA, "CNAME": dns.rdatatype.CNAME}
# Policies decided from the client's location or measured RTT: their buckets hold
# location classes (`gslb.steering.located`).
LOCATION_POLICIES = frozenset({"closest", "latency"})
NO_CLASS, NO_SCOPE = -1, 255  # the location part of a policy the record does not use

Locate = Callable[[ipaddress.IPv4Address | ipaddress.IPv6Address], Location]


def slot_draw(draw: int) -> int:
    """The draw a slot stands for: the middle of its share of [0, 2**32)."""
    return (draw % DRAW_SLOTS) * _SLOT_WIDTH + _SLOT_WIDTH // 2


@dataclass
class Outcome:
    """What the hook learned while the resolver ran: the widest scope that holds."""

    scope: int = 0
    decisions: list[Decision] = field(default_factory=list)
    records: list[tuple[str, str]] = field(default_factory=list)  # beside each decision


class GeoSource(Protocol):
    """What steering needs of the geo databases (gslb.load.geoip.GeoDatabases)."""

    generation: int  # +1 whenever a database file is replaced

    def table(self) -> GeoTable: ...
    def locations(self) -> LocationMap: ...
    def locate(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Location: ...


def geo_table(records: Mapping[tuple[str, str], SteeredRecord],
              geo: GeoSource | None) -> GeoTable | None:
    """The databases' whole table (millions of networks in a real City database) when
    some rule names geos or ASNs; None otherwise (`closest` and `latency` need just
    `locate`)."""
    needs_table = any(rule.geos or rule.asns for rec in records.values() for rule in rec.rules)
    return geo.table() if geo is not None and needs_table else None


def keyed_by_location(records: Mapping[tuple[str, str], SteeredRecord]) -> bool:
    """Whether some record has `closest` or `latency`: its serving cache keys then hold
    location classes, from the databases' location map."""
    return any(step.name in LOCATION_POLICIES for rec in records.values() for step in rec.chain)


def rule_maps_of(records: Mapping[tuple[str, str], SteeredRecord],
                 table: GeoTable | None) -> dict[tuple[str, str], RuleMap]:
    """Each record's rule map over `table`: one map per distinct set of rules (with a
    City database a map is megabytes, and names usually share their rules; the native
    table shares the blocks too)."""
    maps: dict[tuple[Rule, ...], RuleMap] = {}
    by_key = {}
    for key, rec in records.items():
        if rec.rules not in maps:
            maps[rec.rules] = RuleMap.build(rec.rules, table)
        by_key[key] = maps[rec.rules]
    return by_key


class Steering:
    def __init__(
        self,
        records: Mapping[tuple[str, str], SteeredRecord],
        health: Mapping[str, Health] | None = None,
        rtt: Mapping[tuple[str, str], float] | None = None,
        table: GeoTable | None = None,
        locate: Locate | None = None,
        version: int = 0,
        previous: "Steering | None" = None,
        overrides: Mapping[str, Override] | None = None,
        locations: LocationMap | None = None,
        geo_generation: int = 0,
    ) -> None:
        self.records = dict(records)
        self.health = dict(health or {})
        self.rtt = dict(rtt or {})
        self.overrides = dict(overrides or {})
        self.locate = locate
        self.version = version  # of the whole state reading, for logs
        self.geo_generation = geo_generation  # of the databases `table` and `locate` read
        self.rule_maps = rule_maps_of(self.records, table)
        self.by_owner: dict[bytes, dict[int, tuple[str, str]]] = {}
        for key, record in self.records.items():
            owner = to_wire(dns.name.from_text(record.owner)).lower()
            self.by_owner.setdefault(owner, {})[_TYPES[record.rdtype]] = key
        self.last_good: dict[tuple[str, str], tuple[str, ...]] = {}
        self._policies = {key: {step.name for step in rec.chain} for key, rec in self.records.items()}
        # A weighted draw matters only where a pool holds more than one member: with one
        # each, every draw slot gives the same answer, so the slot stays out of the key.
        self._draws = {key for key, rec in self.records.items()
                       if "weighted" in self._policies[key]
                       and any(len(pool.members) > 1 for pool in rec.pools.values())}
        self._locate_by(locations)
        self._clients: dict[tuple[str, ClientSubnet | None], Client] = {}
        self._buckets: dict[tuple, tuple] = {}
        self.versions = {key: self._record_version(rec) for key, rec in self.records.items()}
        if previous is not None:
            self._inherit_last_good(previous)

    def _locate_by(self, locations: LocationMap | None) -> None:
        """Location classes: from the map of what `locate` says (None: no database, or a
        `locate` with no map, whose records' keys then hold the location's network and
        stay with Python). One closest class array per distinct set of coordinates."""
        self.locations = locations
        self.located = self.locate is None or locations is not None
        arrays: dict[Coordinates, bytes] = {}
        self.closest: dict[tuple[str, str], memoryview] = {}
        for key, rec in self.records.items():
            if "closest" in self._policies[key]:
                coordinates = coordinates_of(rec.datacenters)
                if coordinates not in arrays:
                    arrays[coordinates] = closest_classes(locations, coordinates)
                self.closest[key] = memoryview(arrays[coordinates]).cast("i")
        self.latency = self._latency_classes(None)

    def _record_version(self, record: SteeredRecord) -> int:
        """The version of just the state this record's decisions read: its members'
        health and overrides, and the RTT table when `latency` is in its chain. It goes
        into the record's cache keys, so a change to one member re-decides only the
        records that hold it; every other cached answer stays valid."""
        members = [m for pool in record.pools.values() for m in pool.members]
        parts: list[object] = []
        for member in members:
            override = self.overrides.get(member.value)
            if override is not None:
                parts.append((member.value, override.mode))
            for key in (member.health_key, member.check):
                known = self.health.get(key) if key else None
                if known is not None:
                    parts.append((key, known.up))
        if any(step.name == "latency" for step in record.chain):
            parts.append(sorted(self.rtt.items()))
        if any(step.name in LOCATION_POLICIES for step in record.chain):
            # its keys hold the client's location network, whose place a replaced
            # database may move: answers cached under the old one must not serve
            parts.append(("geo", self.geo_generation))
        return zlib.crc32(repr(parts).encode())

    def with_state(self, health: Mapping[str, Health], rtt: Mapping[tuple[str, str], float],
                   overrides: Mapping[str, Override], version: int) -> "Steering":
        """The same records, rule maps and geo lookups over a new state reading: what a
        health, override or RTT change costs (no zone, rule map or geo work). Records
        whose inputs did not change keep their version, so their cached answers stay."""
        fresh = copy.copy(self)
        fresh.health, fresh.rtt, fresh.overrides = dict(health), dict(rtt), dict(overrides)
        fresh.version = version
        fresh.latency = fresh._latency_classes(self.latency)
        fresh.last_good = dict(self.last_good)
        fresh._buckets = {}
        fresh.versions = {key: fresh._record_version(rec) for key, rec in self.records.items()}
        return fresh

    def _latency_classes(self, known: LatencyClasses | None) -> LatencyClasses | None:
        """The classes of the RTT table's keys, when a record has `latency`: kept while
        the keys stay the same (an RTT change re-keys answers through the versions)."""
        if not any("latency" in policies for policies in self._policies.values()):
            return None
        keys = {key for key, _ in self.rtt}
        if known is not None and known.keys == keys:
            return known
        return LatencyClasses.build(keys, self.locations)

    def with_rule_maps(self, rule_maps: Mapping[tuple[str, str], RuleMap], geo_generation: int,
                       locations: LocationMap | None) -> "Steering":
        """The same records and state over replaced geo databases, with the rule maps
        made from their table (`rule_maps_of`, off the query path) and their location
        map (`GeoDatabases.locations`, None when nothing is keyed by location): what a
        new GeoIP file costs. Cached answers of the other records stay valid: a steered
        key holds the matching rule and the scope it holds on, never the client's
        network, so it means the same answer under any database. The records that
        decide by the client's location (`closest`, `latency`) get new location classes
        (numbered afresh over the new map) and a new version."""
        fresh = copy.copy(self)
        fresh.rule_maps = dict(rule_maps)
        fresh.geo_generation = geo_generation
        fresh._locate_by(locations)
        fresh.last_good = dict(self.last_good)
        fresh._clients, fresh._buckets = {}, {}  # both remember what the old database said
        fresh.versions = {key: fresh._record_version(rec) for key, rec in self.records.items()}
        return fresh

    def _inherit_last_good(self, previous: "Steering") -> None:
        """`last_known_good` across a reload: a new state reading builds a new Steering,
        and the answer given before the change is exactly what that mode needs.

        The previous Steering's own last answer when it gave one; else (it answered no
        query: a worker supervisor, or a reload before any traffic) what it decides for
        a client with no ECS, no location and the middle draw. Only values that are still
        members of the record carry over."""
        for key, record in self.records.items():
            if key not in previous.records:
                continue
            values = previous.last_good.get(key)
            if not values:
                client = Client(network=ipaddress.ip_network("0.0.0.0/24"), from_ecs=False)
                decision = previous.decide(key, client, DRAW_SLOTS // 2)
                values = decision.values if decision.rcode == "noerror" else ()
            members = {m.value for pool in record.pools.values() for m in pool.members}
            kept = tuple(v for v in values if v in members)
            if kept:
                self.last_good[key] = kept

    @classmethod
    def with_geo(
        cls,
        records: Mapping[tuple[str, str], SteeredRecord],
        health: Mapping[str, Health],
        rtt: Mapping[tuple[str, str], float],
        version: int,
        geo: GeoSource | None,
        previous: "Steering | None" = None,
        overrides: Mapping[str, Override] | None = None,
        keyed: bool = True,
    ) -> "Steering":
        """Steering over the geo databases, if any. Their whole table (millions of
        networks in a real City database) is only walked when some rule names geos or
        ASNs; the location map (a walk of its own, for the cache keys of `closest` and
        `latency` records) only when some record has one of them and the steering
        serves queries (`keyed`): explain and previews only decide, and skip it."""
        generation = geo.generation if geo is not None else 0  # before the table: a
        # database replaced meanwhile then leaves this Steering behind it, not ahead
        located = keyed and keyed_by_location(records)
        return cls(records, health, rtt, table=geo_table(records, geo),
                   locate=geo.locate if geo is not None else None,
                   version=version, previous=previous, overrides=overrides,
                   locations=geo.locations() if geo is not None and located else None,
                   geo_generation=generation)

    def policy_names(self, key: tuple[str, str]) -> set[str]:
        """The policies in a record's chain: what its cache-key bucket is made of."""
        return self._policies[key]

    def draws(self, key: tuple[str, str]) -> bool:
        """Whether the weighted draw's slot can change this record's answer."""
        return key in self._draws

    def covers(self, owner_wire: bytes) -> bool:
        return owner_wire in self.by_owner

    def client(self, source: str, ecs: ClientSubnet | None) -> Client:
        """RFC 7871: the ECS subnet when it carries an address, else the resolver's;
        cut to /24 or /56 either way. Remembered per (source, ECS), because building
        address objects and asking the geo database cost more than the rest of a
        cached steered answer."""
        memo_key = (source, ecs)
        client = self._clients.get(memo_key)
        if client is None:
            if len(self._clients) >= MEMO_ENTRIES:
                self._clients.clear()
            client = self._clients[memo_key] = self._client(source, ecs)
        return client

    def _client(self, source: str, ecs: ClientSubnet | None) -> Client:
        if ecs is not None and ecs.source > 0:
            network = ecs.network()
            from_ecs = True
        else:
            try:
                address = ipaddress.ip_address(source.split("%", 1)[0])
            except ValueError:  # no usable peer address: the unspecified one
                address = ipaddress.ip_address("0.0.0.0")
            prefix = ECS_MAX_SOURCE[1 if address.version == 4 else 2]
            network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
            from_ecs = False
        location = self.locate(network.network_address) if self.locate else Location()
        return Client(network=network, from_ecs=from_ecs, location=location)

    def record_for(self, owner_wire: bytes, qtype: int) -> tuple[str, str] | None:
        """The key of the steered record that answers this owner and type, if any (a
        steered CNAME answers every type but its own owner's other steered ones)."""
        return self._record_for(owner_wire, qtype)

    def _record_for(self, owner_wire: bytes, qtype: int) -> tuple[str, str] | None:
        types = self.by_owner.get(owner_wire)
        if not types:
            return None
        if qtype in types:
            return types[qtype]
        if qtype == dns.rdatatype.ANY:
            return next(iter(types.values()))
        return types.get(dns.rdatatype.CNAME)  # a CNAME answers every other type

    def bucket(self, owner_wire: bytes, qtype: int, client: Client, draw: int) -> tuple:
        """Everything besides the question that this name's decision depends on."""
        key = self._record_for(owner_wire, qtype)
        if key is None:
            return ("static",)
        memo_key = (key, client.network, client.location.network)
        parts = self._buckets.get(memo_key)
        if parts is None:
            if len(self._buckets) >= MEMO_ENTRIES:
                self._buckets.clear()
            parts = self._buckets[memo_key] = self._bucket(key, client)
        if key in self._draws:
            return parts + (draw % DRAW_SLOTS,)
        return parts

    def _bucket(self, key: tuple[str, str], client: Client) -> tuple:
        # The rule and the ECS scope it holds on, not the block itself: every client the
        # same rule matches on blocks of the same length gets the same bytes, so tens of
        # thousands of resolver networks share a handful of cached answers. (The scope is
        # the engine's: the block's length, capped at what we look at.) Networks of the
        # client-dependent policies go in as small numbers (see `_location`).
        match = self.rule_maps[key].lookup(client.network.network_address)
        version = match.network.version
        policies = self._policies[key]
        location = self._location(key, client, policies) if policies & LOCATION_POLICIES else None
        return (self.versions[key], match.rule, version, min(match.network.prefixlen, MAX_SCOPE[version]),
                hash_slot(client.network) if "hash" in policies else NO_SLOT, location)

    def _location(self, key: tuple[str, str], client: Client, policies: set[str]) -> tuple | str:
        """The location part of a bucket: (closest class, its scope, latency network-key
        class, region class, its scope), `NO_CLASS`/`NO_SCOPE` for a policy not in the
        chain. Each scope is the length the policy's answer holds on, capped as the
        answer's: the location's network, or the client's own without a location (and
        for `latency` when the RTT table has network keys).

        Where only Python can place the client (IPv4's ranges of the IPv6 family, a
        coordinate that is no number, a `locate` with no map) the location's network as
        text, as before location classes: the native table takes no such key."""
        fallback = str(client.location.network or client.network)
        if not self.located:
            return fallback
        address = client.network.network_address
        entry, prefix = self.locations.find(address) if self.locations is not None else (-1, 0)
        if entry == ALIAS:
            return fallback
        own = client.network.prefixlen
        scope = prefix if entry >= 0 else own
        closest: tuple[int, int] = (NO_CLASS, NO_SCOPE)
        if "closest" in policies:
            ranked = self.closest[key][entry] if entry >= 0 else 0
            if ranked == UNSERVABLE:
                return fallback
            closest = (ranked, scope)
        latency: tuple[int, int, int] = (NO_CLASS, NO_CLASS, NO_SCOPE)
        if "latency" in policies and self.latency is not None:
            region = memoryview(self.latency.regions).cast("i")[entry] if entry >= 0 else 0
            latency = (self.latency.net(address), region, own if self.latency.network_keys else scope)
        return closest + latency

    def context(self, key: tuple[str, str], client: Client, draw: int) -> Context:
        match = self.rule_maps[key].lookup(client.network.network_address)
        return Context(
            client=client,
            health=self.health,
            rtt=self.rtt,
            draw=slot_draw(draw),
            last_good=self.last_good.get(key, ()),
            rule_match=(match.rule, match.network),
            overrides=self.overrides,
        )

    def decide(self, key: tuple[str, str], client: Client, draw: int) -> Decision:
        decision = decide(self.records[key], self.context(key, client, draw))
        if decision.rcode == "noerror" and decision.values:
            self.last_good[key] = decision.values
        return decision

    def hook(self, qtype: int, client: Callable[[], Client], draw: int) -> tuple[SteerFn, Outcome]:
        """A resolver hook for one query, and where it reports what it decided.

        `client` is called (once) only if the lookup meets a steered name."""
        outcome = Outcome()
        known: list[Client] = []

        def steer(owner: Name, node: Node) -> tuple[Node, int | None] | None:
            key = self._record_for(to_wire(owner).lower(), qtype)
            if key is None:
                return None
            if not known:
                known.append(client())
            record = self.records[key]
            decision = self.decide(key, known[0], draw)
            outcome.decisions.append(decision)
            outcome.records.append(key)
            outcome.scope = max(outcome.scope, decision.scope)
            if decision.rcode == "servfail":
                return node, dns.rcode.SERVFAIL
            rdtype = _TYPES[record.rdtype]
            steered = dict(node)
            if decision.rcode == "nodata" or not decision.values:
                steered.pop(rdtype, None)
            else:
                steered[rdtype] = dns.rrset.from_text_list(
                    owner, decision.ttl, dns.rdataclass.IN, rdtype, list(decision.values)
                )
            return steered, None

        return steer, outcome


@functools.lru_cache(maxsize=4096)
def _stand_ins(rdtype: dns.rdatatype.RdataType, ttl: int, values: tuple[str, ...]) -> bytes:
    """The stand-in records of one steered record, in blob form; remembered, as every
    change to a zone rebuilds the stand-ins of all its steered records."""
    blob = b""
    for value in values:
        rdata = _rdata_wire(rdtype, value)
        blob += RECORD.pack(rdtype, ttl, len(rdata)) + rdata
    return blob


def _rdata_wire(rdtype: dns.rdatatype.RdataType, value: str) -> bytes:
    """A member value's rdata in wire form: addresses directly (a pool of hundreds of
    members is rebuilt on every change to it), names through dnspython."""
    if rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return ipaddress.ip_address(value).packed
    return to_wire(dns.rdata.from_text(dns.rdataclass.IN, rdtype, value))


def with_placeholders(zone: Zone, records: Mapping[tuple[str, str], SteeredRecord]) -> Zone:
    """The zone with static stand-ins at each steered name it holds.

    They make the name exist for the lookup (so other types get NODATA, and a record
    that cannot steer answers SERVFAIL, never NXDOMAIN), and they are what a zone
    transfer (and the additional section of an MX or SRV answer) carries: each record's
    `transfer` values, which a secondary that does not steer can serve to anyone. A name
    with none exists here but is left out of transfers. `zone` must be the zone as
    loaded, without stand-ins."""
    added: dict[bytes, bytes] = {}
    for record in records.values():
        owner = dns.name.from_text(record.owner)
        if not owner.is_subdomain(zone.origin):
            continue
        key = to_wire(owner).lower()
        rdtype = _TYPES[record.rdtype]
        blob = added.get(key, zone.records.get(key, b""))
        added[key] = blob + _stand_ins(rdtype, record.ttl, record.transfer)
    if not added:
        return zone
    return zone.with_records(added)
