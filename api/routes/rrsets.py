"""RRsets of a zone: list, get, put, delete (one name and type at a time)."""

from __future__ import annotations

from itertools import islice
from typing import Annotated, Callable

import dns.name
from fastapi import APIRouter, Query, Response

from api.deps import Ctx, IfMatch, Reader, Writer, check_match, etag, zone_of
from api.problems import ApiProblem, responses
from api.schemas import RRset, RRsetBody, RRsetPage, WriteResult
from api.writes import DryRun, Networks, Wait, write
from gslb.config.changes import RRSET, Change
from gslb.config.live import LiveConfig
from gslb.config.rrsets import (Invalid, check_rrset, occluded, owner_name, parse_rdata,
                                rdata_type, rrset_of)
from gslb.dns.zone import Zone, iter_records

router = APIRouter(prefix="/v1/zones/{zone}/rrsets", tags=["rrsets"])
ERRORS = responses(401, 403, 404, 422)
WRITE_ERRORS = responses(401, 403, 404, 409, 412, 422)


@router.get("", response_model=RRsetPage, responses=ERRORS, summary="List the zone's RRsets")
def list_rrsets(zone: str, ctx: Ctx, token: Reader,
                offset: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> RRsetPage:
    """Owners in the zone's order, `limit` owners from `offset` (a large zone is paged)."""
    found = zone_of(ctx.service.current(), zone)
    rrsets: list[RRset] = []
    owners = list(islice(found.records.items(), offset, offset + limit + 1))
    for key, blob in owners[:limit]:
        owner = dns.name.from_wire(key, 0)[0]
        for rtype in dict.fromkeys(t for t, _, _ in iter_records(blob)):
            text = dns.rdatatype.to_text(dns.rdatatype.RdataType(rtype))
            value = rrset_of(found, owner, text)
            if value is not None:
                rrsets.append(RRset(name=owner.to_text(), type=text, **value))
    return RRsetPage(zone=found.origin.to_text(), offset=offset, rrsets=rrsets,
                     more=len(owners) > limit)


@router.get("/{name}/{type}", response_model=RRset, responses=ERRORS, summary="Get one RRset")
def get_rrset(zone: str, name: str, type: str, ctx: Ctx, token: Reader,
              response: Response) -> RRset:
    found = zone_of(ctx.service.current(), zone)
    owner, rtype = _key(found, name, type)
    value = rrset_of(found, owner, rtype)
    if value is None:
        raise ApiProblem(404, f"no {rtype} RRset at {owner}")
    response.headers["ETag"] = etag(value)
    return RRset(name=owner.to_text(), type=rtype, **value)


@router.put("/{name}/{type}", response_model=WriteResult, responses=WRITE_ERRORS,
            summary="Create or replace one RRset")
def put_rrset(zone: str, name: str, type: str, body: RRsetBody, ctx: Ctx, token: Writer,
              response: Response, if_match: IfMatch = None, dry_run: DryRun = False,
              networks: Networks = None, wait: Wait = None) -> WriteResult:
    """Validated with the rules of `gslb check`; the zone's SOA serial is bumped."""

    def after(found: Zone, rtype: str) -> dict | None:
        return {"ttl": body.ttl, "rdata": parse_rdata(found, rtype, body.rdata)}

    return write(ctx, token, "write", _plan(zone, name, type, if_match, after, False),
                 f"put {name} {type}", dry_run, networks, response,
                 lambda live: _current(live, zone, name, type), wait=wait)


@router.delete("/{name}/{type}", response_model=WriteResult, responses=WRITE_ERRORS,
               summary="Delete one RRset")
def delete_rrset(zone: str, name: str, type: str, ctx: Ctx, token: Writer,
                 response: Response, if_match: IfMatch = None, dry_run: DryRun = False,
                 networks: Networks = None, wait: Wait = None) -> WriteResult:
    return write(ctx, token, "write", _plan(zone, name, type, if_match, lambda _z, _t: None, True),
                 f"delete {name} {type}", dry_run, networks, response, wait=wait)


def _plan(zone: str, name: str, type: str, if_match: str | None,
          after_of: Callable[[Zone, str], dict | None], must_exist: bool
          ) -> Callable[[LiveConfig], list[Change]]:
    """The plan of one RRset write: the RRset becomes `after_of(zone, type)` (None:
    removed), checked against If-Match and the rules of `gslb check`."""

    def plan(live: LiveConfig) -> list[Change]:
        found = zone_of(live, zone)
        owner, rtype = _key(found, name, type)
        before = rrset_of(found, owner, rtype)
        if before is None and must_exist:
            raise ApiProblem(404, f"no {rtype} RRset at {owner}")
        check_match(if_match, before)
        after = after_of(found, rtype)
        problems = check_rrset(found, owner, rtype, after, live.all_records())
        hidden = occluded(live.zones, found, owner, rtype) if after is not None else None
        problems += [hidden] if hidden is not None else []
        if problems:
            raise Invalid(problems)
        if before == after:
            return []
        return [Change(RRSET, found.origin.to_text(), owner.to_text(), rtype, before, after)]

    return plan


def _key(zone: Zone, name: str, type: str) -> tuple[dns.name.Name, str]:
    return owner_name(zone, name), rdata_type(type)


def _current(live: LiveConfig, zone: str, name: str, type: str) -> object:
    found = zone_of(live, zone)
    owner, rtype = _key(found, name, type)
    return rrset_of(found, owner, rtype)
