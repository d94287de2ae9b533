"""`gslb status`: one screen on the fleet: nodes, zones, configuration, the state store,
member health; nodes that lag the newest configuration or stopped reporting are flagged.

With `--redis` it reads the nodes' heartbeats (gslb/observability/heartbeat.py), the
agents' verdicts and the state epoch from Redis. Without, it shows the one embedded node
through its metrics endpoint (`--metrics HOST:PORT`, as given to `gslb serve`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from gslb.settings import StoreSettings, env_default

# The readers (Redis, Prometheus text, the quorum) are imported when the command runs.
DEFAULT_METRICS = "127.0.0.1:9153"
EXPIRY = StoreSettings.verdict_expiry  # as `gslb serve --verdict-expiry` judges verdicts


def add_parser(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser(
        "status", help="one screen on the fleet: nodes, zones, state store, member health",
        description="With --redis: every DNS node's last heartbeat (version, configuration "
        "digest, snapshot, state epoch, zones and serials, queries per second, uptime), "
        "flagging nodes that stopped reporting (no heartbeat for five of their intervals: 10 s "
        "by default) or lag the newest "
        "zone serials; the state store's epoch and agents; each health key's verdicts and "
        "quorum. Without: the one embedded node, through its --metrics endpoint. Exit 0, "
        "1 when a node is flagged, 2 when the source cannot be read.")
    status.add_argument("--redis", metavar="URL", default=env_default("REDIS"),
                        help="the fleet's Redis (as given to gslb serve; env GSLB_REDIS)")
    status.add_argument("--metrics", metavar="HOST:PORT",
                        default=env_default("METRICS", DEFAULT_METRICS),
                        help=f"without --redis: the node's --metrics address, or its --api "
                        f"address with --token (default: {DEFAULT_METRICS}; env GSLB_METRICS)")
    status.add_argument("--token", metavar="TOKEN", default=env_default("TOKEN"),
                        help="a read token, for /metrics on an API port (env GSLB_TOKEN)")
    status.add_argument("--verdict-expiry", type=float, default=EXPIRY, metavar="SECONDS",
                        help=f"a verdict older than this is stale (default: {EXPIRY:g}, as "
                        "gslb serve)")
    status.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        fleet = gather(args.redis, args.metrics, args.verdict_expiry, args.token)
    except Exception as exc:  # Redis or the node unreachable, or garbage: say which
        source = f"Redis {args.redis}" if args.redis else f"http://{args.metrics}/metrics"
        print(f"gslb status: cannot read {source}: {exc}", file=sys.stderr)
        return 2
    print(render_fleet(fleet))
    return 1 if flagged(fleet) else 0


@dataclass
class Fleet:
    """Everything the screen shows, however it was gathered."""

    source: str
    beats: list[dict[str, Any]] = field(default_factory=list)
    store: str = ""
    members: list[tuple[str, str, str]] = field(default_factory=list)  # key, state, detail


def lagging(beats: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per node, the zones it serves older than the newest serial any node serves (or
    does not serve at all)."""
    newest: dict[str, int] = {}
    for beat in beats:
        for zone, serial in beat["zones"].items():
            newest[zone] = max(newest.get(zone, serial), serial)
    return {beat["node"]: [zone for zone, serial in sorted(newest.items())
                           if beat["zones"].get(zone, -1) < serial] for beat in beats}


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def render(fleet: Fleet, now: float) -> str:
    from gslb.observability.heartbeat import silent

    beats = sorted(fleet.beats, key=lambda b: b["node"])
    behind = lagging(beats)
    stopped = {b["node"] for b in beats if silent(b, now)}
    lines = [f"gslb status: {fleet.source}: {len(beats)} node(s), "
             f"{len(stopped)} stopped reporting, "
             f"{sum(1 for n in behind.values() if n)} lagging"]
    lines.append("")
    newest = max((b.get("config_version", 0) for b in beats if b["node"] not in stopped),
                 default=0)
    lines.append(f"{'NODE':<20} {'VERSION':<8} {'CONFIGURATION':<18} {'DIGEST':<13} "
                 f"{'SNAP':>5} {'EPOCH':>6} {'QPS':>9} {'UPTIME':>7} {'SEEN':>6}  FLAGS")
    for beat in beats:
        flags = []
        if beat["node"] in stopped:
            flags.append("STOPPED REPORTING")
        version = beat.get("config_version", 0)
        if version < newest and beat["node"] not in stopped:
            flags.append(f"CONFIGURATION {version} < {newest}")
        if behind[beat["node"]]:
            flags.append("LAGGING: " + ", ".join(behind[beat["node"]]))
        if not beat.get("store_up", True):
            flags.append("STATE STORE UNREACHABLE")
        configuration = f"v{version} {beat.get('config_source', 'folder')}"
        lines.append(f"{beat['node']:<20} {beat['version']:<8} {configuration:<18} "
                     f"{beat['config']:<13} "
                     f"{beat['snapshot']:>5} {beat['state_epoch']:>6} {beat['qps']:>9.1f} "
                     f"{_age(beat['uptime']):>7} {_age(now - beat['at']) + ' ago':>6}  "
                     + (" ".join(flags) or "ok"))
    lines.append("")
    zones = sorted({zone for beat in beats for zone in beat["zones"]})
    lines.append(f"{'ZONE':<30} SERIAL (per node)")
    for zone in zones:
        serials = ", ".join(f"{b['node']}={b['zones'].get(zone, '-')}" for b in beats)
        lines.append(f"{zone:<30} {serials}")
    lines.append("")
    lines.append(f"state store: {fleet.store}")
    if fleet.members:
        lines.append("")
        lines.append(f"{'HEALTH KEY':<36} {'STATE':<8} VERDICTS")
        for key, state, detail in fleet.members:
            lines.append(f"{key:<36} {state:<8} {detail}")
    return "\n".join(lines)


