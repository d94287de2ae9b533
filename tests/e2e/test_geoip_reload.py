"""`--geoip` files are checked on SIGHUP (and every 10 s): a new database renamed over the
old one steers the next queries, well before the 10-second check would have seen it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import dns.edns

from tests.servers import GslbProcess, wait_until
from tests.unit.load.test_geoip import city, write

ZONE = """\
$ORIGIN geo.test.
$TTL 3600
@     IN SOA ns1.geo.test. hostmaster.geo.test. 1 7200 3600 1209600 300
      IN NS  ns1.geo.test.
ns1   IN A   192.0.2.53
"""
STEERING = """\
records:
  where:
    type: A
    pools:
      fr: {members: [192.0.2.2]}
      de: {members: [192.0.2.3]}
    rules:
      - {geos: [FR], pool: fr}
      - pool: de
"""


def test_sighup_rereads_a_replaced_geoip_database(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "geo.test.zone").write_text(ZONE)
    (zones / "geo.test.gslb.yaml").write_text(STEERING)
    database = write(tmp_path / "City.mmdb", "GeoLite2-City",
                     {"198.51.100.0/24": city("EU", "FR", None, 48.86, 2.35)})
    server = GslbProcess(zones, ["--geoip", str(database), "--workers", "1"])
    server.start(["geo.test."])

    def answer() -> str:
        reply = server.query("where.geo.test.", "A", use_edns=0,
                             options=[dns.edns.ECSOption("198.51.100.0", 24)])
        return reply.answer[0][0].address

    try:
        assert answer() == "192.0.2.2"
        # The network moves to Germany: a new file renamed over the old (as geoipupdate does).
        replacement = write(tmp_path / "City.mmdb.new", "GeoLite2-City",
                            {"198.51.100.0/24": city("EU", "DE", None, 52.52, 13.40)})
        os.replace(replacement, database)
        started = time.monotonic()
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: answer() == "192.0.2.3", timeout=8, step=0.1), server.log()
        assert time.monotonic() - started < 8
    finally:
        server.stop()
