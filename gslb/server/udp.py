"""DNS over UDP: one datagram in, at most one datagram out."""

from __future__ import annotations

import asyncio
import logging
from random import getrandbits  # the weighted-steering draw; the DNS core reads none
import socket
from time import perf_counter_ns
from typing import Callable

from gslb.dns.handler import Responder
from gslb.dns.wire import error_reply
from gslb.observability.taps import Taps
from gslb.snapshot import Snapshot

import dns.rcode

log = logging.getLogger("gslb.udp")


class UdpProtocol(asyncio.DatagramProtocol):
    """Answers each datagram as it arrives.

    Replies go out with the socket's own `sendto` when the socket takes them at once:
    profiling showed the event loop's `transport.sendto` costing more than answering
    the query. A full send buffer falls back to the transport, which queues."""

    def __init__(self, responder: Responder, snapshot: Callable[[], Snapshot],
                 sock: socket.socket | None = None, taps: Taps | None = None) -> None:
        self.responder = responder
        self.snapshot = snapshot
        self.sock = sock
        self.taps = taps or Taps()
        self.local: tuple = sock.getsockname() if sock is not None else ("", 0)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        taps = self.taps
        taps.seen += 1
        started = 0 if taps.seen & taps.mask else perf_counter_ns()  # see taps: sampled
        try:
            replies = self.responder.respond(self.snapshot(), data, False, addr[0], getrandbits(32))
        except Exception:
            log.exception("query from %s failed; answering SERVFAIL", addr[0])
            self.responder.last = None
            reply = error_reply(data, dns.rcode.SERVFAIL)
            replies = [reply] if reply else []
        for reply in replies:
            self._send(reply, addr)
        if started:
            taps.timed(started, self.responder.last, data, replies, addr, self.local, False)

    def _send(self, reply: bytes, addr: tuple) -> None:
        if self.sock is not None:
            try:
                self.sock.sendto(reply, addr)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                log.debug("udp send to %s failed: %s", addr[0], exc)
                return
        assert self.transport is not None
        self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp socket error: %s", exc)
