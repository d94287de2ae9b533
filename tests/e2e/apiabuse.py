"""Abusive API traffic for a bounded time, as its own process (the test runs it at a low
priority: on a real deployment the attacker's CPU is not the server's):
`python apiabuse.py URL TOKEN SECONDS` rewrites the largest steered record the bounds
allow and asks for dry-run previews at the preview's cap, from two threads, and prints
one JSON line counting the replies by kind and status."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter

import httpx


def main(url: str, token: str, seconds: float) -> Counter:
    client = httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})
    until = time.monotonic() + seconds
    counts: Counter = Counter()

    def big_records() -> None:
        members = [{"value": f"10.1.{n // 256}.{n % 256}", "weight": 1} for n in range(256)]
        body = {"type": "A", "pools": {"p": {"members": members}}, "rules": [{"pool": "p"}]}
        while time.monotonic() < until:
            members[0]["weight"] = members[0]["weight"] % 9 + 1
            reply = client.put("/v1/zones/example.com/steered/big/A", json=body)
            counts[f"put {reply.status_code}"] += 1

    def previews() -> None:
        networks = [f"10.{n // 256}.{n % 256}.0/24" for n in range(256)]
        while time.monotonic() < until:
            reply = client.post("/v1/datacenters/eu-west/drain",
                                params={"dry_run": True, "networks": networks})
            counts[f"preview {reply.status_code}"] += 1

    threads = [threading.Thread(target=work) for work in (big_records, previews)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], float(sys.argv[3]))))
