"""EDNS(0): the OPT record of a query (RFC 6891), its options, and the reply's OPT.

Only what an authoritative server acts on is interpreted: the UDP payload size, the DO
bit, NSID (RFC 5001), Client Subnet (RFC 7871), COOKIE (RFC 7873; gslb/dns/cookies.py
makes and checks them), and the value of our readiness probe's option (a local-use
code, RFC 6891 section 9), which the responder compares with the node's key. Other
options are ignored, as RFC 6891 section 6.1.2 requires.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

import dns.edns

from gslb.dns.cookies import CLIENT_COOKIE, MAX_SERVER_COOKIE, MIN_SERVER_COOKIE

OPTION_NSID = dns.edns.OptionType.NSID  # 3 (an int enum: compares equal to the code)
OPTION_ECS = dns.edns.OptionType.ECS  # 8
OPTION_COOKIE = dns.edns.OptionType.COOKIE  # 10, RFC 7873
OPTION_EDE = dns.edns.OptionType.EDE  # 15, Extended DNS Errors (RFC 8914)
# The node's own readiness probe (gslb/server/probe.py) carries its key in this option:
# 65001-65534 are for local use (RFC 6891 section 9), never assigned to anyone else.
OPTION_PROBE = 65301
DO_BIT = 0x8000
MIN_PAYLOAD = 512  # RFC 6891 section 6.2.3: smaller values are treated as 512
BADVERS = 16

# RFC 7871 section 11.1 advises resolvers not to send more than this, and servers to
# use no more of the address than this, to protect client privacy.
ECS_MAX_SOURCE = {1: 24, 2: 56}


class FormatError(ValueError):
    """The OPT record is malformed: the answer is FORMERR."""


@dataclass(frozen=True, slots=True)
class ClientSubnet:
    """A parsed, validated ECS option (RFC 7871 section 6)."""

    family: int  # 1 = IPv4, 2 = IPv6
    source: int  # SOURCE PREFIX-LENGTH as sent
    address: bytes  # ADDRESS as sent (ceil(source / 8) octets)

    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The client network, cut to the privacy limit of RFC 7871 section 11.1."""
        width = 4 if self.family == 1 else 16
        raw = self.address + bytes(width - len(self.address))
        prefix = min(self.source, ECS_MAX_SOURCE[self.family])
        addr = ipaddress.ip_address(raw)
        return ipaddress.ip_network(f"{addr}/{prefix}", strict=False)


@dataclass(slots=True)
class Edns:
    """What the query's OPT record asked for. Not frozen (a frozen dataclass's __init__
    costs 0.5 us more, on every EDNS query); only the cookie's verdict is filled in
    after parsing, by the responder, which knows the client's address and the secrets."""

    payload: int
    version: int
    do: bool
    nsid: bool = False
    ecs: ClientSubnet | None = None
    probe: bytes | None = None  # the value of an OPTION_PROBE option
    cookie: bytes | None = None  # the COOKIE option as sent: client cookie, server cookie
    # The COOKIE option value the reply carries (client cookie and our server cookie);
    # None: no cookie in the reply (none asked, or the server does no cookies).
    cookie_reply: bytes | None = None
    # The query's server cookie is one this fleet made, still fresh (RFC 9018): the
    # client is who its address says (rate limiting exempts it).
    cookie_valid: bool = False

    def udp_limit(self, server_max: int) -> int:
        return max(MIN_PAYLOAD, min(self.payload, server_max))


def parse_opt(ttl: int, rdclass: int, rdata: bytes) -> Edns:
    """Decode an OPT RR's class (payload), TTL (flags) and options."""
    version = (ttl >> 16) & 0xFF
    do = bool(ttl & DO_BIT)
    if version != 0:
        # BADVERS (RFC 6891 section 6.1.3): options are defined per version, so a version
        # we do not speak has none we could read (Knot DNS and NSD do not read them either).
        return Edns(payload=rdclass, version=version, do=do)
    nsid = False
    ecs = None
    probe = None
    cookie = None
    offset = 0
    end = len(rdata)
    while offset < end:
        if offset + 4 > end:
            raise FormatError("truncated EDNS option header")
        code, length = struct.unpack_from("!HH", rdata, offset)
        offset += 4
        if offset + length > end:
            raise FormatError("EDNS option overruns the OPT record")
        value = rdata[offset : offset + length]
        offset += length
        if code == OPTION_NSID:
            if length:
                raise FormatError("NSID in a query must be empty")
            nsid = True
        elif code == OPTION_ECS:
            if ecs is not None:
                raise FormatError("more than one client subnet option")
            ecs = parse_ecs(value)
        elif code == OPTION_COOKIE:
            # RFC 7873 section 5.2.2: a client cookie alone (8 bytes), or with a server
            # cookie of 8 to 32 bytes; any other length is FORMERR, and so is a second one.
            if cookie is not None:
                raise FormatError("more than one cookie option")
            server = length - CLIENT_COOKIE
            if server and not MIN_SERVER_COOKIE <= server <= MAX_SERVER_COOKIE:
                raise FormatError(f"cookie option of {length} bytes")
            cookie = value
        elif code == OPTION_PROBE:
            probe = value
    return Edns(payload=rdclass, version=version, do=do, nsid=nsid, ecs=ecs, probe=probe,
                cookie=cookie)


def parse_ecs(value: bytes) -> ClientSubnet:
    """Validate ECS per RFC 7871 sections 6 and 7.1.2; violations are FORMERR."""
    if len(value) < 4:
        raise FormatError("client subnet option too short")
    family, source, scope = struct.unpack_from("!HBB", value)
    address = value[4:]
    if family not in ECS_MAX_SOURCE:
        raise FormatError(f"client subnet family {family} unknown")
    bits = 32 if family == 1 else 128
    if source > bits:
        raise FormatError("client subnet source prefix too long")
    if scope != 0:
        raise FormatError("client subnet scope must be 0 in queries")
    if len(address) != (source + 7) // 8:
        raise FormatError("client subnet address length does not match its prefix")
    if source % 8 and address[-1] & (0xFF >> (source % 8)):
        raise FormatError("client subnet address has bits set beyond its prefix")
    return ClientSubnet(family=family, source=source, address=address)


def reply_options(edns: Edns, nsid: bytes | None, ecs_scope: int = 0,
                  ede: int | None = None) -> list[dns.edns.Option]:
    """Options for the response OPT: NSID when asked and configured, an Extended DNS
    Error (RFC 8914) with no EXTRA-TEXT, as Knot DNS and NSD send it, the cookies, and
    ECS echoed."""
    options: list[dns.edns.Option] = []
    if edns.nsid and nsid is not None:
        options.append(dns.edns.GenericOption(OPTION_NSID, nsid))
    if ede is not None:
        options.append(dns.edns.GenericOption(OPTION_EDE, struct.pack("!H", ede)))
    # COOKIE, then ECS last: the answer cache writes each query's cookie and ECS ADDRESS
    # over the reply's tail, at fixed distances from its end.
    if edns.cookie_reply is not None:
        options.append(dns.edns.GenericOption(OPTION_COOKIE, edns.cookie_reply))
    if edns.ecs is not None:
        ecs = edns.ecs
        body = struct.pack("!HBB", ecs.family, ecs.source, ecs_scope) + ecs.address
        options.append(dns.edns.GenericOption(OPTION_ECS, body))
    return options
