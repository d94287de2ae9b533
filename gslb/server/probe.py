"""The readiness probe's DNS query: the node asks its own DNS port for each zone's SOA.

`/ready` (gslb/server/telemetry.py) must test the path clients use (the same listening
socket, the same answering code, the C fast path included) without being counted as
client traffic: no query count, latency sample, query log line or dnstap frame. So the
probe is an ordinary SOA query with one EDNS option of local use (`OPTION_PROBE`)
holding `KEY`, 16 random bytes made once per node when this module is imported, before
any worker is forked, so every worker holds the same. A query whose option holds the key
is answered like any other and counted nowhere (gslb.dns.handler.Responder, and the C
loop, which compares in constant time too). A client that does not know the key (it
never leaves the host: the probe goes over loopback) cannot make its own queries
invisible: with any other value the option is ignored, as unknown options are.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode

from gslb.dns.edns import OPTION_PROBE
from gslb.settings import ListenAddress

KEY = os.urandom(16)
OPTION = dns.edns.OptionType.make(OPTION_PROBE)  # an unassigned code: stays an int
TIMEOUT = 1.0  # seconds an answer may take
PAYLOAD = 1232


def local_target(address: ListenAddress) -> tuple[int, str]:
    """Where to reach our own listen address: loopback for a wildcard."""
    host = address.host
    if host in ("", "0.0.0.0"):
        return socket.AF_INET, "127.0.0.1"
    if host == "::":
        return socket.AF_INET6, "::1"
    return (socket.AF_INET6 if ":" in host else socket.AF_INET), host


def query(origin: dns.name.Name) -> dns.message.Message:
    """The probe for one zone: SOA at its apex, no RD, the key in the probe option."""
    message = dns.message.make_query(origin, "SOA", use_edns=0, payload=PAYLOAD,
                                     options=[dns.edns.GenericOption(OPTION, KEY)])
    message.id = random.getrandbits(16)
    message.flags &= ~dns.flags.RD
    return message


async def answers_soa(address: ListenAddress, origin: dns.name.Name) -> bool:
    """Ask our own DNS port for the zone's SOA over UDP: an authoritative answer with
    the SOA is the only good reply."""
    family, host = local_target(address)
    probe = query(origin)
    loop = asyncio.get_running_loop()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.connect((host, address.port))  # uvloop has no sock_sendto
            await loop.sock_sendall(sock, probe.to_wire())
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), TIMEOUT)
            reply = dns.message.from_wire(data)
        except (OSError, asyncio.TimeoutError, dns.exception.DNSException):
            return False
    return (reply.id == probe.id and reply.rcode() == dns.rcode.NOERROR
            and bool(reply.flags & dns.flags.AA) and bool(reply.answer))
