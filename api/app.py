"""`create_app`: the FastAPI application, built from its parts (no module-level state).

Routers, one per resource, are included here; so are the problem+json error handlers
and the body-size limit. Other features add their routes in `create_app` too (a
`/metrics` route for Prometheus belongs beside `/livez`, see `extra_routers`).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable, MutableMapping

from fastapi import APIRouter, FastAPI

from api import problems
from api.deps import Context
from api.routes import explain, health, metrics, rrsets, state, steered, versions, zones

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGI = Callable[[Scope, Receive, Send], Awaitable[None]]

DESCRIPTION = """Control plane of gslb: zones, RRsets, steered records (pools, members,
weights, drain), versions with rollback, audit, explain and dry-run previews.

Every route but `/livez` and the docs needs `Authorization: Bearer <token>` (create one
with `gslb token create`). Writes accept `If-Match` (412 when stale) and `dry_run=true`.
Errors are `application/problem+json` (RFC 9457) naming the fields at fault."""


def create_app(context: Context, extra_routers: Iterable[APIRouter] = ()) -> FastAPI:
    app = FastAPI(title="gslb control plane", version="1", description=DESCRIPTION)
    app.state.gslb = context
    problems.install(app)
    for router in (health.router, zones.router, rrsets.router, steered.router,
                   steered.datacenters, versions.router, explain.router, state.router,
                   metrics.router, *extra_routers):
        app.include_router(router)
    app.add_middleware(BodyLimit, limit=context.settings.max_body)
    if context.metrics is None:  # the standalone API: count its own requests
        counts = metrics.ApiMetrics(lambda: context.service.node.live.version)
        context.metrics = counts.render
        app.add_middleware(metrics.CountRequests, counts=counts)
    return app


class BodyLimit:
    """413 for a request body over `limit` bytes, announced or streamed, before any
    route reads it."""

    def __init__(self, app: ASGI, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.problem_response(413, f"the request body exceeds {self.limit} bytes")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
