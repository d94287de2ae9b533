"""A validating resolver trusts gslb's answers from pre-signed zones.

The project's test zone is signed at test time with Knot's `kzonesign` three ways (NSEC,
NSEC3, NSEC3 with opt-out; see tests/interop/signing.py) and served by `gslb serve`. BIND's
`delv`, given each zone's KSK as its trust anchor, validates positive answers, CNAME and
DNAME chains, NXDOMAIN, NODATA (at a name, at an empty non-terminal, DS at an unsigned
delegation) and wildcard answers and wildcard NODATA: every one must come out "fully
validated". A missing RRSIG or a wrong NSEC/NSEC3 proof makes delv say otherwise.

One outcome is not "secure" by design: in the opt-out zone, a wildcard answer's proof
that the query name does not exist is an opt-out NSEC3, which may hide an unsigned
delegation (RFC 5155 section 6 and 9.2), so validators rate the answer insecure; delv
says "unsigned answer" for Knot DNS serving the same file too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.interop.signing import SignedZones, sign_zones
from tests.redis_server import require
from tests.servers import GslbProcess

SECURE = "; fully validated"
NEGATIVE_SECURE = "; negative response, fully validated"

# (name relative to the zone, type, what delv must say)
CASES = [
    ("@", "SOA", SECURE),
    ("www", "A", SECURE),
    ("www", "AAAA", SECURE),
    ("@", "DNSKEY", SECURE),
    ("chain", "A", SECURE),  # CNAME -> CNAME -> A, each signed
    ("host.olddn", "A", SECURE),  # DNAME, the synthesised CNAME, the target
    ("types", "CAA", NEGATIVE_SECURE),
    ("types", "NAPTR", SECURE),
    ("_sip._udp", "SRV", SECURE),
    ("secure", "DS", SECURE),
    ("nothere", "A", NEGATIVE_SECURE),  # NXDOMAIN
    ("deep.nothere", "TXT", NEGATIVE_SECURE),
    ("tonx", "A", SECURE),  # the CNAME, then NXDOMAIN for its target: one verdict
    ("www", "TXT", NEGATIVE_SECURE),  # NODATA
    ("b.ent", "A", NEGATIVE_SECURE),  # NODATA at an empty non-terminal
    ("deleg", "DS", NEGATIVE_SECURE),  # no DS at an unsigned delegation
    ("foo.wild", "TXT", SECURE),  # wildcard answer
    ("a.b.wild", "A", SECURE),
    ("foo.wild", "MX", NEGATIVE_SECURE),  # wildcard NODATA
    ("foo.wcname", "A", SECURE),  # wildcard CNAME
]
OPT_OUT_WILDCARD = "; unsigned answer"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedZones:
    kzonesign = require("kzonesign", "knot-dnssecutils")
    return sign_zones(kzonesign, tmp_path_factory.mktemp("signed"))


@pytest.fixture(scope="module")
def server(signed: SignedZones, udp_path: str) -> Iterator[GslbProcess]:
    gslb = GslbProcess(signed.directory, ["--workers", "1"])
    gslb.start(signed.origins)
    yield gslb
    gslb.stop()


def delv(server: GslbProcess, anchor: Path, origin: str, name: str, rdtype: str) -> str:
    owner = origin if name == "@" else f"{name}.{origin}"
    done = subprocess.run(
        [require("delv", "bind9-dnsutils"), "-a", str(anchor), f"+root={origin}",
         "-p", str(server.port), f"@{server.host}", owner, rdtype],
        capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def expected(origin: str, name: str, verdict: str) -> str:
    wildcard = "wild" in name or "wcname" in name
    if origin == "optout.test." and wildcard and verdict == SECURE:
        return OPT_OUT_WILDCARD
    return verdict


@pytest.mark.parametrize("origin", ["nsec.test.", "nsec3.test.", "optout.test."])
def test_delv_validates_every_answer(signed: SignedZones, server: GslbProcess,
                                     tmp_path: Path, origin: str) -> None:
    anchor = tmp_path / "anchor.conf"
    anchor.write_text(_anchor(origin, signed.ksk[origin]))
    wrong = []
    for name, rdtype, verdict in CASES:
        output = delv(server, anchor, origin, name, rdtype)
        want = expected(origin, name, verdict)
        if want not in output.splitlines():
            wrong.append(f"{name} {rdtype}: want {want!r}\n{output}")
    assert not wrong, f"{len(wrong)} of {len(CASES)} answers in {origin}:\n" + "\n".join(wrong)


def _anchor(origin: str, ksk: str) -> str:
    """A delv trust anchor for the zone's KSK: flags, protocol, algorithm, "key"."""
    flags, protocol, algorithm, *key = ksk.split()
    return (f'trust-anchors {{\n  {origin} static-key {flags} {protocol} {algorithm} '
            f'"{"".join(key)}";\n}};\n')
