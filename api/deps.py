"""What routes depend on: the app's context, the caller's token, ETag checks.

Nothing here is global: `create_app` puts one `Context` on `app.state`, and routes get
it (and the authorised caller) through `Annotated` dependencies.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable

import dns.exception
import dns.name
from fastapi import Depends, Header, Request

from api.problems import ApiProblem
from gslb.config.live import LiveConfig
from gslb.config.rrsets import FieldProblem
from gslb.config.service import ConfigService
from gslb.config.tokens import Token, TokenStore
from gslb.dns.zone import Zone
from gslb.snapshot import Snapshot
from gslb.state.store import StateView


@dataclass
class ApiSettings:
    max_body: int = 1 << 20  # bytes; larger requests get 413 (a zone text may need more)
    telemetry_per_second: float = 50.0  # RTT samples accepted per client network per second
    # Host header names accepted besides loopback; None: any (api/guards.allowed_hosts)
    hosts: tuple[str, ...] | None = ()
    console: bool = True  # the web console at /ui/ (api/console/)


@dataclass
class Context:
    service: ConfigService
    tokens: TokenStore
    snapshot: Callable[[], Snapshot]  # what DNS serves now (explain, preview)
    settings: ApiSettings = field(default_factory=ApiSettings)
    geo: Any = None  # gslb.load.geoip.GeoDatabases, when the server has some
    state_redis: Any = None  # blocking redis client of the shared state (--redis), if any
    state_file: Path | None = None  # the state file the server watches (--state), if any
    metrics: Callable[[], bytes] | None = None  # /metrics text; None: the API's own counts
    state: Callable[[], StateView] | None = None  # the health state and each agent's verdicts
    # Wait until DNS serves a committed version (its number, the request's ?wait):
    # the servers still behind. None: answer at once.
    await_served: Callable[[int, float | None], list[str]] | None = None


def context(request: Request) -> Context:
    return request.app.state.gslb


Ctx = Annotated[Context, Depends(context)]


def caller(request: Request, ctx: Ctx,
           authorization: Annotated[str | None, Header()] = None) -> Token:
    """The token of the request; 401 without a valid one."""
    scheme, _, presented = (authorization or "").partition(" ")
    token = ctx.tokens.verify(presented.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise ApiProblem(401, "a valid bearer token is required (create one with "
                         "`gslb token create`)", headers={"WWW-Authenticate": "Bearer"})
    return token


def require(role: str) -> Callable[..., Token]:
    """A dependency: the caller holds `role` (or more) for the path's zone, else 403."""

    def check(request: Request, token: Annotated[Token, Depends(caller)]) -> Token:
        zone = request.path_params.get("zone")
        if not token.allows(role, _normal(zone) if zone else None):
            where = f" on zone {zone}" if zone else ""
            raise ApiProblem(403, f"token {token.name!r} (role {token.role}) may not do this "
                             f"(needs {role}{where})")
        return token

    return check


Reader = Annotated[Token, Depends(require("read"))]
Writer = Annotated[Token, Depends(require("write"))]
Admin = Annotated[Token, Depends(require("admin"))]
IfMatch = Annotated[str | None, Header(description="ETag the change is based on; "
                                       "412 when the resource changed since")]


def _normal(text: str) -> str:
    text = text.lower()
    return text if text.endswith(".") else text + "."


def zone_of(live: LiveConfig, text: str) -> Zone:
    try:
        origin = dns.name.from_text(_normal(text))
    except dns.exception.DNSException as exc:
        raise ApiProblem(422, f"{text!r} is not a zone name", [FieldProblem("zone", str(exc))])
    zone = live.zones.get(origin)
    if zone is None:
        raise ApiProblem(404, f"no zone {origin}")
    return zone


def etag(value: Any) -> str:
    """A strong ETag of a resource's JSON form."""
    digest = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
    return f'"{digest[:20]}"'


ETAG = re.compile(r'\*|(W/)?"[\x21\x23-\x7e]*"')  # RFC 9110 8.8.3


def check_match(if_match: str | None, current: Any) -> None:
    """RFC 9110 13.1.1: a write with If-Match proceeds only if the resource's ETag is one
    of those listed (`*`: the resource exists)."""
    if if_match is None:
        return
    tags = [t.strip() for t in if_match.split(",")]
    if not all(ETAG.fullmatch(tag) for tag in tags):
        raise ApiProblem(400, f"If-Match {if_match!r} is not a list of entity tags "
                         '(like "abc123", or *): take the ETag header of a GET or HEAD',
                         [FieldProblem("If-Match", "expected quoted entity tags or *")])
    if "*" in tags:
        if current is None:
            raise ApiProblem(412, "If-Match: * but the resource does not exist")
        return
    if current is None or etag(current) not in tags:
        raise ApiProblem(412, "the resource changed since the ETag in If-Match; "
                         "fetch it again and retry")
