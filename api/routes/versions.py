"""Versions (list, show, diff, rollback) and the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import Admin, Ctx, Reader
from api.problems import ApiProblem, responses
from api.schemas import AuditEntry, ChangeOut, VersionOut, VersionSummary, WriteResult
from api.writes import DryRun, Networks, Wait, change_out, write
from gslb.config.changes import KEEP_VERSIONS, Change, Version, oldest_kept
from gslb.config.history import AuditQuery, audit, fold, rollback_changes
from gslb.config.live import LiveConfig
from gslb.config.tokens import Token, normal_zone

router = APIRouter(prefix="/v1", tags=["versions and audit"])


def _visible(token: Token, version: Version) -> bool:
    return all(token.allows("read", zone) for zone in version.zones())


def _summary(version: Version) -> VersionSummary:
    return VersionSummary(number=version.number, author=version.author, time=version.time,
                          message=version.message, zones=sorted(version.zones()))


@router.get("/versions", response_model=list[VersionSummary], responses=responses(401, 403, 422),
            summary="List configuration versions, newest first")
def list_versions(ctx: Ctx, token: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                  before: Annotated[int | None, Query(ge=1, description="only versions below this number")] = None
                  ) -> list[VersionSummary]:
    store = ctx.service.store
    head = store.head()
    top = min(head, before - 1) if before else head
    out = []
    for number in range(top, oldest_kept(head) - 1, -1):
        version = store.version(number)
        if version is not None and _visible(token, version):
            out.append(_summary(version))
            if len(out) >= limit:
                break
    return out


def _version(ctx: Ctx, token: Reader, number: int) -> Version:
    head = ctx.service.store.head()
    if 0 < number < oldest_kept(head) <= head:
        raise ApiProblem(404, f"version {number} is no longer kept (the last {KEEP_VERSIONS} are)")
    version = ctx.service.store.version(number) if number <= head else None
    if version is None:
        raise ApiProblem(404, f"no version {number}")
    if not _visible(token, version):
        raise ApiProblem(403, f"version {number} touches zones this token may not read")
    return version


@router.get("/versions/{number}", response_model=VersionOut, responses=responses(401, 403, 404, 422),
            summary="Show one version: author, time, changes")
def show_version(number: int, ctx: Ctx, token: Reader) -> VersionOut:
    """Version 0 is the configuration before the first recorded change (what diffs from
    0 start at): it has no author and no changes."""
    if number == 0:
        return VersionOut(number=0, author="", time=0.0, zones=[], changes=[],
                          message="the configuration before the first recorded change")
    version = _version(ctx, token, number)
    return VersionOut(**_summary(version).model_dump(), changes=[change_out(c) for c in version.changes])


@router.get("/versions/{first}/diff/{second}", response_model=list[ChangeOut],
            responses=responses(401, 403, 404, 422),
            summary="What changed from one version to another (either order)")
def diff_versions(first: int, second: int, ctx: Ctx, token: Reader) -> list[ChangeOut]:
    low, high = sorted((first, second))
    for number in (low, high):
        if number != 0:
            _version(ctx, token, number)
    versions = [_version(ctx, token, n) for n in range(low + 1, high + 1)]
    changes = fold(versions)
    if first > second:
        changes = [c.inverse() for c in changes]
    return [change_out(c) for c in changes]


@router.post("/versions/{number}/rollback", response_model=WriteResult,
             responses=responses(401, 403, 404, 409, 422),
             summary="Make the configuration what it was at a version (as a new version)")
def rollback(number: int, ctx: Ctx, token: Admin, response: Response, dry_run: DryRun = False,
             networks: Networks = None, wait: Wait = None) -> WriteResult:
    def plan(live: LiveConfig) -> list[Change]:
        if number < 0 or number > live.version:
            raise ApiProblem(404, f"no version {number}")
        if number + 1 < oldest_kept(live.version):
            raise ApiProblem(404, f"cannot roll back to version {number}: the versions after it "
                             f"are no longer kept (the last {KEEP_VERSIONS} are)")
        later = ctx.service.store.versions_after(number)
        return rollback_changes([v for v in later if v.number <= live.version])

    return write(ctx, token, "admin", plan, f"rollback to version {number}", dry_run, networks, response, wait=wait)


@router.get("/audit", response_model=list[AuditEntry], responses=responses(401, 403, 422),
            summary="Who changed what, when; newest first")
def get_audit(ctx: Ctx, token: Reader,
              zone: Annotated[str | None, Query(description="zone origin")] = None,
              name: Annotated[str | None, Query(description=(
                  "owner name: absolute (www.example.com.), or relative to the zone changed "
                  "(www, @); without the final dot it may be either"))] = None,
              type: Annotated[str | None, Query(description="record type, with or without name")] = None,
              author: Annotated[str | None, Query(description="token name")] = None,
              since: Annotated[float | None, Query(description="seconds since the epoch")] = None,
              until: Annotated[float | None, Query(description="seconds since the epoch")] = None,
              limit: Annotated[int, Query(ge=1, le=10000)] = 200) -> list[AuditEntry]:
    store = ctx.service.store
    query = AuditQuery(normal_zone(zone) if zone else None,
                       name.strip().lower() if name else None, author, since, until,
                       type.upper() if type else None)
    entries = []
    for version, change in audit(store.versions_after(0), query):
        if not token.allows("read", change.zone):
            continue
        entries.append(AuditEntry(version=version.number, time=version.time, author=version.author,
                                  message=version.message, kind=change.kind, zone=change.zone,
                                  name=change.name, type=change.rtype))
        if len(entries) >= limit:
            break
    return entries
