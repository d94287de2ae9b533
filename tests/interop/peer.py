"""A peer DNS server the interop tests start (Knot DNS, NSD): its own temporary folder,
an ephemeral loopback port, ready once it answers SOA for every zone, stopped by PID."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from tests.servers import ManagedProcess, free_port


class PeerProcess(ManagedProcess):
    """One peer serving `zones/<origin>.zone` for each origin given; subclasses write the
    configuration and say how to run the program."""

    program = "peer"

    def __init__(self, zones_dir: Path, origins: list[str], workdir: Path,
                 transfer_from: str = "127.0.0.1") -> None:
        self.zones_dir = zones_dir
        self.origins = origins
        self.workdir = workdir
        self.transfer_from = transfer_from  # the one address allowed AXFR and IXFR
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / f"{self.program}.out"

    def write_config(self) -> Path:
        raise NotImplementedError

    def command(self, config: Path) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 15.0, every_zone: bool = True) -> "PeerProcess":
        """Ready once it serves every zone; without `every_zone`, once each zone is
        served or the peer said it refused it (`refused`)."""
        config = self.write_config()
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.command(config), stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.program} exited with {self.proc.returncode}:\n{self.log()}")
            if all(self.serves(origin) or (not every_zone and self.refused(origin))
                   for origin in self.origins):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.program} did not become ready:\n{self.log()}")

    def refused(self, origin: str) -> bool:
        """Whether the peer said it will not serve the zone (its log)."""
        return False

    def serves(self, origin: str) -> bool:
        try:
            reply = dns.query.udp(dns.message.make_query(origin, "SOA"), self.host,
                                  port=self.port, timeout=0.3)
        except Exception:
            return False
        return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)
