"""`gslb explain`: the steering decision for one name and client, step by step.

It loads exactly what `gslb serve` loads: the configuration of record read the same way
(with `--redis`, Redis's once it holds one, else the zones folder's), the state (the
state file; with `--redis`, the quorum of the agents' verdicts as the nodes judge it),
the geo databases. It makes the decision with the same `Steering.decide` the DNS path uses, and
then answers the same question through the DNS path itself, so the printout shows the
trace and the bytes a resolver would get, and they cannot disagree.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.rdatatype

from gslb.dns.edns import ClientSubnet
from gslb.dns.handler import Responder
from gslb.load.geoip import GeoIPError, open_databases
from gslb.snapshot import Snapshot
from gslb.health.probes import probe_all
from gslb.settings import StoreSettings
from gslb.steering.model import Health
from gslb.state.service import read_state_once
from gslb.state.store import StateFileError, StateView, format_time
from gslb.steering.engine import decide, format_trace
from gslb.steering.model import Decision
from gslb.steering.front import DRAW_SLOTS, Steering
from gslb.dns.resolver import Zones
from gslb.dns.zone import to_wire
from gslb.config.follower import REDIS, read_config


@dataclass(frozen=True)
class Explanation:
    name: str
    rdtype: str
    decision: Decision | None  # None: the name is not steered
    trace: str  # the decision step by step (or why there is none)
    answer: str  # the DNS response, as text


class NotExplained(Exception):
    """Nothing to explain: no zones folder, or a name no served zone holds."""


def explain(zones_dir: Path, name: str, rdtype: str, client: str, ecs: str | None,
            geoip: tuple[Path, ...], state: Path | None, draw: int,
            store: StoreSettings | None = None) -> str:
    """The explanation as text.

    ValueError for bad arguments or unloadable inputs; NotExplained when there is no
    answer to explain (the server would not be authoritative for the name)."""
    _check_arguments(rdtype, client, draw)
    redis = store.redis if store is not None else None
    if not redis and not zones_dir.is_dir():
        raise NotExplained(f"--zones {zones_dir}: no such folder")
    owner = dns.name.from_text(name)
    # the configuration the nodes serve, read the same way (gslb/config/follower.py); as
    # `gslb serve` starts, a record with a problem answers SERVFAIL (no last good one)
    live, source, problems = read_config(zones_dir, redis)
    zones = list(live.zones.values())
    where = "Redis" if source.kind == REDIS else str(zones_dir)
    if Zones(zones).find(owner) is None:
        raise NotExplained(f"{owner} is in no zone served from {where}: the server "
                           "answers REFUSED (not authoritative)")
    records = live.all_records()
    lines = [f"configuration: {where}, version {source.version}"]
    lines += [f"problem: {p}" for p in problems]
    try:
        view = read_state_once(state, store)
    except StateFileError as exc:
        raise ValueError(str(exc)) from None
    lines.append(describe_store(view))
    if store is None or not store.redis:
        view = _probed_once(view, records, owner)
    try:
        geo = open_databases(geoip)
    except GeoIPError as exc:
        raise ValueError(str(exc)) from None
    steering = Steering.with_geo(records, view.health, view.rtt, view.version, geo,
                                 overrides=view.overrides)
    snapshot = Snapshot(Zones(zones)).replaced_by(zones, steering=steering)
    found = explain_snapshot(snapshot, name, rdtype, client, ecs, draw)
    lines += [found.trace, "", "DNS answer (the same path `gslb serve` takes):", found.answer]
    return "\n".join(lines)


def _check_arguments(rdtype: str, client: str, draw: int) -> None:
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
    _check_arguments(rdtype, client, draw)
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


def _probed_once(view: StateView, records: dict, owner: dns.name.Name) -> StateView:
    """Without a store, a server's verdicts live only in its memory: probe this name's
    checks once now, as the server does at start (the first result decides). State file
    entries still win, as they do in the server."""
    probes = {member.probe.key: member.probe for record in records.values()
              if dns.name.from_text(record.owner) == owner
              for pool in record.pools.values() for member in pool.members if member.probe}
    if not probes:
        return view
    outcomes = asyncio.run(probe_all(list(probes.values())))
    health = {key: Health(up=outcome.ok, source=f"probed once by explain: {outcome.detail}", age=0.0)
              for key, outcome in zip(probes, outcomes)}
    health.update(view.health)
    return replace(view, health=health)


def describe_store(view: StateView) -> str:
    """Where the health came from, and whether that source is reachable."""
    status = view.store
    if status is None or status.source == "in-process":
        return ("state: no --redis: `gslb serve` probes the checks itself; explain probes "
                "this name's checks once now (state file entries win)")
    if status.connected:
        line = f"state store {status.source}: connected, epoch {status.epoch}"
    else:
        line = (f"state store {status.source}: UNREACHABLE ({status.error}); DNS nodes keep "
                f"serving their last known state and retry with backoff; shown here: the "
                f"state file only")
    overrides = ", ".join(f"{value} {o.mode} {o.detail}" for value, o in sorted(view.overrides.items()))
    return line + (f"\noverrides: {overrides}" if overrides else "")
