"""Start a real `nsd` on an ephemeral loopback port, serving a folder of zone files.

Everything NSD writes (pid file, database, xfrd state, control socket) goes into a
temporary directory; zone files are only read. It runs in the foreground (`-d`) as the
current user, with one server process, and is stopped by its PID: SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.interop.peer import PeerProcess

NSD = shutil.which("nsd") or ("/usr/sbin/nsd" if os.path.exists("/usr/sbin/nsd") else None)

CONFIG = """\
server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{zones}"
    pidfile: "{run}/nsd.pid"
    database: ""
    zonelistfile: "{run}/zone.list"
    xfrdfile: "{run}/xfrd.state"
    xfrdir: "{run}"
    logfile: "{run}/nsd.log"
    verbosity: 1
    ipv4-edns-size: 1232
    ipv6-edns-size: 1232
    tcp-timeout: 3

remote-control:
    control-enable: no

{zone_list}
"""


class NsdProcess(PeerProcess):
    """One `nsd` serving `zones/<origin>.zone` for each origin given."""

    program = "nsd"

    def write_config(self) -> Path:
        run = self.workdir / "run"
        run.mkdir(parents=True, exist_ok=True)
        zone_list = "\n".join(
            f"zone:\n    name: {o}\n    zonefile: {o}zone\n"
            f"    provide-xfr: {self.transfer_from} NOKEY" for o in self.origins)
        path = self.workdir / "nsd.conf"
        path.write_text(CONFIG.format(run=run, port=self.port, zones=self.zones_dir,
                                      zone_list=zone_list))
        return path

    def command(self, config: Path) -> list[str]:
        assert NSD is not None
        return [NSD, "-d", "-c", str(config)]

    def log(self) -> str:
        """Its output, then its log file (where NSD writes most of what it says)."""
        try:
            return super().log() + (self.workdir / "run" / "nsd.log").read_text()
        except OSError:
            return super().log()
