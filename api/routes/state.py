"""Health overrides with an expiry, and RTT telemetry: state, not configuration.

Overrides force a member value up, down or drain until a time (the checker's semantics,
`gslb.state.overrides`): in Redis when the server shares state there (`--redis`), else in
the state file it watches (`--state`). RTT samples from probes and real-user beacons go
to Redis in batches, rate-limited per client network (`gslb.state.telemetry`).
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.deps import Context, Ctx, Reader, Writer
from api.problems import ApiProblem, responses
from api.schemas import Strict
from gslb.config.rrsets import FieldProblem
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
    return [OverrideOut(value=v, mode=e["mode"], until=e["until"], by=e.get("by", ""),
                        reason=e.get("reason", "")) for v, e in sorted(found.items())]


@router.put("/overrides/{value}", response_model=OverrideOut, responses=responses(401, 403, 409, 422),
            summary="Force a member up, down or drain for a while")
def put_override(value: Value, body: OverrideBody, ctx: Ctx, token: Writer) -> OverrideOut:
    until = time.time() + body.seconds
    if _where(ctx) == "redis":
        store.set_in_redis(ctx.state_redis, value, body.mode, until, by=token.name, reason=body.reason)
    else:
        assert ctx.state_file is not None
        store.set_in_file(ctx.state_file, value, body.mode, until)
    return OverrideOut(value=value, mode=body.mode, until=until, by=token.name, reason=body.reason)


@router.delete("/overrides/{value}", status_code=204, responses=responses(401, 403, 404, 409),
               summary="Lift an override")
def delete_override(value: Value, ctx: Ctx, token: Writer) -> None:
    if _where(ctx) == "redis":
        removed = store.clear_in_redis(ctx.state_redis, value)
    else:
        assert ctx.state_file is not None
        removed = store.clear_in_file(ctx.state_file, value)
    if not removed:
        raise ApiProblem(404, f"no override for {value}")


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
