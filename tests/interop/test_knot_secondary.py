"""Knot DNS as a real secondary of gslb: AXFR, then a serial bump picked up over IXFR.

gslb serves an unsigned zone and a pre-signed one (signed at test time by kzonesign);
knotd is configured with gslb as the primary of both. Knot transfers them (AXFR, its
first transfer), answers from them what gslb answers, and after the unsigned zone's
serial is bumped and gslb gets SIGHUP, `knotc zone-refresh` makes Knot ask with IXFR:
gslb answers AXFR-style (RFC 1995 section 4) and Knot applies it. An IXFR from a client
that is current, or newer, gets our SOA alone (RFC 1995 section 2).
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Iterator

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from tests.interop.knot import KNOTD, KnotProcess
from tests.interop.signing import sign_zones
from tests.interop.compare import section_set
from tests.redis_server import require
from tests.servers import GslbProcess, wait_until

PLAIN = "sec.test."
SIGNED = "nsec3.test."
ZONE = """\
$TTL 300
@     SOA ns1 hostmaster {serial} 3600 600 86400 300
@     NS  ns1
ns1   A   192.0.2.1
www   A   192.0.2.80
{extra}
"""

SECONDARY = """\
server:
    rundir: "{run}"
    listen: 127.0.0.1@{port}
log:
  - target: stderr
    any: info
database:
    storage: "{db}"
control:
    listen: "{run}/knot.sock"
remote:
  - id: gslb
    address: 127.0.0.1@{primary}
template:
  - id: default
    storage: "{zones}"
    zonefile-sync: -1
    zonefile-load: none
    semantic-checks: off
    master: gslb
zone:
{zone_list}
"""


class KnotSecondary(KnotProcess):
    """knotd with its zones transferred from gslb, nothing read from files."""

    def __init__(self, workdir: Path, primary: int, origins: list[str] | None = None) -> None:
        super().__init__(workdir / "zones", origins or [PLAIN, SIGNED], workdir)
        self.primary = primary

    def write_config(self) -> Path:
        for sub in ("run", "db", "zones"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        path = self.workdir / "knot.conf"
        path.write_text(SECONDARY.format(run=self.workdir / "run", db=self.workdir / "db",
                                         port=self.port, primary=self.primary,
                                         zones=self.workdir / "zones",
                                         zone_list="\n".join(f"  - domain: {origin}"
                                                              for origin in self.origins)))
        return path

    def knotc(self, *args: str) -> str:
        done = subprocess.run([require("knotc", "knot"), "-s", str(self.workdir / "run" / "knot.sock"),
                               *args], capture_output=True, text=True, timeout=30)
        return done.stdout + done.stderr


def ask(host: str, port: int, name: str, rdtype: str, do: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, want_dnssec=do, use_edns=0)
    query.flags = 0
    return dns.query.udp(query, host, port=port, timeout=2)


def serial(host: str, port: int, origin: str) -> int | None:
    try:
        reply = ask(host, port, origin, "SOA")
    except Exception:
        return None
    return reply.answer[0][0].serial if reply.answer else None


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[GslbProcess, KnotSecondary, Path]]:
    if KNOTD is None:
        require("knotd", "knot")
    signed = sign_zones(require("kzonesign", "knot-dnssecutils"), tmp_path / "signed", [SIGNED])
    zones = signed.directory
    (zones / f"{PLAIN}zone").write_text(ZONE.format(serial=1, extra=""))
    gslb = GslbProcess(zones, ["--workers", "1"])
    knot = KnotSecondary(tmp_path / "knot", gslb.port)
    try:
        gslb.start([PLAIN, SIGNED])
        knot.start(timeout=30)
        yield gslb, knot, zones
    finally:
        knot.stop()
        gslb.stop()


def test_knot_transfers_then_refreshes_over_ixfr(
        servers: tuple[GslbProcess, KnotSecondary, Path]) -> None:
    gslb, knot, zones = servers
    assert serial(knot.host, knot.port, PLAIN) == 1
    # The secondary answers what the primary answers, signatures and proofs included.
    for name, rdtype in ((SIGNED, "SOA"), (f"www.{SIGNED}", "A"), (f"nothere.{SIGNED}", "A"),
                         (f"www.{PLAIN}", "A")):
        ours, theirs = ask(gslb.host, gslb.port, name, rdtype, True), ask(knot.host, knot.port, name, rdtype, True)
        assert ours.rcode() == theirs.rcode()
        assert section_set(ours.answer) == section_set(theirs.answer)
        assert section_set(ours.authority) == section_set(theirs.authority)

    (zones / f"{PLAIN}zone").write_text(ZONE.format(serial=2, extra="new A 192.0.2.2"))
    gslb.signal(signal.SIGHUP)
    assert wait_until(lambda: serial(gslb.host, gslb.port, PLAIN) == 2, timeout=15)
    knot.knotc("zone-refresh", PLAIN)
    assert wait_until(lambda: serial(knot.host, knot.port, PLAIN) == 2, timeout=20), knot.log()
    reply = ask(knot.host, knot.port, f"new.{PLAIN}", "A")
    assert [rd.to_text() for rd in reply.answer[0]] == ["192.0.2.2"]
    log = knot.log()
    assert "IXFR" in log and "AXFR-style" in log, log


def test_ixfr_from_a_current_client_is_the_soa_alone(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / f"{PLAIN}zone").write_text(ZONE.format(serial=2, extra=""))
    gslb = GslbProcess(zones, ["--workers", "1"])
    try:
        gslb.start([PLAIN])
        # current, newer, older, and older by RFC 1982 (2**32 - 1 comes before 2)
        for client_serial, whole in ((2, False), (3, False), (1, True), (2**32 - 1, True)):
            query = dns.message.make_query(PLAIN, dns.rdatatype.IXFR)
            query.authority.append(dns.rrset.from_text(
                PLAIN, 0, "IN", "SOA", f"ns1.{PLAIN} hostmaster.{PLAIN} {client_serial} 1 1 1 1"))
            reply = dns.query.tcp(query, gslb.host, port=gslb.port, timeout=5)
            types = [r.rdtype for r in reply.answer]
            if whole:  # the whole zone, AXFR-style
                assert types[0] == dns.rdatatype.SOA and len(types) > 2, client_serial
            else:
                assert types == [dns.rdatatype.SOA] and len(reply.answer[0]) == 1, client_serial
                assert reply.answer[0][0].serial == 2
        query = dns.message.make_query(PLAIN, dns.rdatatype.IXFR)  # no SOA: RFC 1995 section 3
        assert dns.query.tcp(query, gslb.host, port=gslb.port, timeout=5).rcode() == dns.rcode.FORMERR
    finally:
        gslb.stop()