def from_redis(url: str, now: float, expiry: float = EXPIRY) -> Fleet:
    """Heartbeats, verdicts, agents and the epoch, in one transaction."""
    from gslb.health.quorum import QuorumRule, judge
    from gslb.observability.heartbeat import NODES, parse_beats
    from gslb.state.redis import AGENTS, EPOCH, VERDICTS, connect_sync, parse_url
    from gslb.state.shared import parse_copy

    target = parse_url(url)
    client = connect_sync(target)
    try:
        pipe = client.pipeline(transaction=True)
        pipe.hgetall(NODES)
        pipe.hgetall(VERDICTS)
        pipe.hgetall(AGENTS)
        pipe.get(EPOCH)
        nodes, verdicts, agents, epoch = pipe.execute()
    finally:
        client.close()
    fleet = Fleet(f"Redis {target.display()}")
    fleet.beats = parse_beats(nodes.values())
    copy, _ = parse_copy(epoch, verdicts, {}, {})
    names = []
    for agent, raw in sorted(agents.items()):
        try:
            names.append(f"{agent} (seen {_age(now - float(json.loads(raw)['at']))} ago)")
        except (ValueError, KeyError, TypeError):
            names.append(agent)
    fleet.store = (f"reachable, epoch {copy.epoch}, {len(agents)} agent(s)"
                   + (": " + ", ".join(names) if names else ""))
    for key, found in sorted(copy.verdicts.items()):
        health, marked = judge(found, now, QuorumRule(expiry=expiry))
        state = "unknown" if health is None else ("UP" if health.up else "DOWN")
        detail = ", ".join(f"{v.agent} {'up' if v.up else 'down'} {_age(now - v.at)} ago"
                           + ("" if v.fresh else " (stale)") for v in marked)
        fleet.members.append((key, state, detail))
    return fleet


Samples = dict[str, list[tuple[dict[str, str], float]]]
RATE_WINDOW = 1.0  # seconds between the two scrapes the embedded node's qps comes from


def scrape(address: str, token: str | None = None) -> Samples:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    request = urllib.request.Request(f"http://{address}/metrics", headers={
        "Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as reply:
        text = reply.read().decode()
    values: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values.setdefault(sample.name, []).append((sample.labels, sample.value))
    return values


def from_metrics(address: str, now: float, token: str | None = None) -> Fleet:
    """The one embedded node, from its /metrics (scraped twice, for the query rate)."""
    from gslb.observability.heartbeat import BEAT_SECONDS, config_digest

    first = scrape(address, token)
    time.sleep(RATE_WINDOW)
    values = scrape(address, token)
    answered = [sum(v for _, v in s.get("gslb_queries_total", [])) for s in (first, values)]

    def one(name: str, default: float = 0.0) -> float:
        return values.get(name, [({}, default)])[0][1]

    def label(name: str, key: str) -> str:
        return values.get(name, [({key: "?"}, 0.0)])[0][0].get(key, "?")

    zones = {labels["zone"]: int(value) for labels, value in values.get("gslb_zone_serial", [])}
    age = now - one("gslb_start_time_seconds", now)
    store = values.get("gslb_state_store_up", [({"store": "?"}, 1.0)])[0]
    beat = {
        "node": address, "version": label("gslb_build_info", "version"),
        "config": config_digest(zones), "snapshot": int(one("gslb_snapshot_version")),
        "config_version": int(one("gslb_config_version")),
        "config_source": label("gslb_config_version", "source"),
        "state_epoch": int(one("gslb_state_epoch")), "store_up": bool(store[1]),
        "zones": zones, "at": now, "uptime": age, "interval": BEAT_SECONDS,
        "qps": (answered[1] - answered[0]) / RATE_WINDOW,
    }
    fleet = Fleet(f"embedded node at {address} (no --redis)", [beat])
    fleet.store = f"{store[0].get('store', '?')} ({'up' if store[1] else 'UNREACHABLE'})"
    # per health key: its state and what decided it, with each agent's verdict
    verdicts: dict[str, list[str]] = {}
    for labels, value in values.get("gslb_agent_verdict_up", []):
        verdicts.setdefault(labels["check"], []).append(
            f"{labels['agent']} {'up' if value else 'down'}")
    checks = {labels["check"]: (value, labels["source"])
              for labels, value in values.get("gslb_check_up", [])}
    for key, (up, source) in sorted(checks.items()):
        fleet.members.append((key, "UP" if up else "DOWN",
                              ", ".join(verdicts.get(key, [])) or source))
    named = {labels["check"] for labels, _ in values.get("gslb_member_up", [])}
    for key in sorted(named - set(checks) - {"-"}):
        fleet.members.append((key, "unknown", "no verdict yet"))
    return fleet


def gather(redis_url: str | None, metrics_address: str | None,
           expiry: float = EXPIRY, token: str | None = None) -> tuple[Fleet, float]:
    now = time.time()
    if redis_url:
        return from_redis(redis_url, now, expiry), now
    return from_metrics(metrics_address or DEFAULT_METRICS, now, token), now


def render_fleet(gathered: tuple[Fleet, float]) -> str:
    return render(*gathered)


def flagged(gathered: tuple[Fleet, float]) -> bool:
    """Some node stopped reporting, lags, or lost the state store."""
    from gslb.observability.heartbeat import silent

    fleet, now = gathered
    behind = lagging(fleet.beats)
    return any(silent(b, now) or behind[b["node"]]
               or not b.get("store_up", True) for b in fleet.beats)
