"""How long until `dig` sees a change made through the API, with a 1M-record zone loaded.

    python bench/api_large_zone.py [--records 1000000] [--workers 1]

Builds a zone of N A records plus a weighted steered name, starts `gslb serve --api`,
then adds a record, changes a weight and changes an existing record through HTTP while
`dig` asks (from fresh source ports) until every answer shows the change. Prints, for
each, when dig saw it and when the HTTP reply came (the reply waits for the zone file
rewrite; the answers do not). Also checks no worker was replaced and nothing reloaded.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.e2e.test_api import make_token  # noqa: E402
from tests.e2e.test_smoke import dig  # noqa: E402
from tests.servers import GslbProcess, free_port  # noqa: E402

STEERING = """zone: big.test.
datacenters: {a: {}, b: {}}
records:
  lb:
    type: A
    ttl: 30
    pools:
      p:
        members:
          - {value: 192.0.2.1, weight: 1, datacenter: a}
          - {value: 192.0.2.2, weight: 1, datacenter: b}
    rules: [{pool: p}]
    policies: [weighted]
"""


def build(folder: Path, records: int) -> None:
    lines = ["$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
             "@ IN NS ns1\nns1 IN A 192.0.2.53\n"]
    lines += [f"h{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n" for i in range(records)]
    (folder / "big.test.zone").write_text("".join(lines))
    (folder / "big.test.gslb.yaml").write_text(STEERING)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        zones = Path(tmp)
        build(zones, args.records)
        port = free_port()
        started = time.monotonic()
        server = GslbProcess(zones, ["--api", f"127.0.0.1:{port}", "--workers", str(args.workers),
                                     "--prewarm", "0"]).start(ready_zones=["big.test."], timeout=300)
        print(f"{args.records} records, {args.workers} worker(s): ready in "
              f"{time.monotonic() - started:.1f} s")
        try:
            run(server, zones, port)
        finally:
            server.stop()
    return 0


def run(server: GslbProcess, zones: Path, port: int) -> None:
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                          headers={"Authorization": f"Bearer {make_token(zones)}"})
    children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    steps = [
        ("record add", "put", "/v1/zones/big.test/rrsets/added/A",
         {"ttl": 30, "rdata": ["192.0.2.123"]}, "added.big.test", ["192.0.2.123"]),
        ("weight change", "patch", "/v1/zones/big.test/steered/lb/A/members/192.0.2.1",
         {"weight": 0}, "lb.big.test", ["192.0.2.2"]),
        ("record change", "put", "/v1/zones/big.test/rrsets/h765432/A",
         {"ttl": 30, "rdata": ["192.0.2.124"]}, "h765432.big.test", ["192.0.2.124"]),
    ]
    for label, method, path, body, name, expected in steps:
        reply: dict[str, float | int] = {}
        start = time.monotonic()

        def call() -> None:
            status = client.request(method.upper(), path, json=body).status_code
            reply.update(status=status, at=time.monotonic() - start)

        thread = threading.Thread(target=call)
        thread.start()
        while not all(_answers(server, name) == expected for _ in range(4)):
            time.sleep(0.005)
        seen = time.monotonic() - start
        thread.join()
        print(f"{label}: dig sees it after {seen:.2f} s; HTTP {reply['status']} after {reply['at']:.2f} s")
    after = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    print(f"workers unchanged: {children == after}; reloads logged: {server.log().count('reloaded')}")


def _answers(server: GslbProcess, name: str) -> list[str]:
    return sorted(r.split()[-1] for r in dig(server, name, "A").records("ANSWER"))


if __name__ == "__main__":
    sys.exit(main())
