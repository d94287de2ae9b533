"""What the web console shows that other routes do not: a steered record as DNS serves
it now (each member's health, verdicts and override), the pool each country gets (for
a world map), the nodes that serve, and the caller's own token.

They read the serving snapshot, the state view and the heartbeats, like /v1/health and
explain; they change nothing. Any client may use them: the console has no route of its
own but its static files (api/console/).
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api import console
from api.deps import Context, Ctx, Reader, zone_of
from api.problems import ApiProblem, responses
from api.routes.health import AgentState
from gslb.config.rrsets import owner_name
from gslb.observability.heartbeat import NODES, parse_beats, silent
from gslb.steering.geo import pools_by_country
from gslb.steering.model import Member, SteeredRecord

router = APIRouter(prefix="/v1", tags=["console"])


class MemberStatus(BaseModel):
    value: str
    weight: int
    priority: int
    datacenter: str | None
    state: str = Field(description="enabled, drained or disabled (the configuration)")
    check: str | None = Field(description="the health key (`check@probe address`); none: always up")
    up: bool = Field(description="as the DNS answers count it now")
    source: str = Field(description="what decided: the embedded checker, the agents' quorum, "
                        "an override, `no check`, `unknown` (no verdict yet)")
    override: str | None = Field(None, description="an override in force: up, down or drain")
    agents: list[AgentState] = Field(default_factory=list,
                                     description="each agent's latest verdict, newest first")


class PoolStatus(BaseModel):
    name: str
    fallback: str | None
    members: list[MemberStatus]


class SteeredStatus(BaseModel):
    name: str
    type: str
    version: int = Field(description="the configuration version the record is read from")
    pools: list[PoolStatus]


class NodeOut(BaseModel):
    node: str
    config_version: int = Field(description="the configuration version every worker serves")
    zones: dict[str, int] = Field(description="zone origin -> serial it serves")
    seen: float = Field(description="seconds since its last heartbeat (0: this node)")
    stopped: bool = Field(description="no heartbeat for five of its intervals")
    lagging: list[str] = Field(description="zones it serves older than the newest serial")
    qps: float = 0.0


def _served(ctx: Context, zone: str, name: str, type: str) -> SteeredRecord:
    """The steered record DNS serves now; 404 when there is none."""
    found = zone_of(ctx.service.current(), zone)
    owner = owner_name(found, name).to_text().lower()
    steering = ctx.snapshot().steering
    record = steering.records.get((owner, type.upper())) if steering is not None else None
    if record is None:
        raise ApiProblem(404, f"no steered {type.upper()} record at {owner}")
    return record


def _member(member: Member, health: dict, overrides: dict, verdicts: dict,
            now: float) -> MemberStatus:
    key = member.health_key
    override = overrides.get(member.value)
    known = health.get(key) if key else None
    if override is not None and override.mode in ("up", "down"):
        up, source = override.mode == "up", "override"
    elif key is None:
        up, source = True, "no check"
    elif known is None:
        up, source = True, "unknown"
    else:
        up, source = known.up, known.source
    return MemberStatus(
        value=member.value, weight=member.weight, priority=member.priority,
        datacenter=member.datacenter, state=member.state.value, check=key, up=up, source=source,
        override=override.mode if override is not None else None,
        agents=[AgentState(agent=v.agent, up=v.up, age=round(max(0.0, now - v.at), 3),
                           fresh=v.fresh, detail=v.detail)
                for v in sorted(verdicts.get(key, ()) if key else (), key=lambda v: -v.at)])


@router.get("/zones/{zone}/steered/{name}/{type}/status", response_model=SteeredStatus,
            responses=responses(401, 403, 404, 422),
            summary="A steered record as DNS serves it now: members with live health")
def steered_status(zone: str, name: str, type: str, ctx: Ctx, token: Reader) -> SteeredStatus:
    """The serving snapshot's record (its configuration version may trail a write by the
    time the node takes to serve it), each member's health as answers count it, and each
    health agent's latest verdict with why a probe failed."""
    record = _served(ctx, zone, name, type)
    steering = ctx.snapshot().steering
    view = ctx.state() if ctx.state is not None else None
    health = dict(view.health) if view is not None else {}
    health.update(steering.health if steering is not None else {})
    overrides = dict(view.overrides) if view is not None else {}
    overrides.update(steering.overrides if steering is not None else {})
    verdicts = view.verdicts if view is not None else {}
    now = time.time()
    return SteeredStatus(
        name=record.owner, type=record.rdtype, version=ctx.service.node.live.version,
        pools=[PoolStatus(name=pool.name, fallback=pool.fallback,
                          members=[_member(m, health, overrides, verdicts, now)
                                   for m in pool.members])
               for pool in record.pools.values()])


