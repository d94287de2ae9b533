"""`gslb explain`: the steering decision for one name and client, step by step.

It loads exactly what `gslb serve` loads: the configuration of record read the same way
(with `--redis`, Redis's once it holds one, else the zones folder's), the state (the
state file; with `--redis`, the quorum of the agents' verdicts as the nodes judge it),
the geo databases. It makes the decision with the same `Steering.decide` the DNS path uses, and
then answers the same question through the DNS path itself (`gslb.steering.explain`, which
`/v1/explain` uses too), so the printout shows the trace and the bytes a resolver would get,
and they cannot disagree. The loading is imported when the command runs, not for the parser.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import dns.name

from gslb.cli.flags import add_store_flags, geoip_paths, steering_flags, store_settings_from, zones_flag
from gslb.steering.front import DRAW_SLOTS

if TYPE_CHECKING:
    from gslb.settings import StoreSettings
    from gslb.state.store import StateView


class NotExplained(Exception):
    """Nothing to explain: no zones folder, or a name no served zone holds."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    explain = commands.add_parser(
        "explain",
        help="show, step by step, how a steered name is answered for a client",
        description="Print the steering decision for NAME as the DNS path makes it: the "
        "client identity (ECS or resolver address, truncated to /24 or /56), the geo lookup, "
        "the rule, each policy's candidates and reason, health with its source and age, "
        "fallbacks, the answer, its ECS scope and TTL. For a name that is not steered it "
        "prints the static answer.",
    )
    explain.add_argument("name", metavar="NAME", help="the name to explain, e.g. www2.example.com")
    explain.add_argument("type", metavar="TYPE", nargs="?", default="A",
                         help="A, AAAA or CNAME (default: A)")
    explain.add_argument("--client", required=True, metavar="IP",
                         help="the resolver's address as the server would see it")
    explain.add_argument("--ecs", metavar="CIDR",
                         help="an EDNS Client Subnet the resolver sends (RFC 7871)")
    explain.add_argument("--draw", type=int, default=0, metavar="SLOT",
                         help=f"which of the {DRAW_SLOTS} equal slots of the weighted draw to "
                         f"decide with, 0 to {DRAW_SLOTS - 1}: the server picks one at random "
                         "per query, so each slot stands for 1/64 of the traffic (default: 0)")
    zones_flag(explain)
    steering_flags(explain, serving=False)
    add_store_flags(explain, serving=False)
    explain.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        text = explain(args.zones, args.name, args.type, args.client, args.ecs,
                       geoip_paths(args), Path(args.state) if args.state else None, args.draw,
                       store_settings_from(args))
    except ValueError as exc:
        print(f"gslb explain: {exc}", file=sys.stderr)
        return 2
    except NotExplained as exc:
        print(f"gslb explain: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0

def explain(zones_dir: Path, name: str, rdtype: str, client: str, ecs: str | None,
            geoip: tuple[Path, ...], state: Path | None, draw: int,
            store: StoreSettings | None = None) -> str:
    """The explanation as text.

    ValueError for bad arguments or unloadable inputs; NotExplained when there is no
    answer to explain (the server would not be authoritative for the name)."""
    from gslb.config.follower import REDIS, read_config
    from gslb.dns.resolver import Zones
    from gslb.load.geoip import GeoIPError, open_databases
    from gslb.snapshot import Snapshot
    from gslb.state.service import read_state_once
    from gslb.state.store import StateFileError
    from gslb.steering.explain import check_arguments, explain_snapshot
    from gslb.steering.front import Steering

    check_arguments(rdtype, client, draw)
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
                                 overrides=view.overrides, keyed=False)
    snapshot = Snapshot(Zones(zones)).replaced_by(zones, steering=steering)
    found = explain_snapshot(snapshot, name, rdtype, client, ecs, draw)
    lines += [found.trace, "", "DNS answer (the same path `gslb serve` takes):", found.answer]
    return "\n".join(lines)


def _probed_once(view: StateView, records: dict, owner: dns.name.Name) -> StateView:
    """Without a store, a server's verdicts live only in its memory: probe this name's
    checks once now, as the server does at start (the first result decides). State file
    entries still win, as they do in the server."""
    import asyncio
    from dataclasses import replace

    from gslb.health.probes import probe_all
    from gslb.steering.model import Health

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
