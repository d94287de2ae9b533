"""The steering configuration as typed, immutable data.

A *steered record* is a name and type (A, AAAA or CNAME) whose answer is chosen per query:
rules map the client to a pool, the pool's members go through the policy chain, and what
is left (up to `select`) is the answer. Pools may name a fallback pool, used when nothing
in them survives the chain; when every pool is exhausted, `all_down` decides.

The shape follows octoDNS dynamic records (pools with fallback, rules with geos and
subnets, a catch-all rule) so existing configurations map over. Loading and validation
live in `gslb.load.steering` (the load layer: it reads files); this module is pure data.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


DRAW_SLOTS = 64  # weighted answers are exact to 1/64 of the traffic, and cacheable
HASH_SLOTS = 4096  # `hash` orders members per slot of the client network: sticky, cacheable


def hash_slot(network: IPNetwork) -> int:
    """The `hash` policy's slot of a client network: FNV-1a (64 bits) over its family
    (4 or 6), prefix length and address bytes. A fixed function, not a keyed one: every
    node of a fleet must send a client to the same member, and the C fast path computes
    the same (`hash_slot` in gslb/server/native/steer.c)."""
    h = 0xCBF29CE484222325
    for byte in bytes((network.version, network.prefixlen)) + network.network_address.packed:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % HASH_SLOTS


class AdminState(enum.Enum):
    ENABLED = "enabled"  # normal: health decides
    DRAINED = "drained"  # answered only when nothing else in its pool is up
    DISABLED = "disabled"  # never answered


class AllDown(enum.Enum):
    """What to answer when every pool (and fallback) is exhausted."""

    FAIL_OPEN = "fail_open"  # answer as if every member were up
    BACKUP_POOL = "backup_pool"  # answer from `all_down_pool`, health ignored
    LAST_KNOWN_GOOD = "last_known_good"  # the last answer given while something was up
    NODATA = "nodata"  # NOERROR, no answer: resolvers cache it for the SOA minimum
    SERVFAIL = "servfail"  # resolvers try another server, then give up


@dataclass(frozen=True)
class Datacenter:
    name: str
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class CheckSpec:
    """A health check definition (the `checks:` section of a steering file).

    `kind` is http, https, tcp or dns; `port` None means the kind's default (80, 443,
    53; tcp has none and requires one). Timings are seconds; `jitter` is the fraction of
    the interval by which each wait varies at random, so probes do not synchronise."""

    name: str
    kind: str
    port: int | None = None
    interval: float = 5.0
    timeout: float = 2.0
    rise: int = 2
    fall: int = 3
    jitter: float = 0.1
    path: str = "/"  # http(s)
    expect_status: tuple[int, ...] = (200,)  # http(s)
    body: str | None = None  # http(s): a substring the body must contain
    host: str | None = None  # http(s): Host header and TLS SNI
    follow_redirects: bool = False  # http(s)
    tls_verify: bool = True  # https
    query: str | None = None  # dns: the name to ask (absolute)
    query_type: str = "A"  # dns
    expect_rcode: str = "NOERROR"  # dns
    expect_answer: str | None = None  # dns: an rdata (text form) the answer must hold
    transport: str = "udp"  # dns: udp or tcp
    source: str = ""  # file:line of the definition


@dataclass(frozen=True)
class Probe:
    """A check definition applied to one address: what an agent probes."""

    check: CheckSpec
    address: str  # the member's own value, or its `probe:` address

    @property
    def key(self) -> str:
        """The id its verdicts are stored under: `check@address`."""
        return f"{self.check.name}@{self.address}"


@dataclass(frozen=True)
class Override:
    """A manual override on a member value: `up`, `down` or `drain`, until it expires.

    The store drops expired ones before they reach a decision; `detail` says for
    explain who set it and until when."""

    mode: str
    detail: str = ""


@dataclass(frozen=True)
class Member:
    """One endpoint: an address (A/AAAA) or a target name (CNAME)."""

    value: str
    weight: int = 1  # 0..1000; 0 = drained: never chosen while a weighted peer is up
    priority: int = 1  # lower is preferred by the priority policy
    datacenter: str | None = None
    # A check defined in `checks:` (probed at `probe.address`), or an external check id
    # whose state only comes from the state file or the store; None = always up.
    check: str | None = None
    state: AdminState = AdminState.ENABLED
    probe: Probe | None = None

    @property
    def health_key(self) -> str | None:
        """Where this member's health is looked up: `check@address` for a probed check,
        the bare id for an external one."""
        return self.probe.key if self.probe is not None else self.check


@dataclass(frozen=True)
class Pool:
    name: str
    members: tuple[Member, ...]
    fallback: str | None = None


@dataclass(frozen=True)
class Rule:
    """Clients matching any condition go to `pool`; a rule with no condition matches all.

    `geos` are octoDNS-style codes: continent (`EU`), country (`EU-FR`, or `FR`),
    subdivision (`NA-US-CA`). `asns` are autonomous system numbers."""

    pool: str
    subnets: tuple[IPNetwork, ...] = ()
    geos: tuple[str, ...] = ()
    asns: tuple[int, ...] = ()

    @property
    def catch_all(self) -> bool:
        return not (self.subnets or self.geos or self.asns)


@dataclass(frozen=True)
class PolicyStep:
    """One link of the chain: a registered policy name and its parameters."""

    name: str
    params: tuple[tuple[str, object], ...] = ()

    def param(self, key: str, default: object = None) -> object:
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class SteeredRecord:
    owner: str  # absolute name, lowercase, with the trailing dot
    rdtype: str  # "A", "AAAA" or "CNAME"
    ttl: int
    pools: dict[str, Pool]
    rules: tuple[Rule, ...]
    chain: tuple[PolicyStep, ...]
    select: int = 1  # answers returned (multivalue when > 1)
    all_down: AllDown = AllDown.FAIL_OPEN
    all_down_pool: str | None = None  # for AllDown.BACKUP_POOL
    datacenters: dict[str, Datacenter] = field(default_factory=dict)
    source: str = ""  # file:line of the record's definition, for messages
    # What a zone transfer carries for this name (secondaries do not steer): the explicit
    # `transfer:` values, else the catch-all pool's enabled members with a positive weight.
    transfer: tuple[str, ...] = ()
    # Why this record cannot steer (its configuration is invalid and there is no last good
    # version): it answers SERVFAIL, never NXDOMAIN. Empty for a usable record.
    unusable: str = ""

    @classmethod
    def stand_in(cls, owner: str, rdtype: str, source: str, reason: str) -> "SteeredRecord":
        """A record that answers SERVFAIL for `owner`/`rdtype` because of `reason`."""
        return cls(owner=owner, rdtype=rdtype, ttl=0, pools={}, rules=(Rule(""),), chain=(),
                   all_down=AllDown.SERVFAIL, source=source, unusable=reason)


# --- the request side: what one decision sees -------------------------------------------


@dataclass(frozen=True)
class Location:
    """What the geo step learned about a client address (any field may be unknown)."""

    continent: str | None = None  # "EU"
    country: str | None = None  # ISO 3166-1 alpha-2, "FR"
    subdivision: str | None = None  # ISO 3166-2 suffix, "CA" for US-CA
    asn: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    database: str | None = None  # which database answered, for explain
    network: IPNetwork | None = None  # the database network this holds for


@dataclass(frozen=True)
class Health:
    up: bool
    source: str  # "static", "in-process", "redis", ...: for explain
    age: float | None = None  # seconds since the state was last confirmed


@dataclass(frozen=True)
class Client:
    """Who asks: the ECS subnet when valid (RFC 7871), else the resolver's address,
    truncated to /24 (IPv4) or /56 (IPv6) before any use."""

    network: IPNetwork
    from_ecs: bool
    location: Location = Location()


@dataclass(frozen=True)
class Context:
    """Everything a decision may depend on besides the record: no clock, no randomness
    read inside the engine. `draw` is a number in [0, 2**32) the caller picks per query
    (at random on the DNS path, given in tests and `gslb explain --draw`)."""

    client: Client
    health: dict[str, Health]  # health key (check@address or check id) -> state; missing = up
    rtt: dict[tuple[str, str], float]  # (client network or region, datacenter) -> ms
    draw: int = 0
    last_good: tuple[str, ...] = ()  # for AllDown.LAST_KNOWN_GOOD
    # From geo.RuleMap.lookup, when the caller has one for this record: (index of the
    # matching rule or None, the widest network on which that match holds). Without it the
    # engine matches the rules itself and derives a (narrower, still safe) scope.
    rule_match: tuple[int | None, IPNetwork] | None = None
    overrides: dict[str, Override] = field(default_factory=dict)  # member value -> override


@dataclass(frozen=True)
class TraceStep:
    step: str  # "rule", "pool", "health", "priority", "weighted", "fallback", ...
    detail: str  # one human line: why
    candidates: tuple[str, ...]  # member values left after this step


@dataclass(frozen=True)
class Decision:
    values: tuple[str, ...]  # the chosen addresses or target (empty for nodata/servfail)
    ttl: int
    rcode: str = "noerror"  # "noerror", "nodata" or "servfail"
    pool: str | None = None
    scope: int = 0  # ECS SCOPE PREFIX-LENGTH: the widest prefix this decision holds for
    trace: tuple[TraceStep, ...] = ()
