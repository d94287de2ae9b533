"""Zones: list, create (zone-file text or RRsets as JSON), get, export, delete."""

from __future__ import annotations

import dns.exception
import dns.name
from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from api.deps import Admin, Ctx, IfMatch, Reader, zone_of
from api.problems import ApiProblem, responses
from api.schemas import WriteResult, ZoneCreate, ZoneInfo
from api.writes import DryRun, Wait, write
from gslb.config.changes import STEERING, ZONE, Change
from gslb.config.live import LiveConfig, check_zone_name
from gslb.config.rrsets import FieldProblem, Invalid
from gslb.config.zonetext import record_lines
from gslb.dns.zone import Zone

router = APIRouter(prefix="/v1/zones", tags=["zones"])


def info(live: LiveConfig, zone: Zone) -> ZoneInfo:
    return ZoneInfo(name=zone.origin.to_text(), serial=zone.serial(), records=zone.record_count(),
                    steered=len(live.records.get(zone.origin, {})), etag=_zone_etag(zone))


def _zone_etag(zone: Zone) -> str:
    return f'"serial-{zone.serial()}"'


@router.get("", response_model=list[ZoneInfo], responses=responses(401, 403),
            summary="List the zones the token may read")
def list_zones(ctx: Ctx, token: Reader) -> list[ZoneInfo]:
    live = ctx.service.current()
    return [info(live, z) for o, z in sorted(live.zones.items())
            if token.allows("read", o.to_text())]


@router.post("", response_model=WriteResult, status_code=201, responses=responses(401, 403, 409, 422),
             summary="Create a zone from zone-file text or RRsets")
def create_zone(body: ZoneCreate, ctx: Ctx, token: Admin, response: Response,
                dry_run: DryRun = False, wait: Wait = None) -> WriteResult:
    """Checked like `gslb check` checks a file (SOA and NS at the apex, glue, CNAME rules)."""
    try:
        origin = dns.name.from_text(body.name if body.name.endswith(".") else body.name + ".")
    except dns.exception.DNSException as exc:
        raise ApiProblem(422, "bad zone name", [FieldProblem("name", str(exc))])
    check_zone_name(origin)
    if (body.text is None) == (body.rrsets is None):
        raise ApiProblem(422, "give the zone as text or as rrsets, not both or neither",
                         [FieldProblem("text", "exactly one of text and rrsets is required")])
    text = body.text if body.text is not None else _text(origin, body)

    def plan(live: LiveConfig) -> list[Change]:
        if origin in live.zones:
            raise ApiProblem(409, f"zone {origin} exists")
        return [Change(ZONE, origin.to_text(), before=None, after=text)]

    return write(ctx, token, "admin", plan, f"create zone {origin}", dry_run, None, response, wait=wait)


def _text(origin: dns.name.Name, body: ZoneCreate) -> str:
    lines = [f"$ORIGIN {origin.to_text()}\n"]
    for index, rrset in enumerate(body.rrsets or []):
        try:
            owner = origin if rrset.name in ("@", "") else dns.name.from_text(rrset.name, origin)
        except dns.exception.DNSException as exc:
            raise Invalid([FieldProblem(f"rrsets[{index}].name", str(exc))]) from None
        lines += record_lines(owner, rrset.type.upper(), rrset.ttl, rrset.rdata)
    return "".join(lines)


@router.get("/{zone}", response_model=ZoneInfo, responses=responses(401, 403, 404, 422),
            summary="Get a zone's summary")
def get_zone(zone: str, ctx: Ctx, token: Reader, response: Response) -> ZoneInfo:
    live = ctx.service.current()
    found = zone_of(live, zone)
    response.headers["ETag"] = _zone_etag(found)
    return info(live, found)


@router.get("/{zone}/export", response_class=PlainTextResponse,
            responses={200: {"content": {"text/dns": {}}}, **responses(401, 403, 404, 422)},
            summary="Export the zone as zone-file text")
def export_zone(zone: str, ctx: Ctx, token: Reader) -> PlainTextResponse:
    """The zone's records (SOA first) in RFC 1035 master format; steered names are in
    the steering file, not here."""
    found = zone_of(ctx.service.current(), zone)
    lines = [f"$ORIGIN {found.origin.to_text()}\n"]
    for rrset in found.rrsets():
        lines.append(rrset.to_text(origin=None, relativize=False) + "\n")
    return PlainTextResponse("".join(lines), media_type="text/dns",
                             headers={"ETag": _zone_etag(found)})


@router.delete("/{zone}", response_model=WriteResult, responses=responses(401, 403, 404, 409, 412, 422),
               summary="Delete a zone (its file and its steering file)")
def delete_zone(zone: str, ctx: Ctx, token: Admin, response: Response,
                if_match: IfMatch = None, dry_run: DryRun = False, wait: Wait = None) -> WriteResult:
    def plan(live: LiveConfig) -> list[Change]:
        found = zone_of(live, zone)
        tags = [t.strip() for t in (if_match or "*").split(",")]
        if "*" not in tags and _zone_etag(found) not in tags:
            raise ApiProblem(412, "the zone changed since the ETag in If-Match")
        origin = found.origin
        changes = [Change(ZONE, origin.to_text(), before=live.zone_path(origin).read_text(encoding="utf-8"),
                          after=None)]
        if origin in live.steering_text:
            changes.insert(0, Change(STEERING, origin.to_text(), before=live.steering_text[origin],
                                     after=None))
        return changes

    return write(ctx, token, "admin", plan, f"delete zone {zone}", dry_run, None, response, wait=wait)
