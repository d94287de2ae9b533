"""Bytes in, bytes out: one query through parse, policy checks, resolve and render.

The socket code calls `Responder.respond` and sends whatever comes back (nothing, one
message, or an AXFR stream). Everything about *which* rcode a query deserves lives here
or below; nothing here does I/O.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Protocol, Sequence

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from gslb.dns.answers import AnswerCache
from gslb.dns.cookies import CLIENT_COOKIE, Cookies
from gslb.dns.render import render, render_tracked
from gslb.dns.edns import ClientSubnet
from gslb.dns.resolver import (
    EDE_NOT_SUPPORTED,
    EDE_PROHIBITED,
    Kind,
    Result,
    SteerFn,
    Zones,
    resolve,
)
from gslb.dns.tally import Label, Labels
from gslb.dns.tsig import badkey_record, with_tsig
from gslb.dns.wire import Query, parse_query
from gslb.dns.xfr import DEFAULT_MESSAGE_SIZE, axfr_stream, is_current, ixfr_client_serial
from gslb.dns.zone import record_types, to_wire

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NO_EDNS_LIMIT = 512
TCP_LIMIT = 65535
# Meta types as QTYPE (MAILA, MAILB, OPT, TSIG, TKEY and the rest of 128-255 but ANY and
# the transfers) are answered like any type the zone lacks, as Knot DNS and NSD do: no
# such RRset exists, so NODATA (or the CNAME, or NXDOMAIN), never an error.
_IDENTITY_NAMES = {dns.name.from_text("id.server."), dns.name.from_text("hostname.bind.")}
_VERSION_NAMES = {dns.name.from_text("version.server."), dns.name.from_text("version.bind.")}
_XFR_TYPES = {dns.rdatatype.AXFR, dns.rdatatype.IXFR}
NO_ZONE = "none"  # the zone label of a query no served zone holds (or not even parsed)


@dataclass(frozen=True)
class Options:
    """Server behaviour that is configuration, not zone data."""

    max_udp_payload: int = 1232  # DNS flag day 2020 default: no IP fragmentation
    nsid: bytes | None = None
    identity: str | None = None  # answers CH TXT id.server / hostname.bind
    version: str | None = None  # answers CH TXT version.server / version.bind
    xfr_allow: tuple[IPNetwork, ...] = field(
        default_factory=lambda: (
            ipaddress.ip_network("127.0.0.0/8"),
            ipaddress.ip_network("::1/128"),
        )
    )
    xfr_message_size: int = DEFAULT_MESSAGE_SIZE
    # The node's readiness-probe key (gslb/server/probe.py): a query whose OPTION_PROBE
    # EDNS option holds it is the node's own /ready probe, answered like any other
    # query but counted nowhere. None: no query is a probe.
    probe_key: bytes | None = None
    # DNS cookies (gslb/dns/cookies.py): the secrets and the clock. None: the COOKIE
    # option is checked for its length (FORMERR) and otherwise ignored.
    cookies: Cookies | None = None


class SteerDecision(Protocol):
    """One steering decision as the metrics see it (gslb.steering.model.Decision)."""

    @property
    def pool(self) -> str | None: ...
    @property
    def values(self) -> tuple[str, ...]: ...


class SteerOutcome(Protocol):
    """What a steering hook reports after the resolver ran (gslb.steering.front.Outcome)."""

    @property
    def scope(self) -> int: ...
    @property
    def decisions(self) -> Sequence[SteerDecision]: ...
    @property
    def records(self) -> Sequence[tuple[str, str]]: ...


class Steerer(Protocol):
    """The steering side of a snapshot (gslb.steering.front.Steering).

    The client (gslb.steering.model.Client) is opaque here: made by `client` and only
    handed back to `bucket` and `hook`, so this layer need not import steering's model."""

    def covers(self, owner_wire: bytes) -> bool: ...
    def client(self, source: str, ecs: ClientSubnet | None) -> Any: ...
    def bucket(self, owner_wire: bytes, qtype: int, client: Any, draw: int) -> tuple: ...
    def hook(self, qtype: int, client: Callable[[], Any],
             draw: int) -> tuple[SteerFn, SteerOutcome]: ...


