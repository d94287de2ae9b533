"""Response rate limiting for the UDP loops: the limiter a node uses and its log lines.

The native loop checks every reply with the C `Limiter` (gslb/server/native/rrl.c),
whose buckets are mapped shared: made once in the process that forks the workers, it
is one table for all of them. The Python loop uses `PythonLimiter`, the same rules
(gslb.dns.rrl) in the process's own memory. TCP is never limited.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from typing import Any, Callable

import dns.name

from gslb.dns.rrl import Buckets, RrlSettings
from gslb.server import fastpath

log = logging.getLogger("gslb.rrl")


def limited_logger(settings: RrlSettings) -> Callable[[bytes, str, bytes], None]:
    """The log line for a network whose replies are being limited (called at most once
    a window per bucket and a few times a second in all: see gslb.dns.rrl)."""
    fate = (f"dropped, one in {settings.slip} sent truncated" if settings.slip > 1
            else "sent truncated" if settings.slip else "dropped")

    def limited(network: bytes, cls: str, name: bytes) -> None:
        prefix = settings.ipv4_prefix if len(network) == 4 else settings.ipv6_prefix
        try:
            text = dns.name.from_wire(name, 0)[0].to_text()
        except Exception:
            text = "?"
        log.warning("rrl: limiting replies to %s/%d (class %s, %s): over %d a second; %s",
                    ipaddress.ip_address(network), prefix, cls, text, settings.rate, fate)
    return limited


class PythonLimiter:
    """The Python loop's limiter: `check` and `counts` as the C Limiter has them."""

    def __init__(self, settings: RrlSettings) -> None:
        self.buckets = Buckets(settings, limited_logger(settings))

    def check(self, reply: bytes, host: str, now_ms: int | None = None) -> tuple[str, bytes | None]:
        host = host.split("%", 1)[0]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        now = time.monotonic_ns() // 1_000_000 if now_ms is None else now_ms
        return self.buckets.check(reply, socket.inet_pton(family, host), now)

    def counts(self) -> dict[tuple[str, str], int]:
        return dict(self.buckets.counts)


def make_limiter(settings: RrlSettings, native: bool) -> Any:
    """The limiter for a node's UDP loops: the C one for the native loop, else the
    Python one; None when RRL is off (rate 0), so nothing is checked at all."""
    if settings.rate <= 0:
        return None
    if not native:
        return PythonLimiter(settings)
    module = fastpath.native()
    assert module is not None
    exempt = [(network.network_address.packed, network.prefixlen) for network in settings.exempt]
    return module.Limiter(settings.rate, settings.slip, settings.window, settings.ipv4_prefix,
                          settings.ipv6_prefix, exempt, limited_logger(settings))
