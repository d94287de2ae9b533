"""Request and response bodies. Requests forbid unknown fields (a typo is an error, not
a silently ignored key)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gslb.config.rrsets import MAX_TTL
from gslb.load import bounds


class Strict(BaseModel):
    """A request body: unknown keys are refused, and so are values of the wrong JSON
    type ("300" for a number), rather than converted."""

    model_config = ConfigDict(extra="forbid", strict=True)


class RRsetBody(Strict):
    ttl: int = Field(ge=0, le=MAX_TTL, description="seconds (RFC 2181: 0..2^31-1)")
    rdata: list[str] = Field(min_length=1, max_length=1000,
                             description="records in zone-file text, e.g. \"192.0.2.1\" or "
                             "\"10 mail.example.com.\"; relative names are in the zone")


class RRset(BaseModel):
    name: str
    type: str
    ttl: int
    rdata: list[str]


class RRsetPage(BaseModel):
    zone: str
    offset: int
    rrsets: list[RRset]
    more: bool


class ZoneInfo(BaseModel):
    name: str
    serial: int
    records: int
    steered: int
    etag: str


class ZoneRRset(Strict):
    name: str = Field(description="owner, relative to the zone or absolute; @ is the apex")
    type: str
    ttl: int = Field(ge=0, le=MAX_TTL)
    rdata: list[str] = Field(min_length=1, max_length=1000)


class ZoneCreate(Strict):
    name: str = Field(description="the zone's origin, e.g. example.org.")
    text: str | None = Field(None, description="the zone in RFC 1035 master-file format")
    rrsets: list[ZoneRRset] | None = Field(None, description="or the zone as RRsets "
                                           "(a SOA and NS at the apex are required)")


class ChangeOut(BaseModel):
    kind: Literal["rrset", "steered", "steering", "zone"]
    zone: str
    name: str
    type: str
    before: Any = None
    after: Any = None


class Share(BaseModel):
    key: str = Field(description="pool name or member value")
    before: float
    after: float


class PreviewOut(BaseModel):
    name: str
    type: str
    networks: int = Field(description="client networks the shares are computed over")
    pools: list[Share]
    members: list[Share]


class WriteResult(BaseModel):
    version: int | None = Field(description="the new configuration version (none for a dry run)")
    dry_run: bool
    changes: list[ChangeOut]
    preview: list[PreviewOut] = []
    behind: list[str] = Field(default=[], description=(
        "DNS servers that did not serve the new version yet when the reply went out "
        "(the reply is then 202): workers of this node, or nodes of the fleet"))


class VersionSummary(BaseModel):
    number: int
    author: str
    time: float
    message: str
    zones: list[str]


class VersionOut(VersionSummary):
    changes: list[ChangeOut]


class AuditEntry(BaseModel):
    version: int
    time: float
    author: str
    message: str
    kind: str
    zone: str
    name: str
    type: str


class MemberBody(Strict):
    value: str
    weight: int | None = Field(None, ge=0, le=bounds.MAX_WEIGHT)
    priority: int | None = Field(None, ge=0, le=bounds.MAX_PRIORITY)
    datacenter: str | None = None
    check: str | None = None
    probe: str | None = Field(None, max_length=255,
                              description="where its check probes (an address or host name) "
                              "instead of the member's own value")
    state: Literal["enabled", "drained", "disabled"] | None = None


class PoolBody(Strict):
    members: list[MemberBody | str] = Field(
        min_length=1, max_length=bounds.MAX_MEMBERS,
        description="members; a plain value is short for {\"value\": VALUE}, as in the YAML")
    fallback: str | None = None


class RuleBody(Strict):
    pool: str
    subnets: list[str] | None = None
    geos: list[str] | None = None
    asns: list[int] | None = None


class SteeredBody(Strict):
    """A steered record, as in the steering YAML (README, "Steering configuration")."""

    type: Literal["A", "AAAA", "CNAME"]
    ttl: int | None = Field(None, ge=0, le=bounds.MAX_TTL)
    pools: dict[str, PoolBody] = Field(min_length=1, max_length=bounds.MAX_POOLS)
    rules: list[RuleBody] | None = Field(None, max_length=bounds.MAX_RULES)
    policies: list[str | dict[str, Any]] | None = None
    select: int | None = Field(None, ge=1, le=bounds.MAX_SELECT)
    all_down: Literal["fail_open", "backup_pool", "last_known_good", "nodata", "servfail"] | None = None
    all_down_pool: str | None = None


class SteeredOut(BaseModel):
    name: str
    type: str
    record: dict[str, Any]
    etag: str


class MemberPatch(Strict):
    weight: int | None = Field(None, ge=0, le=bounds.MAX_WEIGHT)
    priority: int | None = Field(None, ge=0, le=bounds.MAX_PRIORITY)
    state: Literal["enabled", "drained", "disabled"] | None = None


class TraceOut(BaseModel):
    step: str
    detail: str
    candidates: list[str]


class ExplainOut(BaseModel):
    name: str
    type: str
    steered: bool
    values: list[str]
    rcode: str
    pool: str | None
    scope: int
    ttl: int
    trace: list[TraceOut]
    text: str
    answer: str
