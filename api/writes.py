"""Every write route ends here: commit (or dry-run) a plan, answer with what changed.

The plan runs under the store's lock against the latest configuration; the caller's
token is checked against every zone the plan touches (a datacenter drain or a rollback
spans zones), so a token limited to one zone cannot change another by a side door.
"""

from __future__ import annotations

from typing import Annotated, Callable

from fastapi import Query, Response

from api.deps import Context, etag
from api.problems import ApiProblem
from api.schemas import ChangeOut, PreviewOut, Share, WriteResult
from gslb.config.changes import Change
from gslb.config.live import LiveConfig
from gslb.config.preview import preview, sample_networks
from gslb.config.rrsets import FieldProblem
from gslb.config.service import Plan
from gslb.config.tokens import Token

DryRun = Annotated[bool, Query(description="validate and preview, change nothing")]
Networks = Annotated[list[str] | None, Query(
    description="client networks (CIDR) for the dry-run preview; default: the GeoIP "
    "database's networks, else one /24 in each /8")]
Wait = Annotated[float | None, Query(ge=0, le=60, description=(
    "seconds to wait until the DNS servers serve the new version: every worker of this "
    "node with `gslb serve --api` (which waits 5 s by default), every node that reports "
    "heartbeats with `gslb api --redis` (which does not wait by default); 202 with the "
    "ones still behind when the time is up"))]


def change_out(change: Change) -> ChangeOut:
    return ChangeOut(kind=change.kind, zone=change.zone, name=change.name, type=change.rtype,  # type: ignore[arg-type]
                     before=change.before, after=change.after)


def write(ctx: Context, token: Token, role: str, plan: Plan, message: str, dry_run: bool,
          networks: list[str] | None = None, response: Response | None = None,
          resource: Callable[[LiveConfig], object] | None = None,
          wait: float | None = None) -> WriteResult:
    """Commit (or dry-run) `plan` for `token`; once committed, answer when the DNS
    servers serve it (see `Wait`), or 202 with those still behind."""
    def guarded(live: LiveConfig) -> list[Change]:
        changes = plan(live)
        for change in changes:
            if not token.allows(role, change.zone):
                raise ApiProblem(403, f"token {token.name!r} may not change zone {change.zone}")
        return changes

    outcome = ctx.service.commit(guarded, author=token.name, message=message, dry_run=dry_run)
    shares: list[PreviewOut] = []
    if dry_run and outcome.changes:
        try:
            sample = sample_networks(networks, ctx.geo)
        except ValueError as exc:
            raise ApiProblem(422, "bad preview network", [FieldProblem("networks", str(exc))])
        for item in preview(outcome.before.all_records(), outcome.after.all_records(), sample, ctx.geo):
            shares.append(PreviewOut(
                name=item.name, type=item.type, networks=item.networks,
                pools=[Share(key=k, before=b, after=a) for k, (b, a) in item.pools.items()],
                members=[Share(key=k, before=b, after=a) for k, (b, a) in item.members.items()]))
    behind: list[str] = []
    if outcome.version is not None and ctx.await_served is not None:
        behind = ctx.await_served(outcome.version.number, wait)
    if response is not None:
        if behind:
            response.status_code = 202
        if outcome.version is not None:
            response.headers["X-Config-Version"] = str(outcome.version.number)
        if resource is not None and not dry_run:
            current = resource(outcome.after)
            if current is not None:
                response.headers["ETag"] = etag(current)
    return WriteResult(version=outcome.version.number if outcome.version else None,
                       dry_run=dry_run, changes=[change_out(c) for c in outcome.changes],
                       preview=shares, behind=behind)
