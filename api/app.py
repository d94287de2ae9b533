"""`create_app`: the FastAPI application, built from its parts (no module-level state).

Routers, one per resource, are included here, and the web console's files under /ui/
(api/console/, on unless `ApiSettings.console` is off); so are the problem+json error handlers
and the request guard (api/guards.py: Host names, body size and depth, requests in
flight, security headers). Other features add their routes in `create_app` too (a
`/metrics` route for Prometheus belongs beside `/livez`, see `extra_routers`).
"""

from __future__ import annotations

from typing import Iterable

from fastapi import APIRouter, FastAPI

from api import console, problems
from api.deps import Context
from api.guards import RequestGuard
from api.routes import console as console_routes
from api.routes import explain, health, metrics, rrsets, state, steered, versions, zones


DESCRIPTION = """Control plane of gslb: zones, RRsets, steered records (pools, members,
weights, drain), versions with rollback, audit, explain and dry-run previews.

Every route but `/livez`, the docs and the web console (`/ui/`) needs `Authorization: Bearer
<token>` (create one with `gslb token create`). Writes accept `If-Match` (412 when stale) and `dry_run=true`.
Errors are `application/problem+json` (RFC 9457) naming the fields at fault."""


def create_app(context: Context, extra_routers: Iterable[APIRouter] = ()) -> FastAPI:
    app = FastAPI(title="gslb control plane", version="1", description=DESCRIPTION)
    app.state.gslb = context
    problems.install(app)
    for router in (health.router, zones.router, rrsets.router, steered.router,
                   steered.datacenters, versions.router, explain.router, state.router,
                   metrics.router, console_routes.router, *extra_routers):
        app.include_router(router)
    if context.settings.console:
        app.include_router(console.router())
    app.add_middleware(RequestGuard, max_body=context.settings.max_body,
                       hosts=context.settings.hosts)
    if context.metrics is None:  # the standalone API: count its own requests
        counts = metrics.ApiMetrics(lambda: context.service.node.live.version)
        context.metrics = counts.render
        app.add_middleware(metrics.CountRequests, counts=counts)
    return app
