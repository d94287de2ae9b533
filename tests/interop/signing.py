"""Sign the project's own test zone at test time with Knot's `kzonesign`.

`tests/interop/signed/source.zone` (every record type gslb loads, relative names) is
copied under three origins and signed with fresh ECDSA P-256 keys (made by kzonesign's
key manager in a private KASP database), one denial style each:

- `nsec.test.`: NSEC (RFC 4034);
- `nsec3.test.`: NSEC3 with a salt and one extra iteration (RFC 5155);
- `optout.test.`: NSEC3 with opt-out, so the unsigned delegation has no NSEC3 of its own.

Nothing outside the given work directory is written. The signatures are valid for two
weeks from now, which is all a test run needs.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import dns.rdatatype
import dns.zone

SOURCE = Path(__file__).resolve().parent / "signed" / "source.zone"

# origin -> the policy lines that make its denial style
POLICIES = {
    "nsec.test.": "nsec3: off",
    "nsec3.test.": "nsec3: on\n    nsec3-iterations: 1\n    nsec3-salt-length: 4",
    "optout.test.": "nsec3: on\n    nsec3-opt-out: on\n    nsec3-iterations: 0\n    nsec3-salt-length: 0",
}

CONFIG = """\
database:
    storage: "{db}"
keystore:
  - id: keys
    config: "{keys}"
policy:
{policies}
template:
  - id: default
    storage: "{source}"
    file: "%s.zone"
zone:
{zones}
"""


@dataclass(frozen=True)
class SignedZones:
    directory: Path  # <origin>.zone for each signed zone
    ksk: dict[str, str]  # origin -> its KSK DNSKEY rdata as text (for a trust anchor)

    @property
    def origins(self) -> list[str]:
        return list(self.ksk)


def sign_zones(kzonesign: str, workdir: Path, origins: list[str] | None = None,
               when: int | None = None) -> SignedZones:
    """Sign the source zone under each origin (default: all three); files in workdir/zones.

    `when` (a UNIX time) signs as if it were then: signatures valid two weeks from it."""
    origins = origins or list(POLICIES)
    source, out = workdir / "source", workdir / "zones"
    for directory in (source, out, workdir / "db", workdir / "keys"):
        directory.mkdir(parents=True, exist_ok=True)
    text = SOURCE.read_text()
    for origin in origins:
        (source / f"{origin}zone").write_text(text)
    policies = "\n".join(f"  - id: p{i}\n    algorithm: ecdsap256sha256\n    {POLICIES[o]}"
                         for i, o in enumerate(origins))
    zones = "\n".join(f"  - domain: {o}\n    dnssec-signing: on\n    dnssec-policy: p{i}"
                      for i, o in enumerate(origins))
    config = workdir / "knot.conf"
    config.write_text(CONFIG.format(db=workdir / "db", keys=workdir / "keys", source=source,
                                    policies=policies, zones=zones))
    ksk = {}
    for origin in origins:
        at = ["-t", str(when)] if when is not None else []
        done = subprocess.run([kzonesign, "-c", str(config), "-o", str(out), *at, origin],
                              capture_output=True, text=True, timeout=60)
        signed = out / f"{origin}zone"
        if done.returncode != 0 or not signed.exists():
            raise RuntimeError(f"kzonesign {origin} failed:\n{done.stdout}{done.stderr}")
        ksk[origin] = _ksk(signed, origin)
    return SignedZones(out, ksk)


def _ksk(path: Path, origin: str) -> str:
    zone = dns.zone.from_file(str(path), origin, relativize=False, check_origin=False)
    keys = zone.find_rdataset(origin, dns.rdatatype.DNSKEY)
    return next(key.to_text() for key in keys if key.flags & 1)  # SEP bit: the KSK