class State(Protocol):
    """What a query reads: the zones, the answer cache rendered from them, steering.

    Read-only members, so a snapshot whose `steering` is a concrete Steering matches."""

    @property
    def zones(self) -> Zones: ...
    @property
    def answers(self) -> AnswerCache: ...
    @property
    def steering(self) -> Steerer | None: ...


class Responder:
    """Answers queries from whatever state the caller passes in (the current snapshot)."""

    def __init__(self, options: Options | None = None, labels: Labels | None = None,
                 counting: bool = True) -> None:
        self.options = options or Options()
        # True when the last reply came from the answer cache for a name steering does
        # not cover: it depends on the datagram and the snapshot only (not on the
        # client or the draw), so a caller may reuse it for the same bytes. Per
        # instance: give each thread its own Responder.
        self.reusable = False
        # Query counts (see gslb.dns.tally). A prewarming responder shares the table of
        # the one serving traffic and does not count.
        self.labels = labels if labels is not None else Labels()
        self.counting = counting
        self.last: Label | None = None  # the label of the last query counted (query log)
        # The last query was the node's own readiness probe: not counted, and the socket
        # code neither times, logs nor taps it.
        self.probe = False
        # The last query carried a valid DNS server cookie (RFC 7873, RFC 9018), as the
        # cookie check found: such a client proved its address, so RRL spares it (as
        # query_t.cookie_valid does in the native loop). Set per query, False by default.
        self.cookie_valid = False
        # What the last query's COOKIE option was, for the query log: "-" none (or the
        # server does no cookies), "new" a client cookie alone, "valid" a server cookie
        # this fleet made, still fresh, "invalid" any other server cookie.
        self.cookie = "-"

    def respond(self, state: State, data: bytes, tcp: bool, client: str,
                draw: int = 0) -> list[bytes]:
        """The response messages for one received message; empty means stay silent.

        `draw` is a random number in [0, 2**32) from the caller, for weighted steering
        (this module reads no random source itself)."""
        return list(self.respond_stream(state, data, tcp, client, draw))

    def respond_stream(self, state: State, data: bytes, tcp: bool, client: str,
                       draw: int = 0) -> Iterable[bytes]:
        """Like `respond`, but a zone transfer comes back as a lazy iterator of messages
        (every other reply is a list).

        Each transfer message is rendered when the caller asks for it, so a large AXFR
        can be sent a message at a time between other work instead of all at once.
        """
        self.reusable = self.probe = self.cookie_valid = False
        self.cookie = "-"
        query = parse_query(data)
        if query is None:
            return []
        self.check_cookie(query, client)
        if (query.error is None and query.qclass == dns.rdataclass.IN
                and query.qtype not in _XFR_TYPES and not query.tsig):
            return [self._answer(state, query, data, tcp, client, draw)]
        if query.error is not None:
            result = Result(Kind.REFUSED, rcode=query.error, aa=False)
        elif query.tsig:
            reply = self._unknown_key(query, data, tcp)
            self._count_uncached((NO_ZONE, query.qtype, reply[3] & 0x0F, tcp, ()))
            return [reply]
        elif query.qtype in _XFR_TYPES:
            replies = self._transfer(state.zones, query, tcp, client)
            self._count_transfer(state.zones, query, tcp, replies)
            return replies
        elif query.qclass == dns.rdataclass.CH:
            result = self._chaos(query)
        else:
            result = _refused(EDE_NOT_SUPPORTED)
        self._count_uncached((NO_ZONE, query.qtype, int(result.rcode), tcp, ()))
        return [self._render(query, result, tcp)]

    def check_cookie(self, query: Query, client: str) -> None:
        """The query's DNS cookie for this client (RFC 7873, RFC 9018): the COOKIE value
        the reply carries and whether the server cookie verified, on `query.edns`
        (`cookie_reply`, `cookie_valid`); the verdict in `self.cookie` and
        `self.cookie_valid` (rate limiting reads it)."""
        self.cookie = "-"
        edns = query.edns
        if edns is None or edns.cookie is None or self.options.cookies is None:
            return
        edns.cookie_reply, edns.cookie_valid = self.options.cookies.answer(
            edns.cookie, _packed_address(client))
        self.cookie_valid = edns.cookie_valid
        self.cookie = ("valid" if edns.cookie_valid
                       else "new" if len(edns.cookie) == CLIENT_COOKIE else "invalid")

    def _count_uncached(self, key: tuple) -> None:
        if self.counting:
            label = self.last = self.labels.get(key)
            label.uncached += 1

    def _count_transfer(self, zones: Zones, query: Query, tcp: bool,
                        replies: Iterable[bytes]) -> None:
        """A transfer (or its refusal) counts once, under the zone asked for."""
        assert query.qname is not None
        zone = zones.find(query.qname)
        name = zone.origin.to_text() if zone is not None and zone.origin == query.qname else NO_ZONE
        rcode = replies[0][3] & 0x0F if isinstance(replies, list) and replies else 0
        self._count_uncached((name, query.qtype, rcode, tcp, ()))

    def _answer(self, state: State, query: Query, data: bytes, tcp: bool, source: str,
                draw: int) -> bytes:
        """An IN query: from the answer cache, else resolved, rendered and remembered.

        A steered name's entry is keyed by what its decision depends on (the client's
        rule-map block, the state version, the weighted draw's slot) as well, and its
        reply carries the decision's ECS scope."""
        limit = self._limit(query, tcp)
        edns = query.edns
        if edns is None:
            ecs = None
            probe = False
            cookie = b""
        else:
            ecs = edns.ecs
            probe = edns.probe is not None and self._is_probe(edns.probe)
            cookie = edns.cookie_reply or b""
        ecs_address = ecs.address if ecs is not None else b""
        options = self.options
        variant: tuple = (  # everything besides the question that shapes the reply's bytes
            limit,
            options.max_udp_payload if edns is not None else 0,
            edns is not None and edns.do,
            options.nsid if edns is not None and edns.nsid else None,
            ecs.family if ecs is not None else 0,
            ecs.source if ecs is not None else -1,
            bool(cookie),  # the cookie itself is written over the stored one per query
        )
        steering = state.steering
        qname_key = b""
        steered = False
        if steering is not None:
            qname_key = data[12 : query.question_end - 4].lower()
            steered = steering.covers(qname_key)
            if steered:
                client = steering.client(source, ecs)
                variant += steering.bucket(qname_key, query.qtype, client, draw)
        # A prewarming responder (not counting) renders every answer afresh: a hit would
        # count in the label it shares with the serving responder.
        cached = (state.answers.lookup(data, query.question_end, query.qtype, variant,
                                       ecs_address, cookie) if self.counting else None)
        if cached is not None:
            if probe:
                self.probe = True
                return cached[0]
            label = self.last = cached[1]
            label.hits += 1
            self.reusable = not steered and not cookie  # a cookie is per client and time
            return cached[0]
        assert query.qname is not None
        hook = outcome = None
        if steering is not None:
            if steering.covers(qname_key):
                hook, outcome = steering.hook(query.qtype, lambda: client, draw)
            else:  # a CNAME chain may still lead to a steered name
                hook, outcome = steering.hook(query.qtype, lambda: steering.client(source, ecs), draw)
        result = resolve(state.zones, query.qname, query.qtype, hook, dnssec=variant[2])
        # With SOURCE PREFIX-LENGTH 0 the decision used the resolver's own address, which
        # the option's ADDRESS does not name: no scope can be claimed for it.
        scope = outcome.scope if outcome is not None and ecs is not None and ecs.source else 0
        wire, pointers = render_tracked(query, result, limit, options.max_udp_payload,
                                        options.nsid, scope)
        label = self.labels.get(_label_key(state.zones, query, wire, tcp,
                                           outcome if result.steered else None))
        if probe:
            self.probe = True
        elif self.counting:
            self.last = label
            label.misses += 1
        if result.steered:
            # Only a steering hook marks a result steered, and there is one only with steering.
            assert steering is not None and outcome is not None
            if not steering.covers(qname_key) or len(outcome.decisions) > 1:
                # A chain into a steered name (from a static one, or from a steered CNAME
                # into another steered name): the key holds only the query name's own
                # bucket, not the target's, so it would not hold; never cached.
                return wire
        if result.anchor is not None:
            anchor = to_wire(result.anchor).lower()
            state.answers.store(data, query.question_end, query.qtype, variant, anchor, wire,
                                pointers, len(ecs_address), label)
        return wire

    def _is_probe(self, value: bytes) -> bool:
        """Does the query's probe option hold this node's key (compared in constant
        time: a client must not learn the key byte by byte)?"""
        key = self.options.probe_key
        return key is not None and hmac.compare_digest(value, key)

    def prewarm(self, state: State, budget: int) -> int:
        """Render up to `budget` answers into the cache before any query arrives.

        Each zone's apex and then its names in order, for the types they hold, as asked
        without EDNS (512 bytes) and with EDNS (1232, no DO), plus each zone's NXDOMAIN
        template: after a start or a reload (and in every forked worker, which inherits
        the cache) the first queries find their answers ready. Steered names are left to
        their first query: their answers depend on the client. Returns how many."""
        done = 0
        steering = state.steering
        for zone in state.zones:
            owners = [zone.origin_wire, *(o for o in zone.records if o != zone.origin_wire)]
            for index, owner in enumerate(owners):
                if steering is not None and steering.covers(owner):
                    continue
                name = dns.name.from_wire(owner, 0)[0]
                types = sorted(record_types(zone.records[owner]))
                if index == 0:  # the apex: also the zone's NXDOMAIN template
                    types.append(-1)
                for rdtype in types:
                    qname = dns.name.Name((b"prewarm-nx",) + name.labels) if rdtype < 0 else name
                    qtype = dns.rdatatype.RdataType(dns.rdatatype.A if rdtype < 0 else rdtype)
                    for edns in (-1, 0):
                        query = dns.message.make_query(qname, qtype, use_edns=edns, payload=1232)
                        query.flags = 0
                        self.respond(state, query.to_wire(), False, "127.0.0.1")
                        done += 1
                        if done >= budget:
                            return done
        return done

    def _limit(self, query: Query, tcp: bool) -> int:
        if tcp:
            return TCP_LIMIT
        if query.edns is not None:
            return query.edns.udp_limit(self.options.max_udp_payload)
        return NO_EDNS_LIMIT

    def _render(self, query: Query, result: Result, tcp: bool) -> bytes:
        limit = self._limit(query, tcp)
        return render(query, result, limit, self.options.max_udp_payload, self.options.nsid)

    def _unknown_key(self, query: Query, data: bytes, tcp: bool) -> bytes:
        """A TSIG-signed query: NOTAUTH with an unsigned BADKEY TSIG (gslb.dns.tsig)."""
        record = badkey_record(data, query.tsig)
        if record is None:
            return self._render(query, Result(Kind.REFUSED, rcode=dns.rcode.FORMERR, aa=False), tcp)
        reply = self._render(query, Result(Kind.REFUSED, rcode=dns.rcode.NOTAUTH, aa=False), tcp)
        return with_tsig(reply, record)

    def _chaos(self, query: Query) -> Result:
        """CH TXT server identity and version, when configured; REFUSED otherwise."""
        text = None
        if query.qname in _IDENTITY_NAMES:
            text = self.options.identity
        elif query.qname in _VERSION_NAMES:
            text = self.options.version
        if text is None:
            return _refused(EDE_NOT_SUPPORTED)
        if query.qtype not in (dns.rdatatype.TXT, dns.rdatatype.ANY):
            return Result(Kind.NODATA)
        assert query.qname is not None
        rrset = dns.rrset.from_text_list(
            query.qname, 0, dns.rdataclass.CH, dns.rdatatype.TXT, [_quote(text)]
        )
        return Result(Kind.ANSWER, answer=[rrset])

    def _transfer(self, zones: Zones, query: Query, tcp: bool, client: str) -> Iterable[bytes]:
        """AXFR over TCP; IXFR over TCP and UDP, answered with the SOA alone when the client
        is up to date (RFC 1995 section 2), else as a full transfer (AXFR-style, section 4;
        over UDP, where a full transfer never fits, the SOA alone tells the client to come
        back over TCP).

        The checks go in Knot DNS's and NSD's order: AXFR over UDP is not implemented at
        all (RFC 5936 section 4.2: not defined over UDP); then the name must be a zone's
        apex (NOTAUTH), the client must be allowed (REFUSED, EDE Prohibited), and an IXFR
        must carry the client's SOA in its authority section (RFC 1995 section 3; FORMERR)."""
        if query.qtype == dns.rdatatype.AXFR and not tcp:
            return [self._render(query, Result(Kind.REFUSED, rcode=dns.rcode.NOTIMP, aa=False), tcp)]
        assert query.qname is not None
        zone = zones.find(query.qname) if query.qclass == dns.rdataclass.IN else None
        if zone is None or zone.origin != query.qname:
            return [self._render(query, Result(Kind.REFUSED, rcode=dns.rcode.NOTAUTH, aa=False), tcp)]
        if not self._may_transfer(client):
            return [self._render(query, _refused(EDE_PROHIBITED), tcp)]
        if query.qtype == dns.rdatatype.IXFR:
            serial = ixfr_client_serial(query.data)
            if serial is None:
                return [self._render(query, Result(Kind.REFUSED, rcode=dns.rcode.FORMERR, aa=False), tcp)]
            if not tcp or is_current(serial, zone.serial()):
                return [self._render(query, Result(Kind.ANSWER, answer=[zone.soa]), tcp)]
        return axfr_stream(zone, query, self.options.xfr_message_size)

    def _may_transfer(self, client: str) -> bool:
        try:
            address = ipaddress.ip_address(client.split("%", 1)[0])
        except ValueError:
            return False
        return any(address in network for network in self.options.xfr_allow)


def _label_key(zones: Zones, query: Query, wire: bytes, tcp: bool,
               outcome: SteerOutcome | None) -> tuple:
    """What the metrics count an answer under: the zone holding the question, the type,
    the rcode, the transport, and each steering decision as (owner, type, pool, values)."""
    assert query.qname is not None
    zone = zones.for_question(query.qname, query.qtype)
    steering: tuple = ()
    if outcome is not None:
        steering = tuple((owner, rdtype, decision.pool or "", decision.values)
                         for (owner, rdtype), decision in zip(outcome.records, outcome.decisions))
    return (zone.origin.to_text() if zone is not None else NO_ZONE, query.qtype,
            wire[3] & 0x0F, tcp, steering)


@lru_cache(maxsize=4096)
def _packed_address(client: str) -> bytes:
    """The client's address as the server cookie hashes it (4 or 16 bytes); empty when
    the caller gave no address."""
    try:
        return ipaddress.ip_address(client.split("%", 1)[0]).packed
    except ValueError:
        return b""


def _refused(ede: int) -> Result:
    return Result(Kind.REFUSED, rcode=dns.rcode.REFUSED, aa=False, ede=ede)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
