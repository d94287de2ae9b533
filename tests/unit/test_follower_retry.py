"""A node's follower asks for a whole load when the store went back in numbering; a load
that leaves that reason standing (the store gives nothing to serve, so the node keeps its
version) is tried again after a growing delay, not at once and forever (it was: thousands
of loads, two log lines each, in a few seconds)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis

from gslb.config.follower import REDIS, Follower, Source
from gslb.config.redisstore import PREFIX
from tests.redis_server import RedisProcess

WATCH = 2.5  # seconds


def test_a_switch_that_loads_nothing_is_retried_with_a_backoff(
        tmp_path: Path, redis_server: RedisProcess) -> None:
    redis.Redis(port=redis_server.port).set(PREFIX + "head", 2)
    serving = Source(REDIS, 5)  # the node serves version 5; the store's head is 2
    follower = Follower(tmp_path, redis_server.url, serving, keep_when_emptied=True)
    switches: list[float] = []

    def switch(reason: str) -> None:
        assert "went back from 5 to 2" in reason
        switches.append(time.monotonic())
        # the node loaded the store, found nothing to serve, and kept its version
        asyncio.get_running_loop().call_soon(follower.restart, serving)

    async def watch() -> None:
        task = asyncio.create_task(follower.run(lambda versions: None, switch))
        await asyncio.sleep(WATCH)
        task.cancel()

    asyncio.run(watch())
    assert 2 <= len(switches) <= 4, f"{len(switches)} loads in {WATCH} s"
    gaps = [b - a for a, b in zip(switches, switches[1:])]
    assert all(gap >= 0.4 for gap in gaps), gaps
