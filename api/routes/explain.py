"""Explain: the steering decision for a name, type, client and ECS subnet, made by the
same code (and against the same snapshot) as the DNS answer, like `gslb explain`."""

from __future__ import annotations

from typing import Annotated

import dns.exception
import dns.name
from fastapi import APIRouter, Query

from api.deps import Ctx, Reader
from api.problems import ApiProblem, responses
from api.schemas import ExplainOut, TraceOut
from gslb.config.rrsets import FieldProblem
from gslb.steering.explain import explain_snapshot

router = APIRouter(prefix="/v1", tags=["explain"])


@router.get("/explain", response_model=ExplainOut, responses=responses(401, 403, 422),
            summary="Explain how a name is answered for a client")
def explain(ctx: Ctx, token: Reader,
            name: Annotated[str, Query(max_length=255, description="e.g. www2.example.com")],
            client: Annotated[str, Query(max_length=64, description="the resolver's address")],
            type: Annotated[str, Query(max_length=10, description="A, AAAA or CNAME")] = "A",
            ecs: Annotated[str | None, Query(max_length=64, description="EDNS Client Subnet, CIDR")] = None,
            draw: Annotated[int, Query(ge=0, lt=64, description="the weighted draw: a slot 0-63")] = 0) -> ExplainOut:
    snapshot = ctx.snapshot()
    try:
        zone = snapshot.zones.find(dns.name.from_text(name))
    except dns.exception.DNSException:
        zone = None  # explain_snapshot words the problem
    if zone is not None and not token.allows("read", zone.origin.to_text()):
        raise ApiProblem(403, f"token {token.name!r} may not read zone {zone.origin}")
    try:
        found = explain_snapshot(snapshot, name, type, client, ecs, draw)
    except ValueError as exc:
        field = "client" if "--client" in str(exc) else "ecs" if "--ecs" in str(exc) else \
            "type" if "TYPE" in str(exc) else "name"
        raise ApiProblem(422, str(exc), [FieldProblem(field, str(exc))]) from None
    decision = found.decision
    return ExplainOut(
        name=found.name, type=found.rdtype, steered=decision is not None,
        values=list(decision.values) if decision else [],
        rcode=decision.rcode if decision else "static", pool=decision.pool if decision else None,
        scope=decision.scope if decision else 0, ttl=decision.ttl if decision else 0,
        trace=[TraceOut(step=s.step, detail=s.detail, candidates=list(s.candidates))
               for s in (decision.trace if decision else ())],
        text=found.trace, answer=found.answer)
