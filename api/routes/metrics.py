"""`/metrics` on the API port (Prometheus text; a `read` token, as every route but the
liveness probe and the docs).

Beside DNS (`gslb serve --api`) it is the node's merged metrics, exactly what
`--metrics` serves. The standalone API (`gslb api`) reports itself: requests by route,
method and status, and the configuration version it holds.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Callable

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import Ctx, Reader
from api.problems import ApiProblem, responses
from gslb.observability import metrics

router = APIRouter(tags=["metrics"])


@router.get("/metrics", responses=responses(401, 403), response_class=Response,
            summary="Prometheus metrics of this node (or of the API process alone)")
async def metrics_text(ctx: Ctx, token: Reader) -> Response:
    if token.zones:
        raise ApiProblem(403, f"token {token.name!r} is limited to zones; the metrics cover "
                         "every zone: use a token for all zones")
    render = ctx.metrics
    assert render is not None, "create_app sets it"
    body = await asyncio.get_running_loop().run_in_executor(None, render)
    return Response(body, media_type=metrics.CONTENT_TYPE)


def node_metrics(directory: Path, flush: Callable[[], None]) -> Callable[[], bytes]:
    """The DNS node's metrics: this process's report written first, then every
    process's report merged (gslb.observability.metrics)."""
    def render() -> bytes:
        flush()
        return metrics.render(directory)
    return render


class ApiMetrics:
    """The standalone API's own metrics, counted by an ASGI middleware."""

    def __init__(self, version: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("gslb_api_requests", "API requests, by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("gslb_api_request_seconds", "API request duration",
                                 registry=self.registry)
        Gauge("gslb_config_version", "configuration version this API process holds",
              registry=self.registry).set_function(lambda: float(version()))

    def render(self) -> bytes:
        return generate_latest(self.registry)



class CountRequests:
    """ASGI middleware: every request into `ApiMetrics`, by the route it matched."""

    def __init__(self, app: ASGIApp, counts: ApiMetrics) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def seen(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, seen)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")  # set by the router
            self.counts.requests.labels(path, scope["method"], str(status[0])).inc()
            self.counts.latency.observe(time.perf_counter() - started)
