"""A health change with a one-million-record zone loaded applies within one second, on
every worker, without reloading the zone: the change only swaps the steering view."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.test_health import _children, dig
from tests.servers import GslbProcess, wait_until

RECORDS = 1_000_000
STEERING = """\
records:
  www:
    type: A
    ttl: 5
    pools:
      p:
        members:
          - {value: 192.0.2.10, check: primary, priority: 1}
          - {value: 192.0.2.11, check: secondary, priority: 2}
    rules: [{pool: p}]
    policies: [health, priority]
"""


def _big_zone(directory: Path) -> Path:
    zones = directory / "zones"
    zones.mkdir()
    head = ("$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
            "@ IN NS ns1\nns1 IN A 192.0.2.53\n")
    body = "".join(f"h{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n" for i in range(RECORDS))
    (zones / "big.test.zone").write_text(head + body)
    (zones / "big.test.gslb.yaml").write_text(STEERING)
    return zones


def test_a_health_change_applies_within_a_second_with_a_million_records(tmp_path: Path) -> None:
    zones = _big_zone(tmp_path)
    state = tmp_path / "state.yaml"
    state.write_text("health: {primary: up}\n")
    server = GslbProcess(zones, ["--workers", "2", "--state", str(state), "--prewarm", "0"])
    server.start(["big.test."], timeout=180)
    try:
        assert dig(server, "www.big.test") == {"192.0.2.10"}
        assert dig(server, "h999999.big.test") == {"10.15.66.63"}
        workers = _children(server.pid)
        delays = []
        for health, expected in (("down", "192.0.2.11"), ("up", "192.0.2.10"), ("down", "192.0.2.11")):
            started = time.monotonic()
            state.write_text(f"health: {{primary: {health}}}\n")
            assert wait_until(lambda: dig(server, "www.big.test") == {expected}, timeout=3, step=0.02)
            delays.append(time.monotonic() - started)
        print(f"health change applied after {[round(d, 3) for d in delays]} s")
        assert max(delays) < 1.0, delays
        assert _children(server.pid) == workers  # the same workers: no reload, no fork
        assert "reload" not in server.log()
    finally:
        server.stop()
