"""Redis for shared state: URLs (plain, TLS, Sentinel), connections, backoff, key layout.

Reusable by anything that keeps state in Redis (health agents, DNS nodes, the API, node
heartbeats). URLs:

    redis://[:PASSWORD@]HOST:PORT[/DB]            one Redis
    rediss://[:PASSWORD@]HOST:PORT[/DB]           one Redis over TLS
    redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]
                                                  the primary of SERVICE, found through
                                                  these Sentinels (the password is the
                                                  data nodes'; Sentinels without one)

Every client made here has short socket timeouts, so a dead Redis costs a bounded wait,
never a hang; callers keep their last known data and retry with `Backoff` (fail-static).

Key layout (all under the prefix `gslb:`; values are JSON):

    gslb:epoch               integer, INCR on every published change (verdict flip,
                             override, RTT figure): the state epoch
    gslb:changes             pub/sub channel: {"epoch": N, "kind": "verdict"|"override"|"rtt"}
    gslb:verdicts            hash  "HEALTH_KEY|AGENT" -> {"up", "at", "expires", "detail", "region"}
                             (HEALTH_KEY is check@address; `at` and `expires` Unix seconds,
                             refreshed at every probe; a verdict past its `expires`, or older
                             than the node's --verdict-expiry, is stale)
    gslb:overrides           hash  MEMBER_VALUE -> {"mode": up|down|drain, "until", "by", "reason"}
    gslb:rtt                 hash  "CLIENT|DATACENTER" -> {"ms": EWMA, "n": samples, "at"}
                             (CLIENT: a client network like 10.0.0.0/8, or a region code)
    gslb:rtt:rate:CLIENT:S   counter of samples accepted for CLIENT in second S (expires)
    gslb:agents              hash  AGENT -> {"region", "at", "probes"}: agent heartbeats
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:  # the client library is imported where a Redis is used (see `errors`)
    import redis
    import redis.asyncio

PREFIX = "gslb:"
EPOCH = PREFIX + "epoch"
CHANGES = PREFIX + "changes"
VERDICTS = PREFIX + "verdicts"
OVERRIDES = PREFIX + "overrides"
RTT = PREFIX + "rtt"
AGENTS = PREFIX + "agents"
SOCKET_TIMEOUT = 1.0  # seconds for a connect or a reply: a dead Redis is noticed fast


def errors() -> tuple[type[Exception], ...]:
    """What an unreachable or failing Redis raises. The client library is imported on
    first need, not with this module: a node without Redis never loads it (a tenth of a
    second and 7 MiB at every start)."""
    import redis

    return (redis.RedisError, OSError)


@dataclass(frozen=True)
class RedisTarget:
    """A parsed Redis URL."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    db: int = 0
    password: str | None = None

    def display(self) -> str:
        """The URL without its password, for logs and `gslb explain`."""
        parts = urlsplit(self.url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return f"{parts.scheme}://{host}{parts.path}"


def parse_url(url: str) -> RedisTarget:
    """A RedisTarget, or ValueError naming what is wrong with the URL."""
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss", "unix"):
        import redis.connection

        try:
            redis.connection.parse_url(url)
        except ValueError as exc:
            raise ValueError(f"--redis {url!r}: {exc}") from None
        return RedisTarget(url)
    if parts.scheme != "redis+sentinel":
        raise ValueError(f"--redis {url!r}: expected redis://, rediss:// or redis+sentinel://")
    password = None
    hosts = parts.netloc
    if "@" in hosts:
        credentials, hosts = hosts.rsplit("@", 1)
        password = unquote(credentials.split(":", 1)[-1]) or None
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--redis {url!r}: sentinel {item!r} is not HOST:PORT")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError(f"--redis {url!r}: expected /SERVICE or /SERVICE/DB after the sentinels")
    return RedisTarget(url, tuple(sentinels), path[0], int(path[1]) if len(path) == 2 else 0,
                       password)


def connect(target: RedisTarget) -> redis.asyncio.Redis:
    """An asyncio client; through Sentinel, it follows the primary across failovers."""
    import redis.asyncio
    import redis.asyncio.sentinel

    options: dict[str, Any] = dict(socket_timeout=SOCKET_TIMEOUT, decode_responses=True,
                                   socket_connect_timeout=SOCKET_TIMEOUT, health_check_interval=5)
    if target.sentinels:
        sentinel = redis.asyncio.sentinel.Sentinel(
            list(target.sentinels), socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT)
        assert target.service is not None
        return sentinel.master_for(target.service, db=target.db, password=target.password,
                                   **options)
    return redis.asyncio.from_url(target.url, **options)


def connect_sync(target: RedisTarget) -> redis.Redis:
    """A blocking client, for short-lived commands (`gslb override`, `gslb rtt`, explain)."""
    import redis
    import redis.sentinel

    options: dict[str, Any] = dict(socket_timeout=SOCKET_TIMEOUT, decode_responses=True,
                                   socket_connect_timeout=SOCKET_TIMEOUT)
    if target.sentinels:
        sentinel = redis.sentinel.Sentinel(list(target.sentinels), socket_timeout=SOCKET_TIMEOUT,
                                           socket_connect_timeout=SOCKET_TIMEOUT)
        assert target.service is not None
        return sentinel.master_for(target.service, db=target.db, password=target.password,
                                   **options)
    return redis.from_url(target.url, **options)


class Backoff:
    """Reconnect delays: 0.1 s doubling to `ceiling`, with jitter so nodes that lost the
    same Redis do not come back in lockstep; `reset` after a success."""

    def __init__(self, floor: float = 0.1, ceiling: float = 5.0,
                 rng: random.Random | None = None) -> None:
        self.floor, self.ceiling = floor, ceiling
        self.current = floor
        self.rng = rng or random.Random()

    def next(self) -> float:
        delay = self.current * self.rng.uniform(0.5, 1.0)
        self.current = min(self.ceiling, self.current * 2)
        return delay

    def reset(self) -> None:
        self.current = self.floor


class Outage:
    """Whether the store is reachable, logged once per outage (not per operation)."""

    def __init__(self, name: str, log: object) -> None:
        self.name = name
        self.log = log
        self.connected = False
        self.since = time.time()
        self.error = "not connected yet"
        self.ever = False

    def failed(self, exc: BaseException, quiet: bool = False) -> None:
        """Record a failure; `quiet` (a one-shot reader) records it without logging, and
        leaves the one log line of this outage to the next failure."""
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if quiet:
            self.connected, self.error = False, text
            return
        if self.connected or not self.ever:
            self.log.error("state store %s unreachable (%s); serving the last known state "  # type: ignore[attr-defined]
                           "and retrying with backoff", self.name, text)
            self.since = time.time()
        self.connected = False
        self.ever = True
        self.error = text

    def succeeded(self) -> None:
        if not self.connected:
            if self.ever:
                self.log.warning("state store %s reachable again after %.1f s",  # type: ignore[attr-defined]
                                 self.name, time.time() - self.since)
            else:
                self.log.info("state store %s connected", self.name)  # type: ignore[attr-defined]
            self.since = time.time()
        self.connected = True
        self.ever = True
        self.error = ""
