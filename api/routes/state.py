"""Health overrides with an expiry, and RTT telemetry: state, not configuration.

Overrides force a member value up, down or drain until a time (the checker's semantics,
`gslb.state.overrides`): in Redis when the server shares state there (`--redis`), else in
the state file it watches (`--state`). RTT samples from probes and real-user beacons go
to Redis in batches, rate-limited per client network (`gslb.state.telemetry`).

An override reaches every zone whose steered records have a member with that value, so
a token limited to some zones may only override values used in those zones alone (and
lists only the overrides of values its zones use). Every set and clear is logged with
its author and reason (`/v1/overrides/log`).
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.deps import Context, Ctx, Reader, Writer
from api.problems import ApiProblem, responses
from api.schemas import Strict
from gslb.config.rrsets import FieldProblem
from gslb.config.tokens import Token
from gslb.state import overrides as store
from gslb.state.telemetry import Sample, ingest

router = APIRouter(prefix="/v1", tags=["health"])
MAX_OVERRIDE = 30 * 86400.0  # seconds: an override is a temporary measure
Value = Annotated[str, Path(max_length=255, description="the member's value (address or target)")]


class OverrideBody(Strict):
    mode: Literal["up", "down", "drain"]
    seconds: float = Field(gt=0, le=MAX_OVERRIDE, description="how long it holds; then it lapses")
    reason: str = Field("", max_length=200)


class OverrideOut(BaseModel):
    value: str
    mode: str
    until: float = Field(description="seconds since the epoch")
    by: str = ""
    reason: str = ""


class RttSample(Strict):
    client: str = Field(max_length=64, description="client network (CIDR) or region code")
    datacenter: str = Field(max_length=64)
    ms: float = Field(ge=0, le=60000)


class RttBatch(Strict):
    samples: list[RttSample] = Field(min_length=1, max_length=1000)


class IngestOut(BaseModel):
    accepted: int
    limited: int = Field(description="over the per-client rate limit, not stored")
    invalid: list[str]


class OverrideLogEntry(BaseModel):
    time: float
    by: str
    value: str
    action: Literal["set", "clear"]
    mode: str = ""
    until: float = 0.0
    reason: str = ""
    zones: list[str] = Field(default_factory=list, description="the zones it changed")


def _scope(ctx: Context, token: Token, value: str, role: str) -> list[str]:
    """The zones an override of `value` reaches; 403 when the token may not change (or
    read) every one of them, or when no zone of the token uses it."""
    zones = sorted(ctx.service.current().zones_using(value))
    if not token.zones:
        return zones
    if not zones:
        raise ApiProblem(403, f"{value} is the value of no steered member in the zones of "
                         f"token {token.name!r}")
    outside = [zone for zone in zones if not token.allows(role, zone)]
    if outside:
        raise ApiProblem(403, f"{value} is also used in {', '.join(outside)}, which token "
                         f"{token.name!r} may not change: an override would reach them too")
    return zones


def _where(ctx: Context) -> str:
    if ctx.state_redis is None and ctx.state_file is None:
        raise ApiProblem(409, "this server keeps no override store: start it with --redis "
                         "or --state FILE")
    return "redis" if ctx.state_redis is not None else "file"


@router.get("/overrides", response_model=list[OverrideOut], responses=responses(401, 403, 409),
            summary="Overrides in force")
def list_overrides(ctx: Ctx, token: Reader) -> list[OverrideOut]:
    if _where(ctx) == "redis":
        found = store.list_in_redis(ctx.state_redis)
    else:
        assert ctx.state_file is not None
        found = store.list_in_file(ctx.state_file)
    live = ctx.service.current()
    return [OverrideOut(value=v, mode=e["mode"], until=e["until"], by=e.get("by", ""),
                        reason=e.get("reason", "")) for v, e in sorted(found.items())
            if not token.zones or any(token.allows("read", z) for z in live.zones_using(v))]


@router.get("/overrides/log", response_model=list[OverrideLogEntry],
            responses=responses(401, 403, 409),
            summary="Who set or lifted which override, when and why; newest first")
def override_log(ctx: Ctx, token: Reader,
                 limit: Annotated[int, Query(ge=1, le=store.LOG_KEEP)] = 200) -> list[OverrideLogEntry]:
    where = ctx.state_redis if _where(ctx) == "redis" else ctx.state_file
    return [OverrideLogEntry(**entry) for entry in store.read_log(where, store.LOG_KEEP)
            if not token.zones or any(token.allows("read", z) for z in entry.get("zones", ()))
            ][:limit]


@router.put("/overrides/{value}", response_model=OverrideOut, responses=responses(401, 403, 409, 422),
            summary="Force a member up, down or drain for a while")
def put_override(value: Value, body: OverrideBody, ctx: Ctx, token: Writer) -> OverrideOut:
    zones = _scope(ctx, token, value, "write")
    now = time.time()
    until = now + body.seconds
    if _where(ctx) == "redis":
        store.set_in_redis(ctx.state_redis, value, body.mode, until, by=token.name, reason=body.reason)
        where: object = ctx.state_redis
    else:
        assert ctx.state_file is not None
        store.set_in_file(ctx.state_file, value, body.mode, until, by=token.name,
                          reason=body.reason)
        where = ctx.state_file
    store.log_change(where, {"time": now, "by": token.name, "value": value, "action": "set",
                             "mode": body.mode, "until": until, "reason": body.reason,
                             "zones": zones})
    return OverrideOut(value=value, mode=body.mode, until=until, by=token.name, reason=body.reason)


@router.delete("/overrides/{value}", status_code=204, responses=responses(401, 403, 404, 409),
               summary="Lift an override")
def delete_override(value: Value, ctx: Ctx, token: Writer) -> None:
    zones = _scope(ctx, token, value, "write")
    where: object
    if _where(ctx) == "redis":
        removed = store.clear_in_redis(ctx.state_redis, value)
        where = ctx.state_redis
    else:
        assert ctx.state_file is not None
        removed = store.clear_in_file(ctx.state_file, value)
        where = ctx.state_file
    if not removed:
        raise ApiProblem(404, f"no override for {value}")
    store.log_change(where, {"time": time.time(), "by": token.name, "value": value,
                             "action": "clear", "zones": zones})


@router.post("/telemetry/rtt", response_model=IngestOut, responses=responses(401, 403, 409, 422),
             summary="Report RTT samples (probes, real-user beacons), up to 1000 per batch")
def post_rtt(body: RttBatch, ctx: Ctx, token: Writer) -> IngestOut:
    """Stored in Redis, where every node's `latency` policy reads them; each client
    network accepts `telemetry_per_second` samples a second, the rest are counted as
    limited. Invalid samples are listed and skipped; the others are kept."""
    if ctx.state_redis is None:
        raise ApiProblem(409, "RTT telemetry needs the shared store: start the server with --redis",
                         [FieldProblem("samples", "no Redis to store them in")])
    result = ingest(ctx.state_redis, [Sample(s.client, s.datacenter, s.ms) for s in body.samples],
                    limit=int(ctx.settings.telemetry_per_second))
    return IngestOut(accepted=result.accepted, limited=result.limited, invalid=result.invalid or [])
