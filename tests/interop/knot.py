"""Start a real `knotd` on an ephemeral loopback port, serving a folder of zone files.

Everything Knot writes (rundir, control socket, timer and journal databases) goes into a
temporary directory; zone files are only read (`zonefile-sync: -1`, no journal). The
process is stopped by its PID: SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from tests.servers import ManagedProcess, free_port

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


class KnotProcess(ManagedProcess):
    """One `knotd` serving `zones/<origin>.zone` for each origin given."""

    def __init__(self, zones_dir: Path, origins: list[str], workdir: Path,
                 transfer_from: str = "127.0.0.1") -> None:
        self.zones_dir = zones_dir
        self.transfer_from = transfer_from  # the one address allowed AXFR and IXFR
        self.origins = origins
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "knotd.log"

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

    def start(self, timeout: float = 15.0) -> "KnotProcess":
        assert KNOTD is not None
        config = self.write_config()
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([KNOTD, "-c", str(config)], stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"knotd exited with {self.proc.returncode}:\n{self.log()}")
            if all(self._answers_soa(origin) for origin in self.origins):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"knotd did not become ready:\n{self.log()}")

    def _answers_soa(self, origin: str) -> bool:
        try:
            reply = dns.query.udp(dns.message.make_query(origin, "SOA"), self.host,
                                  port=self.port, timeout=0.3)
        except Exception:
            return False
        return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)

