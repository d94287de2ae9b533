"""Liveness (no token) and the health state steering decides with."""

from __future__ import annotations

import time

import dns.name
from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Ctx, Reader
from api.problems import responses

router = APIRouter(tags=["health"])


class Live(BaseModel):
    status: str
    version: int


class AgentState(BaseModel):
    agent: str = Field(description="the health agent (`gslb checker --agent`), or `local` for "
                       "the checker embedded in `gslb serve`")
    up: bool
    age: float = Field(description="seconds since the agent's probe")
    fresh: bool = Field(description="within the verdict expiry, so it counts in the quorum")
    detail: str = Field("", description="why the probe failed, when it did")


class CheckState(BaseModel):
    check: str = Field(description="the health key: `check@probe address`, or a bare check id")
    up: bool
    source: str = Field(description="what decided: the quorum of agents, the embedded checker, "
                        "the state file, an override, the warm-start default")
    age: float | None
    agents: list[AgentState] = Field(default_factory=list,
                                     description="each agent's latest verdict, newest first")


@router.get("/livez", response_model=Live, summary="Liveness probe (no token needed)")
def livez(ctx: Ctx) -> Live:
    return Live(status="ok", version=ctx.service.node.live.version)


@router.get("/v1/health", response_model=list[CheckState], responses=responses(401, 403),
            summary="Health state per check, as the DNS answers use it, with each agent's verdict")
def health(ctx: Ctx, token: Reader) -> list[CheckState]:
    """The state DNS answers with (the serving node's, or, from `gslb api`, one read of
    the shared state in Redis), and per check each agent's latest verdict and its age."""
    view = ctx.state() if ctx.state is not None else None
    steering = ctx.snapshot().steering
    states = steering.health if steering is not None and steering.health else {}
    if not states and view is not None:
        states = view.health
    verdicts = view.verdicts if view is not None else {}
    if token.zones and steering is not None:  # only the checks its zones' members use
        snapshot = ctx.snapshot()
        allowed = set()
        for (owner, _), record in steering.records.items():
            zone = snapshot.zones.find(dns.name.from_text(owner))
            if zone is not None and token.allows("read", zone.origin.to_text()):
                allowed |= {key for pool in record.pools.values() for member in pool.members
                            for key in (member.health_key, member.check) if key}
        states = {key: h for key, h in states.items() if key in allowed}
    elif token.zones:
        states = {}
    now = time.time()
    return [CheckState(check=check, up=h.up, source=h.source, age=h.age,
                       agents=[AgentState(agent=v.agent, up=v.up, age=round(max(0.0, now - v.at), 3),
                                          fresh=v.fresh, detail=v.detail)
                               for v in sorted(verdicts.get(check, ()), key=lambda v: -v.at)])
            for check, h in sorted(states.items())]
