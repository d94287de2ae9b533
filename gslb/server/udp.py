"""DNS over UDP: one datagram in, at most one datagram out."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from gslb.dns.handler import Responder
from gslb.dns.wire import error_reply
from gslb.snapshot import Snapshot

import dns.rcode

log = logging.getLogger("gslb.udp")


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, responder: Responder, snapshot: Callable[[], Snapshot]) -> None:
        self.responder = responder
        self.snapshot = snapshot
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        try:
            replies = self.responder.respond(self.snapshot(), data, False, addr[0])
        except Exception:
            log.exception("query from %s failed; answering SERVFAIL", addr[0])
            reply = error_reply(data, dns.rcode.SERVFAIL)
            replies = [reply] if reply else []
        assert self.transport is not None
        for reply in replies:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp socket error: %s", exc)
