"""Start a real `nsd` on an ephemeral loopback port, serving a folder of zone files.

Everything NSD writes (pid file, database, xfrd state, control socket) goes into a
temporary directory; zone files are only read. It runs in the foreground (`-d`) as the
current user, with one server process, and is stopped by its PID: SIGTERM, then SIGKILL.
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


class NsdProcess(ManagedProcess):
    """One `nsd` serving `zones/<origin>.zone` for each origin given."""

    def __init__(self, zones_dir: Path, origins: list[str], workdir: Path,
                 transfer_from: str = "127.0.0.1") -> None:
        self.zones_dir = zones_dir
        self.transfer_from = transfer_from  # the one address allowed AXFR and IXFR
        self.origins = origins
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "nsd.out"

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

    def start(self, timeout: float = 15.0) -> "NsdProcess":
        assert NSD is not None
        config = self.write_config()
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([NSD, "-d", "-c", str(config)], stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nsd exited with {self.proc.returncode}:\n{self.log()}")
            if all(self._answers_soa(origin) for origin in self.origins):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nsd did not become ready:\n{self.log()}")

    def log(self) -> str:
        text = super().log()
        try:
            return text + (self.workdir / "run" / "nsd.log").read_text()
        except OSError:
            return text

    def _answers_soa(self, origin: str) -> bool:
        try:
            reply = dns.query.udp(dns.message.make_query(origin, "SOA"), self.host,
                                  port=self.port, timeout=0.3)
        except Exception:
            return False
        return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)
