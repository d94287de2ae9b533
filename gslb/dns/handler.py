"""Bytes in, bytes out: one query through parse, policy checks, resolve and render.

The socket code calls `Responder.respond` and sends whatever comes back (nothing, one
message, or an AXFR stream). Everything about *which* rcode a query deserves lives here
or below; nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from gslb.dns.render import render
from gslb.dns.resolver import Kind, Result, Zones, resolve
from gslb.dns.wire import Query, parse_query
from gslb.dns.xfr import DEFAULT_MESSAGE_SIZE, axfr_stream

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NO_EDNS_LIMIT = 512
TCP_LIMIT = 65535
# Meta types that only make sense in other contexts (RFC 6895 section 3.1).
_NOT_QUERYABLE = {
    dns.rdatatype.OPT,
    dns.rdatatype.TSIG,
    dns.rdatatype.TKEY,
    dns.rdatatype.MAILA,
    dns.rdatatype.MAILB,
}
_IDENTITY_NAMES = {dns.name.from_text("id.server."), dns.name.from_text("hostname.bind.")}
_VERSION_NAMES = {dns.name.from_text("version.server."), dns.name.from_text("version.bind.")}
_XFR_TYPES = {dns.rdatatype.AXFR, dns.rdatatype.IXFR}


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


class Responder:
    """Answers queries for whatever `Zones` the caller passes in (the current snapshot)."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()

    def respond(self, zones: Zones, data: bytes, tcp: bool, client: str) -> list[bytes]:
        """The response messages for one received message; empty means stay silent."""
        query = parse_query(data)
        if query is None:
            return []
        if query.error is not None:
            return [self._render(query, Result(Kind.REFUSED, rcode=query.error, aa=False), tcp)]
        if query.qtype in _XFR_TYPES:
            return list(self._transfer(zones, query, tcp, client))
        if query.qtype in _NOT_QUERYABLE:
            result = Result(Kind.REFUSED, rcode=dns.rcode.NOTIMP, aa=False)
        elif query.qclass == dns.rdataclass.IN:
            assert query.qname is not None
            result = resolve(zones, query.qname, query.qtype)
        elif query.qclass == dns.rdataclass.CH:
            result = self._chaos(query)
        else:
            result = Result(Kind.REFUSED, rcode=dns.rcode.REFUSED, aa=False)
        return [self._render(query, result, tcp)]

    def respond_stream(self, zones: Zones, data: bytes, tcp: bool, client: str) -> Iterable[bytes]:
        """Like `respond`, but a zone transfer comes back as a lazy iterator of messages.

        Each message is rendered when the caller asks for it, so a large AXFR can be sent
        a message at a time between other work instead of all at once.
        """
        query = parse_query(data)
        if query is not None and query.error is None and query.qtype in _XFR_TYPES:
            return self._transfer(zones, query, tcp, client)
        return self.respond(zones, data, tcp, client)

    def _render(self, query: Query, result: Result, tcp: bool) -> bytes:
        if tcp:
            limit = TCP_LIMIT
        elif query.edns is not None:
            limit = query.edns.udp_limit(self.options.max_udp_payload)
        else:
            limit = NO_EDNS_LIMIT
        return render(query, result, limit, self.options.max_udp_payload, self.options.nsid)

    def _chaos(self, query: Query) -> Result:
        """CH TXT server identity and version, when configured; REFUSED otherwise."""
        text = None
        if query.qname in _IDENTITY_NAMES:
            text = self.options.identity
        elif query.qname in _VERSION_NAMES:
            text = self.options.version
        if text is None:
            return Result(Kind.REFUSED, rcode=dns.rcode.REFUSED, aa=False)
        if query.qtype not in (dns.rdatatype.TXT, dns.rdatatype.ANY):
            return Result(Kind.NODATA)
        assert query.qname is not None
        rrset = dns.rrset.from_text_list(
            query.qname, 0, dns.rdataclass.CH, dns.rdatatype.TXT, [_quote(text)]
        )
        return Result(Kind.ANSWER, answer=[rrset])

    def _transfer(self, zones: Zones, query: Query, tcp: bool, client: str) -> Iterable[bytes]:
        """AXFR (and IXFR, answered as a full transfer: RFC 1995 section 4) over TCP."""
        assert query.qname is not None
        zone = zones.find(query.qname) if query.qclass == dns.rdataclass.IN else None
        if zone is None or zone.origin != query.qname:
            return [self._render(query, Result(Kind.REFUSED, rcode=dns.rcode.NOTAUTH, aa=False), tcp)]
        if query.qtype == dns.rdatatype.IXFR and not tcp:
            # RFC 1995 section 4: a UDP reply that cannot hold the changes is the SOA alone,
            # telling the client to come back over TCP.
            return [self._render(query, Result(Kind.ANSWER, answer=[zone.soa]), tcp)]
        if not tcp or not self._may_transfer(client):
            return [self._render(query, Result(Kind.REFUSED, rcode=dns.rcode.REFUSED, aa=False), tcp)]
        return axfr_stream(zone, query, self.options.xfr_message_size)

    def _may_transfer(self, client: str) -> bool:
        try:
            address = ipaddress.ip_address(client.split("%", 1)[0])
        except ValueError:
            return False
        return any(address in network for network in self.options.xfr_allow)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
