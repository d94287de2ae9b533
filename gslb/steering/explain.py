"""One question explained against a snapshot: the steering decision step by step and the
DNS answer, both from the code the DNS path runs, so they cannot disagree.

Pure like the rest of the core: the snapshot, the client and the draw are given (the API
passes the snapshot a server serves; `gslb explain` one it loaded from files)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.rdatatype

from gslb.dns.edns import ClientSubnet
from gslb.dns.handler import Responder
from gslb.dns.zone import to_wire
from gslb.snapshot import Snapshot
from gslb.steering.engine import decide, format_trace
from gslb.steering.front import DRAW_SLOTS
from gslb.steering.model import Decision


@dataclass(frozen=True)
class Explanation:
    name: str
    rdtype: str
    decision: Decision | None  # None: the name is not steered
    trace: str  # the decision step by step (or why there is none)
    answer: str  # the DNS response, as text


def check_arguments(rdtype: str, client: str, draw: int) -> None:
    if rdtype.upper() not in ("A", "AAAA", "CNAME"):
        raise ValueError(f"TYPE {rdtype.upper()}: expected A, AAAA or CNAME")
    try:
        ipaddress.ip_address(client)
    except ValueError:
        raise ValueError(f"--client {client!r} is not an IP address") from None
    if not 0 <= draw < DRAW_SLOTS:
        raise ValueError(f"--draw {draw}: expected a slot from 0 to {DRAW_SLOTS - 1}")


def explain_snapshot(snapshot: Snapshot, name: str, rdtype: str, client: str,
                     ecs: str | None, draw: int) -> Explanation:
    """The decision and the DNS answer for one question against a snapshot (the one a
    server serves, for the API; one loaded from files, for the command)."""
    check_arguments(rdtype, client, draw)
    rdtype = rdtype.upper()
    subnet = _subnet(ecs) if ecs else None
    try:
        owner = dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise ValueError(f"NAME {name!r}: {exc}") from None
    steering = snapshot.steering
    decision = None
    # As the DNS path finds it: a steered CNAME answers an A or AAAA question too.
    key = steering.record_for(to_wire(owner).lower(), dns.rdatatype.from_text(rdtype)) if steering else None
    if steering is not None and key is not None:
        who = steering.client(client, subnet)
        context = steering.context(key, who, draw)
        decision = decide(steering.records[key], context)
        trace = format_trace(decision, steering.records[key], context)
    else:
        trace = f"{owner} {rdtype} is not steered: the zone's own data answers"
    return Explanation(owner.to_text(), rdtype, decision, trace,
                       _dns_answer(snapshot, owner, rdtype, client, ecs, draw))


def _subnet(ecs: str) -> ClientSubnet:
    try:
        network = ipaddress.ip_network(ecs, strict=False)
    except ValueError:
        raise ValueError(f"--ecs {ecs!r} is not a network (CIDR)") from None
    family = 1 if network.version == 4 else 2
    address = network.network_address.packed[: (network.prefixlen + 7) // 8]
    return ClientSubnet(family=family, source=network.prefixlen, address=address)


def _dns_answer(snapshot: Snapshot, owner: dns.name.Name, rdtype: str, client: str,
                ecs: str | None, draw: int) -> str:
    options = [dns.edns.ECSOption.from_text(ecs)] if ecs else []
    query = dns.message.make_query(owner, rdtype, use_edns=0, options=options)
    wire = Responder().respond(snapshot, query.to_wire(), False, client, draw)[0]
    return dns.message.from_wire(wire).to_text()
