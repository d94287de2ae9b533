"""Liveness (no token) and the health state steering decides with."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import Ctx, Reader
from api.problems import responses

router = APIRouter(tags=["health"])


class Live(BaseModel):
    status: str
    version: int


class CheckState(BaseModel):
    check: str
    up: bool
    source: str
    age: float | None


@router.get("/livez", response_model=Live, summary="Liveness probe (no token needed)")
def livez(ctx: Ctx) -> Live:
    return Live(status="ok", version=ctx.service.node.live.version)


@router.get("/v1/health", response_model=list[CheckState], responses=responses(401, 403),
            summary="Health state per check, as the DNS answers use it")
def health(ctx: Ctx, token: Reader) -> list[CheckState]:
    steering = ctx.snapshot().steering
    states = steering.health if steering is not None else {}
    return [CheckState(check=check, up=h.up, source=h.source, age=h.age)
            for check, h in sorted(states.items())]
