"""Latency telemetry: RTT samples in, one robust figure per (client, datacenter) out.

Who sends samples: health agents (their probe times, per agent region and datacenter),
and anything else through `ingest` (Python) or `gslb rtt` (the command): probes,
real-user beacons. A sample is (client, datacenter, milliseconds); `client` is a client
network (`10.0.0.0/8`, `2001:db8::/32`) or a region code (`EU`, `NA-US`, an agent's
region), the same keys the `latency` policy looks up.

Aggregation happens in Redis, atomically (a Lua script): an EWMA with weight `ALPHA` per
new sample, and the sample count. Nodes only hand figures with at least
`rtt_min_samples` samples (default 5) to the `latency` policy, rounded to 1 ms so noise
does not re-decide cached answers.

Rate limit: at most `limit` samples per second per client key (default 50); the rest are
rejected and counted, so one noisy source cannot flood Redis or swing a figure.
A figure that moved by more than `PUBLISH_CHANGE` (10%) since it was last published, or
that just reached the minimum count, is announced on `gslb:changes`; the rest wait for
the nodes' periodic resync.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Iterable

from gslb.state.redis import CHANGES, EPOCH, RTT

ALPHA = 0.3
DEFAULT_LIMIT = 50  # samples per second per client key
PUBLISH_CHANGE = 0.10
MAX_MS = 60_000.0
_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")

# KEYS: rtt hash, rate counter.  ARGV: field, ms, now, alpha, limit, change, min count.
# Returns 0 (rate limited), 1 (stored), 2 (stored and worth announcing).
_SCRIPT = """
local used = redis.call('INCR', KEYS[2])
if used == 1 then redis.call('EXPIRE', KEYS[2], 2) end
if used > tonumber(ARGV[5]) then return 0 end
local ms = tonumber(ARGV[2])
local count, announced = 1, ms
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local data = cjson.decode(current)
  ms = data.ms + tonumber(ARGV[4]) * (ms - data.ms)
  count = data.n + 1
  announced = data.p or data.ms
end
local worth = math.abs(ms - announced) > tonumber(ARGV[6]) * announced or count == tonumber(ARGV[7])
if worth then announced = ms end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({ms = ms, n = count, at = tonumber(ARGV[3]), p = announced}))
if worth then return 2 end
return 1
"""


@dataclass(frozen=True)
class Sample:
    client: str  # a client network (CIDR) or a region code
    datacenter: str
    ms: float


def validate(sample: Sample) -> str | None:
    """Why the sample is refused, or None."""
    if "/" in sample.client:
        try:
            ipaddress.ip_network(sample.client, strict=True)
        except ValueError as exc:
            return f"client {sample.client!r}: {exc}"
    elif not _REGION.match(sample.client):
        return f"client {sample.client!r}: expected a network (CIDR) or a region code"
    if not _REGION.match(sample.datacenter):
        return f"datacenter {sample.datacenter!r}: expected a datacenter name"
    if not 0 <= sample.ms <= MAX_MS:
        return f"{sample.ms} ms: expected 0..{MAX_MS:g}"
    return None


@dataclass
class IngestResult:
    accepted: int = 0
    limited: int = 0
    invalid: list[str] | None = None


def ingest(client: Any, samples: Iterable[Sample], limit: int = DEFAULT_LIMIT,
           min_samples: int = 5, now: float | None = None) -> IngestResult:
    """Store samples through a blocking redis-py client (the `gslb rtt` path). Invalid
    samples are listed, not stored; samples over the rate limit are counted."""
    result = IngestResult(invalid=[])
    script = client.register_script(_SCRIPT)
    announce = False
    for sample in samples:
        problem = validate(sample)
        if problem is not None:
            assert result.invalid is not None
            result.invalid.append(problem)
            continue
        outcome = script(keys=list(_keys(sample, now)), args=_args(sample, limit, min_samples, now))
        if outcome == 0:
            result.limited += 1
        else:
            result.accepted += 1
            announce = announce or outcome == 2
    if announce:
        epoch = client.incr(EPOCH)
        client.publish(CHANGES, json.dumps({"epoch": epoch, "kind": "rtt"}))
    return result


async def ingest_async(client: Any, samples: Iterable[Sample], limit: int = DEFAULT_LIMIT,
                       min_samples: int = 5) -> int:
    """The same for an asyncio client (health agents); returns how many were stored."""
    script = client.register_script(_SCRIPT)
    stored = 0
    announce = False
    for sample in samples:
        if validate(sample) is not None:
            continue
        outcome = await script(keys=list(_keys(sample, None)), args=_args(sample, limit, min_samples, None))
        stored += outcome != 0
        announce = announce or outcome == 2
    if announce:
        epoch = await client.incr(EPOCH)
        await client.publish(CHANGES, json.dumps({"epoch": epoch, "kind": "rtt"}))
    return stored


def _keys(sample: Sample, now: float | None) -> tuple[str, str]:
    second = int(now if now is not None else time.time())
    return RTT, f"{RTT}:rate:{sample.client}:{second}"


def _args(sample: Sample, limit: int, min_samples: int, now: float | None) -> list[object]:
    when = now if now is not None else time.time()
    return [f"{sample.client}|{sample.datacenter}", sample.ms, when, ALPHA, limit,
            PUBLISH_CHANGE, min_samples]