@router.get("/nodes", response_model=list[NodeOut], responses=responses(401, 403),
            summary="The DNS nodes: configuration version, zones and serials, last heartbeat")
def nodes(ctx: Ctx, token: Reader) -> list[NodeOut]:
    """From the heartbeats in Redis when the server shares state there (`--redis`),
    else this one node. Zones the token may not read are left out."""
    now = time.time()
    if ctx.state_redis is not None:
        beats = parse_beats(ctx.state_redis.hvals(NODES))
    else:
        live = ctx.service.current()
        beats = [{"node": "this node", "config_version": ctx.service.node.live.version, "at": now,
                  "zones": {o.to_text(): z.serial() for o, z in live.zones.items()}}]
    newest: dict[str, int] = {}
    for beat in beats:
        for zone, serial in beat.get("zones", {}).items():
            newest[zone] = max(newest.get(zone, serial), serial)
    out = []
    for beat in sorted(beats, key=lambda b: str(b.get("node"))):
        zones = {z: s for z, s in beat.get("zones", {}).items() if token.allows("read", z)}
        out.append(NodeOut(node=str(beat["node"]), config_version=beat.get("config_version", 0),
                           zones=zones, seen=round(max(0.0, now - beat["at"]), 1),
                           stopped=silent(beat, now), qps=beat.get("qps", 0.0),
                           lagging=[z for z, s in sorted(newest.items())
                                    if token.allows("read", z) and zones.get(z, -1) < s]))
    return out


class TokenOut(BaseModel):
    name: str
    role: str = Field(description="read, write or admin")
    zones: list[str] = Field(description="the zones it may touch; empty: every zone")


@router.get("/token", response_model=TokenOut, responses=responses(401),
            summary="The caller's token: name, role and zones (never its secret)")
def whoami(token: Reader) -> TokenOut:
    """What the console shows of the signed-in user, and which controls it offers
    (the routes still enforce the role)."""
    return TokenOut(name=token.name, role=token.role, zones=list(token.zones))


class PoolShare(BaseModel):
    pool: str | None = Field(description="the pool; none: no rule matches")
    countries: list[str] = Field(description="ISO 3166-1 alpha-2 codes")


class GeoMap(BaseModel):
    name: str
    type: str
    countries: dict[str, str | None] = Field(
        description="alpha-2 country code -> the pool its clients get by location (none: "
        "no rule matches, the record's all_down behaviour)")
    split: list[str] = Field(description="countries part of which a subdivision rule "
                             "sends elsewhere")
    address_rules: list[str] = Field(description="subnet and ASN rules, which come first "
                                     "for the addresses they name, whatever the country")
    continents: str = Field(description="where each country's continent came from: the "
                            "GeoIP database, or the console's map when none is loaded")
    geo_rules: int = Field(description="rules that name continents, countries or "
                           "subdivisions (0: every country gets the same pool)")


def _continents(ctx: Context) -> tuple[dict[str, str | None], str]:
    table: dict[str, str | None] = {c["code"]: c.get("continent") for c in console.world()["countries"]}
    if ctx.geo is None:
        return table, "the console's map (no GeoIP database loaded)"
    for continent, country, _ in ctx.geo.table().keys.places:
        if country and continent:
            table[country] = continent
    return table, "the GeoIP database"


@router.get("/zones/{zone}/steered/{name}/{type}/geo", response_model=GeoMap,
            responses=responses(401, 403, 404, 422),
            summary="Which pool the clients of each country get (for a world map)")
def steered_geo(zone: str, name: str, type: str, ctx: Ctx, token: Reader) -> GeoMap:
    """From the record's rules as DNS serves them: continent, country and catch-all rules
    by country (with the GeoIP database's continents when one is loaded); subnet and ASN
    rules are listed apart, as they go by address."""
    record = _served(ctx, zone, name, type)
    continents, source = _continents(ctx)
    found = pools_by_country(record.rules, continents)
    address = [f"{', '.join([*map(str, r.subnets), *(f'AS{a}' for a in r.asns)])} -> {r.pool}"
               for r in record.rules if r.subnets or r.asns]
    return GeoMap(name=record.owner, type=record.rdtype,
                  countries={c: p.pool for c, p in sorted(found.items())},
                  split=sorted(c for c, p in found.items() if p.split),
                  address_rules=address, continents=source,
                  geo_rules=sum(1 for r in record.rules if r.geos))
