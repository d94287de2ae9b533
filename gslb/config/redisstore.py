"""The distributed configuration store: the configuration of record lives in Redis.

Keys (prefix `gslb:config:`): `head` (last version number), `version:N` (the version's
JSON), `zones` (set of origins), `zone:ORIGIN` (zone-file text), `steering:ORIGIN`
(steering YAML text), `lock` (one writer at a time across API replicas), and
`gslb:tokens` for the API tokens. A commit writes the version, the new texts and the
head in one MULTI/EXEC, so a reader sees a version entirely or not at all, and the same
transaction announces the new number on `gslb:config:changes` (CHANNEL). Nodes learn of
new versions from that announcement, and by reading `head` once a second in case one was
lost (gslb/config/follower.py); a Redis that is down only stops changes, never answers:
every node keeps serving what it has.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import dns.name

from gslb.config.changes import RRSET, ZONE, Change, Version, oldest_kept
from gslb.config.filestore import edit_zone_text, steering_texts
from gslb.config.live import NO_RECORDS, LiveConfig, load_zone_text
from gslb.config.rrsets import Invalid
from gslb.state.redis import connect_sync, parse_url
from gslb.load.steering import steering_from_text

if TYPE_CHECKING:  # imported by gslb.state.redis when a Redis is used
    import redis

log = logging.getLogger("gslb.config")
PREFIX = "gslb:config:"
TOKENS = "gslb:tokens"
CHANNEL = PREFIX + "changes"  # pub/sub: the number of each committed version
LOCK_SECONDS = 30.0


def connect(url: str) -> redis.Redis:
    """A client that gives up quickly (a dead Redis must not hold a DNS worker), for any
    URL `gslb.state.redis` takes: redis://, rediss://, redis+sentinel://."""
    return connect_sync(parse_url(url))


class RedisStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = connect(url)

    def head(self) -> int:
        return int(self.client.get(PREFIX + "head") or 0)

    def version(self, number: int) -> Version | None:
        raw = self.client.get(f"{PREFIX}version:{number}")
        return Version.from_json(json.loads(raw)) if raw else None

    def versions_after(self, number: int) -> list[Version]:
        head = self.head()
        if head <= number:
            return []
        keys = [f"{PREFIX}version:{n}" for n in range(number + 1, head + 1)]
        return [Version.from_json(json.loads(raw)) for raw in self.client.mget(keys) if raw]

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self.client.lock(PREFIX + "lock", timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS):
            yield

    def commit(self, before: LiveConfig, after: LiveConfig, changes: list[Change], author: str,
               message: str) -> Version:
        """One MULTI/EXEC: the version, every text it changes, the head (under the lock)."""
        version = Version(self.head() + 1, author, time.time(), message, tuple(changes))
        texts: dict[str, str | None] = {}
        for change in changes:
            origin = dns.name.from_text(change.zone)
            if change.kind == ZONE:
                texts[f"{PREFIX}zone:{change.zone}"] = change.after
            elif change.kind == RRSET:
                key = f"{PREFIX}zone:{change.zone}"
                if key not in texts:
                    texts[key] = _text(self.client.get(key))
                texts[key] = edit_zone_text(texts[key], origin, change)
        stored = steering_texts(before, after, changes,
                                lambda o: _text(self.client.get(f"{PREFIX}steering:{o.to_text()}")))
        for origin, text in stored.items():
            texts[f"{PREFIX}steering:{origin.to_text()}"] = text
        pipe = self.client.pipeline(transaction=True)
        pipe.set(f"{PREFIX}version:{version.number}", json.dumps(version.to_json()))
        for change in changes:
            if change.kind == ZONE:
                (pipe.sadd if change.after is not None else pipe.srem)(PREFIX + "zones", change.zone)
        for key, text in texts.items():
            if text is None:
                pipe.delete(key)
            else:
                pipe.set(key, text)
        pipe.set(PREFIX + "head", version.number)
        pipe.publish(CHANNEL, version.number)
        pipe.execute()
        number = oldest_kept(version.number) - 1  # the history is bounded: drop the oldest
        while number > 0 and self.client.delete(f"{PREFIX}version:{number}"):
            number -= 1
        return version

    def written(self) -> int:
        return self.head()  # the texts are written in the same transaction as the head

    def write_files(self, before: LiveConfig, after: LiveConfig, version: Version) -> None:
        pass  # nothing outside Redis

    def recover(self, live: LiveConfig) -> bool:
        return False  # a commit is one transaction: there is never half of one

    def load(self) -> LiveConfig:
        """The whole configuration at the head (zones parsed, steering checked)."""
        head = self.head()
        origins = sorted(str(o) for o in self.client.smembers(PREFIX + "zones"))
        zone_texts: list = self.client.mget([f"{PREFIX}zone:{o}" for o in origins]) if origins else []
        steerings: list = self.client.mget([f"{PREFIX}steering:{o}" for o in origins]) if origins else []
        live = LiveConfig(Path("redis"), version=head)
        for origin_text, zone_text, steering_text in zip(origins, zone_texts, steerings):
            origin = dns.name.from_text(origin_text)
            try:
                zone = load_zone_text(zone_text or "", Path(f"{origin_text}zone"))
            except Invalid as exc:
                log.error("zone %s in Redis does not load: %s", origin_text, exc)
                continue
            live.zones[origin] = zone
            live.records[origin] = NO_RECORDS
            if steering_text:
                text = steering_text
                found, problems = steering_from_text(text, f"{origin_text}gslb.yaml", zone)
                for problem in problems:
                    log.error("%s", problem)
                live.steering_text[origin] = text
                live.records[origin] = {(r.owner, r.rdtype): r for r in found}
        return live


def _text(value: object) -> str | None:
    """Redis replies are text here (decode_responses); None for a missing key."""
    return None if value is None else str(value)


class RedisTokens:
    """Tokens in one Redis key (distributed mode), shared by every API replica."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def read(self) -> tuple[object, str | None]:
        raw = _text(self.client.get(TOKENS))
        return raw, raw

    def write(self, text: str) -> None:
        self.client.set(TOKENS, text)
