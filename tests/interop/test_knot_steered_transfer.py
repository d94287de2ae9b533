"""A real Knot DNS secondary transferring a zone with steered names from gslb (issue 7
item 3): it serves, to every client, only what the steering configuration lets anyone
get: never a weight-0, disabled, failover-only or subnet-restricted address."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dns.edns
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.interop.knot import KNOTD
from tests.e2e.test_reload_steering import with_records
from tests.interop.test_knot_secondary import KnotSecondary
from tests.servers import DEMO_ZONES, GslbProcess

if KNOTD is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("knotd (Debian package knot) is required in CI")
    pytest.skip("knotd (Debian package knot) not installed", allow_module_level=True)


def _addresses(port: int, name: str, network: str) -> set[str]:
    address, prefix = network.split("/")
    query = dns.message.make_query(name, "A", use_edns=0,
                                   options=[dns.edns.ECSOption(address, int(prefix))])
    reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=2)
    assert reply.rcode() == dns.rcode.NOERROR
    return {rd.to_text() for rrset in reply.answer for rd in rrset}


def test_a_knot_secondary_serves_only_unrestricted_addresses(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    shutil.copytree(DEMO_ZONES, zones)
    steering = zones / "example.com.gslb.yaml"
    steering.write_text(with_records(steering.read_text(), """
  hidden:
    type: A
    transfer: []
    pools: {p: {members: [192.0.2.77]}}
    rules: [{pool: p}]
"""))
    primary = GslbProcess(zones, ["--workers", "1"]).start(["example.com."])
    secondary = KnotSecondary(tmp_path / "knot", primary.port, ["example.com."])
    try:
        secondary.start()
        for network in ("10.1.2.0/24", "192.0.2.0/24"):
            assert _addresses(secondary.port, "www2.example.com.", network) == {"192.0.2.10", "192.0.2.11"}
            assert _addresses(secondary.port, "api.example.com.", network) == {"192.0.2.20"}
            assert _addresses(secondary.port, "geo.example.com.", network) == {"192.0.2.30", "198.51.100.30"}
        # left out of transfers: the secondary has no such name; gslb itself steers it
        reply = dns.query.udp(dns.message.make_query("hidden.example.com.", "A"), "127.0.0.1",
                              port=secondary.port, timeout=2)
        assert reply.rcode() == dns.rcode.NXDOMAIN
        assert _addresses(primary.port, "hidden.example.com.", "192.0.2.0/24") == {"192.0.2.77"}
        assert _addresses(primary.port, "geo.example.com.", "10.1.2.0/24") == {"10.0.0.80"}
    finally:
        secondary.stop()
        primary.stop()
