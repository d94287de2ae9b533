"""Start a real `knotd` on an ephemeral loopback port, serving a folder of zone files.

Everything Knot writes (rundir, control socket, timer and journal databases) goes into a
temporary directory; zone files are only read (`zonefile-sync: -1`, no journal). The
process is stopped by its PID: SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from tests.interop.peer import PeerProcess

KNOTD = shutil.which("knotd") or ("/usr/sbin/knotd" if os.path.exists("/usr/sbin/knotd") else None)

CONFIG = """\
server:
    rundir: "{run}"
    listen: 127.0.0.1@{port}
    udp-max-payload: 1232

log:
  - target: stderr
    any: warning

database:
    storage: "{db}"

control:
    listen: "{run}/knot.sock"

acl:
  - id: transfer
    address: {transfer_from}
    action: transfer

template:
  - id: default
    storage: "{zones}"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
    acl: transfer

zone:
{zone_list}
"""


class KnotProcess(PeerProcess):
    """One `knotd` serving `zones/<origin>.zone` for each origin given."""

    program = "knotd"

    def write_config(self) -> Path:
        run, db = self.workdir / "run", self.workdir / "db"
        run.mkdir(parents=True, exist_ok=True)
        db.mkdir(parents=True, exist_ok=True)
        zone_list = "\n".join(f"  - domain: {origin}" for origin in self.origins)
        path = self.workdir / "knot.conf"
        path.write_text(CONFIG.format(run=run, db=db, port=self.port,
                                      zones=self.zones_dir, zone_list=zone_list,
                                      transfer_from=self.transfer_from))
        return path

    def command(self, config: Path) -> list[str]:
        assert KNOTD is not None
        return [KNOTD, "-c", str(config)]

    def refused(self, origin: str) -> bool:
        return f"[{origin.lower()}] zone event 'load' failed" in self.log().lower()

    def refusal(self, origin: str) -> str:
        """What Knot logged about the zone, without its generic closing lines."""
        generic = ("zone event 'load' failed", "failed to parse zone file",
                   "zone loader, failed to load zone")
        said = [re.sub(r"file '[^']*', ", "", line.split("] ", 1)[-1])
                for line in self.log().splitlines()
                if f"[{origin.lower()}]" in line.lower() and not any(g in line for g in generic)]
        return "; ".join(dict.fromkeys(said))
