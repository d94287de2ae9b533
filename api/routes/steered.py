"""Steered records, their pools and members: CRUD, weights, drain/undrain/disable.

Each write works out the new mapping of every record it changes, one steered record
change each (so history, diffs, the audit trail and rollbacks name the record); the
service writes them into the zone's steering YAML (comments kept, gslb/config/
steertext.py), and the text goes through the same validation as `gslb check` before it
is committed.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Callable, Literal

from fastapi import APIRouter, Path, Response

from api.deps import Context, Ctx, IfMatch, Reader, Writer, check_match, etag, zone_of
from api.problems import ApiProblem, responses
from api.schemas import MemberBody, MemberPatch, PoolBody, SteeredBody, SteeredOut, WriteResult
from api.writes import DryRun, Networks, Wait, write
from gslb.config import steertext
from gslb.config.changes import STEERED, Change, same
from gslb.config.live import LiveConfig
from gslb.config.rrsets import FieldProblem, owner_name
from gslb.config.tokens import Token


router = APIRouter(prefix="/v1/zones/{zone}/steered", tags=["steered records"])
ERRORS = responses(401, 403, 404, 422)
WRITE_ERRORS = responses(401, 403, 404, 409, 412, 422)
Action = Annotated[Literal["drain", "undrain", "disable", "enable"],
                   Path(description="drain: answered only when nothing else in its pool is up; "
                        "disable: never answered; undrain/enable: back to normal")]
STATES = {"drain": "drained", "disable": "disabled", "undrain": None, "enable": None}
Edit = Callable[[str, str, Any], Any]  # (owner, type, record or None) -> record or None


def _records(live: LiveConfig, zone: str) -> tuple[dict[tuple[str, str], Any], Any]:
    found = zone_of(live, zone)
    return steertext.records(live.steering_text.get(found.origin), found.origin), found


def _key(found: Any, name: str, type: str) -> tuple[str, str]:
    return owner_name(found, name).to_text().lower(), type.upper()


def record_plan(zone: str, name: str, type: str, edit: Edit) -> Callable[[LiveConfig], list[Change]]:
    """A plan that changes one steered record: `edit` gets the record as plain data (a
    copy: None when there is none) and returns what it is to be (None: removed). The
    text it makes is validated when the service applies the change (`LiveConfig.apply`,
    the rules of `gslb check`)."""

    def plan(live: LiveConfig) -> list[Change]:
        records, found = _records(live, zone)
        owner, rtype = _key(found, name, type)
        before = records.get((owner, rtype))
        after = edit(owner, rtype, copy.deepcopy(before))
        if same(before, after):
            return []
        return [Change(STEERED, found.origin.to_text(), owner, rtype, before, after)]

    return plan


def _current(zone: str, name: str, type: str) -> Callable[[LiveConfig], object]:
    def current(live: LiveConfig) -> object:
        records, found = _records(live, zone)
        return records.get(_key(found, name, type))

    return current


@router.get("", response_model=list[SteeredOut], responses=ERRORS, summary="List steered records")
def list_steered(zone: str, ctx: Ctx, token: Reader) -> list[SteeredOut]:
    records, _ = _records(ctx.service.current(), zone)
    return [SteeredOut(name=owner, type=rtype, record=item, etag=etag(item))
            for (owner, rtype), item in records.items()]


@router.get("/{name}/{type}", response_model=SteeredOut, responses=ERRORS, summary="Get a steered record")
def get_steered(zone: str, name: str, type: str, ctx: Ctx, token: Reader, response: Response) -> SteeredOut:
    records, found = _records(ctx.service.current(), zone)
    owner, rtype = _key(found, name, type)
    record = records.get((owner, rtype))
    if record is None:
        raise ApiProblem(404, f"no steered {rtype} record at {owner}")
    response.headers["ETag"] = etag(record)
    return SteeredOut(name=owner, type=rtype, record=record, etag=etag(record))


@router.put("/{name}/{type}", response_model=WriteResult, responses=WRITE_ERRORS,
            summary="Create or replace a steered record")
def put_steered(zone: str, name: str, type: str, body: SteeredBody, ctx: Ctx, token: Writer,
                response: Response, if_match: IfMatch = None, dry_run: DryRun = False,
                networks: Networks = None, wait: Wait = None) -> WriteResult:
    def edit(owner: str, rtype: str, record: Any) -> Any:
        check_match(if_match, record)
        if body.type != rtype:
            raise ApiProblem(422, "type in the path and the body differ", [
                FieldProblem("type", f"the body says {body.type}, the path {rtype}")])
        return body.model_dump(exclude_none=True)

    return write(ctx, token, "write", record_plan(zone, name, type, edit), f"put steered {name} {type}",
                 dry_run, networks, response, _current(zone, name, type), wait=wait)


@router.delete("/{name}/{type}", response_model=WriteResult, responses=WRITE_ERRORS,
               summary="Delete a steered record")
def delete_steered(zone: str, name: str, type: str, ctx: Ctx, token: Writer, response: Response,
                   if_match: IfMatch = None, dry_run: DryRun = False,
                   networks: Networks = None, wait: Wait = None) -> WriteResult:
    def edit(owner: str, rtype: str, record: Any) -> Any:
        if record is None:
            raise ApiProblem(404, f"no steered {rtype} record at {owner}")
        check_match(if_match, record)
        return None

    return write(ctx, token, "write", record_plan(zone, name, type, edit), f"delete steered {name} {type}",
                 dry_run, networks, response, wait=wait)


def _record_edit(if_match: str | None, change: Callable[[Any], None]) -> Edit:
    """An edit of one existing record (404 when missing; If-Match on the record)."""

    def edit(owner: str, rtype: str, record: Any) -> Any:
        if record is None:
            raise ApiProblem(404, f"no steered {rtype} record at {owner}")
        check_match(if_match, record)
        change(record)
        return record

    return edit


@router.put("/{name}/{type}/pools/{pool}", response_model=WriteResult, responses=WRITE_ERRORS,
            summary="Create or replace a pool")
def put_pool(zone: str, name: str, type: str, pool: str, body: PoolBody, ctx: Ctx, token: Writer,
             response: Response, if_match: IfMatch = None, dry_run: DryRun = False,
             networks: Networks = None, wait: Wait = None) -> WriteResult:
    def change(record: Any) -> None:
        record.setdefault("pools", {})[pool] = body.model_dump(exclude_none=True)

    return _record_write(ctx, token, zone, name, type, if_match, change,
                         f"put pool {pool} of {name} {type}",
                         dry_run, networks, response, wait=wait)


@router.delete("/{name}/{type}/pools/{pool}", response_model=WriteResult, responses=WRITE_ERRORS,
               summary="Delete a pool")
def delete_pool(zone: str, name: str, type: str, pool: str, ctx: Ctx, token: Writer,
                response: Response, if_match: IfMatch = None, dry_run: DryRun = False,
                networks: Networks = None, wait: Wait = None) -> WriteResult:
    def change(record: Any) -> None:
        pools = record.get("pools") or {}
        if pool not in pools:
            raise ApiProblem(404, f"no pool {pool}")
        del pools[pool]

    return _record_write(ctx, token, zone, name, type, if_match, change,
                         f"delete pool {pool} of {name} {type}",
                         dry_run, networks, response, wait=wait)


@router.post("/{name}/{type}/pools/{pool}/members", response_model=WriteResult, responses=WRITE_ERRORS,
             summary="Add a member to a pool")
def add_member(zone: str, name: str, type: str, pool: str, body: MemberBody, ctx: Ctx,
               token: Writer, response: Response, if_match: IfMatch = None,
               dry_run: DryRun = False, networks: Networks = None, wait: Wait = None) -> WriteResult:
    def change(record: Any) -> None:
        pools = record.get("pools") or {}
        if pool not in pools or not isinstance(pools[pool], dict):
            raise ApiProblem(404, f"no pool {pool}")
        pools[pool].setdefault("members", []).append(body.model_dump(exclude_none=True))

    return _record_write(ctx, token, zone, name, type, if_match, change,
                         f"add member {body.value} to {pool} of {name} {type}",
                         dry_run, networks, response, wait=wait)


def _record_write(ctx: Context, token: Token, zone: str, name: str, type: str,
                  if_match: str | None, change: Callable[[Any], None], message: str,
                  dry_run: bool, networks: list[str] | None, response: Response,
                  wait: float | None) -> WriteResult:
    """Commit `change` to one existing steered record; the reply carries its new ETag."""
    return write(ctx, token, "write", record_plan(zone, name, type, _record_edit(if_match, change)),
                 message, dry_run, networks, response, _current(zone, name, type), wait=wait)


def _member_change(value: str, fields: dict[str, Any] | None) -> Callable[[Any], None]:
    """Set `fields` on (or, with None, remove) every occurrence of the member `value`."""

    def change(record: Any) -> None:
        hits = [(listed, index) for _, listed, index in steertext.members(record)
                if steertext.member_value(listed, index) == value]
        if not hits:
            raise ApiProblem(404, f"no member {value}")
        for listed, index in reversed(hits):
            if fields is None:
                del listed[index]
            else:
                steertext.set_member_fields(listed, index, fields)

    return change


@router.patch("/{name}/{type}/members/{value}", response_model=WriteResult, responses=WRITE_ERRORS,
              summary="Set a member's weight, priority or state (in every pool it is in)")
def patch_member(zone: str, name: str, type: str, value: str, body: MemberPatch, ctx: Ctx,
                 token: Writer, response: Response, if_match: IfMatch = None,
                 dry_run: DryRun = False, networks: Networks = None, wait: Wait = None) -> WriteResult:
    fields = body.model_dump(exclude_unset=True)
    if fields.get("state") == "enabled":
        fields["state"] = None
    change = _member_change(value, fields)
    return _record_write(ctx, token, zone, name, type, if_match, change,
                         f"set {', '.join(f'{k}={v}' for k, v in fields.items())} on {value} of {name} {type}",
                         dry_run, networks, response, wait=wait)


@router.delete("/{name}/{type}/members/{value}", response_model=WriteResult, responses=WRITE_ERRORS,
               summary="Remove a member (from every pool it is in)")
def delete_member(zone: str, name: str, type: str, value: str, ctx: Ctx, token: Writer,
                  response: Response, if_match: IfMatch = None, dry_run: DryRun = False,
                  networks: Networks = None, wait: Wait = None) -> WriteResult:
    change = _member_change(value, None)
    return _record_write(ctx, token, zone, name, type, if_match, change,
                         f"remove member {value} of {name} {type}",
                         dry_run, networks, response, wait=wait)


@router.post("/{name}/{type}/members/{value}/{action}", response_model=WriteResult,
             responses=WRITE_ERRORS, summary="Drain, undrain, disable or enable a member")
def member_action(zone: str, name: str, type: str, value: str, action: Action, ctx: Ctx,
                  token: Writer, response: Response, if_match: IfMatch = None,
                  dry_run: DryRun = False, networks: Networks = None, wait: Wait = None) -> WriteResult:
    change = _member_change(value, {"state": STATES[action]})
    return _record_write(ctx, token, zone, name, type, if_match, change,
                         f"{action} {value} of {name} {type}",
                         dry_run, networks, response, wait=wait)


datacenters = APIRouter(prefix="/v1/datacenters", tags=["steered records"])


@datacenters.post("/{datacenter}/{action}", response_model=WriteResult, responses=WRITE_ERRORS,
                  summary="Drain, undrain, disable or enable every member in a datacenter")
def datacenter_action(datacenter: str, action: Action, ctx: Ctx, token: Writer,
                      response: Response, dry_run: DryRun = False,
                      networks: Networks = None, wait: Wait = None) -> WriteResult:
    """One version across every zone the token may write, with a change for each record
    whose members it changes; 404 when no member is there."""
    state = STATES[action]

    def plan(live: LiveConfig) -> list[Change]:
        changes: list[Change] = []
        hits = 0
        for origin in sorted(live.zones):
            if origin not in live.steering_text or not token.allows("write", origin.to_text()):
                continue
            for (owner, rtype), before in steertext.records(live.steering_text[origin], origin).items():
                record = copy.deepcopy(before)
                for _, listed, index in steertext.members(record):
                    item = listed[index]
                    if isinstance(item, dict) and item.get("datacenter") == datacenter:
                        steertext.set_member_fields(listed, index, {"state": state})
                        hits += 1
                if not same(before, record):
                    changes.append(Change(STEERED, origin.to_text(), owner, rtype, before, record))
        if not hits:
            raise ApiProblem(404, f"no member in datacenter {datacenter} (in zones this token may write)")
        return changes

    return write(ctx, token, "write", plan, f"{action} datacenter {datacenter}", dry_run, networks,
                 response, wait=wait)


