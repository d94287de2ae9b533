"""DNS over TCP (RFC 7766): length-prefixed messages, pipelining, timeouts, a cap.

Queries on one connection are answered in the order they arrive, as fast as they
arrive, so a client may pipeline. A zone transfer is sent one message per turn of the
event loop, and only as fast as the client reads, so a big AXFR neither stalls other
clients nor piles up in memory; queries behind it on the same connection wait their turn. When the connection cap is reached, the connection
that has been quiet longest is closed to make room (idle ones, with no half-read
message, go first), so idle or slow clients cannot starve new ones.

Two clocks bound a connection. The idle timeout closes one that sends nothing; the
message timeout closes one that takes too long to send a whole message once it has
started one, so a client cannot hold a connection (and a slot under the cap) forever by
dribbling a byte just before each idle timeout (Knot DNS bounds this with its
`tcp-io-timeout`).
"""

from __future__ import annotations

import asyncio
import logging
from random import getrandbits  # the weighted-steering draw; the DNS core reads none
import struct
import time
from time import perf_counter_ns
from typing import Callable, Iterator

import dns.rcode

from gslb.dns.handler import Responder
from gslb.dns.wire import error_reply
from gslb.observability.taps import Taps
from gslb.snapshot import Snapshot

log = logging.getLogger("gslb.tcp")
LENGTH = struct.Struct("!H")
FIRST_QUERY_WAIT = 0.5  # how long a stopping server waits for a new connection's query


class ConnectionPool:
    """The open TCP connections of one server, for the cap and eviction."""

    def __init__(self, limit: int, idle_timeout: float, message_timeout: float,
                 taps: Taps | None = None) -> None:
        self.limit = limit
        self.idle_timeout = idle_timeout
        self.message_timeout = message_timeout
        self.connections: set[TcpConnection] = set()
        self.taps = taps or Taps()
        self.accepted = 0  # connections ever admitted (a metric)
        self.evicted = 0  # closed to make room under the cap (a metric)

    def admit(self, conn: "TcpConnection") -> None:
        while len(self.connections) >= self.limit:
            victim = min(self.connections, key=lambda c: (c.busy(), c.last_active))
            log.debug("tcp connection cap %d reached: closing %s", self.limit, victim.peer)
            victim.close()
            self.evicted += 1
        self.connections.add(conn)
        self.accepted += 1

    async def settle(self, grace: float) -> None:
        """Wait, up to `grace` seconds, until no connection has a message or transfer in
        flight or was accepted so recently that its first query may still be coming.

        A stopping worker (its listen socket already handed over) calls this before it
        closes what is left, so a client whose connection it accepted an instant before
        gets its answer rather than a reset; an idle connection that has had its answers
        may be closed at once (RFC 7766 section 6.2.3: clients must expect that)."""
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            now = time.monotonic()
            if not any(conn.busy() or (not conn.answered and now - conn.opened < FIRST_QUERY_WAIT)
                       for conn in self.connections):
                return
            await asyncio.sleep(0.01)


class TcpConnection(asyncio.Protocol):
    def __init__(
        self, responder: Responder, snapshot: Callable[[], Snapshot], pool: ConnectionPool
    ) -> None:
        self.responder = responder
        self.snapshot = snapshot
        self.pool = pool
        self.buffer = bytearray()
        self.last_active = self.opened = time.monotonic()
        self.answered = 0  # messages answered (a stopping server spares fresh connections)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.peer_address: tuple = ("?", 0)
        self.local: tuple = ("", 0)
        self.timer: asyncio.TimerHandle | None = None
        self.message_timer: asyncio.TimerHandle | None = None  # a message half received
        self.stream: Iterator[bytes] | None = None  # a transfer being sent
        self.sent_from_stream = 0
        self.paused = False  # the client is not reading: stop writing
        self.pump_scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "?"
        self.peer_address = peer or ("?", 0)
        self.local = transport.get_extra_info("sockname") or ("", 0)
        self.pool.admit(self)
        self._arm_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        self._stop_message_timer()
        self.stream = None
        self.buffer.clear()

    def busy(self) -> bool:
        """A half-read message or a transfer in flight: not a candidate for eviction."""
        return bool(self.buffer) or self.stream is not None

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        self.buffer += data
        self._process()

    def _process(self) -> None:
        """Answer every complete message in the buffer, unless a transfer is being sent."""
        while self.stream is None and len(self.buffer) >= 2:
            if self.transport is None or self.transport.is_closing():
                return
            (length,) = LENGTH.unpack_from(self.buffer)
            if len(self.buffer) < 2 + length:
                break
            message = bytes(self.buffer[2 : 2 + length])
            del self.buffer[: 2 + length]
            self._stop_message_timer()  # that one is in; the next one gets its own time
            self._answer(message)
        if self._partial() and self.message_timer is None:
            self.message_timer = asyncio.get_running_loop().call_later(
                self.pool.message_timeout, self._message_too_slow)

    def _partial(self) -> bool:
        """The buffer ends in a message not fully received yet (not merely one waiting
        behind a transfer)."""
        buffer = self.buffer
        return bool(buffer) and (len(buffer) < 2 or len(buffer) < 2 + LENGTH.unpack_from(buffer)[0])

    def _stop_message_timer(self) -> None:
        if self.message_timer is not None:
            self.message_timer.cancel()
            self.message_timer = None

    def _message_too_slow(self) -> None:
        """The message timeout ran out with a message still incomplete: close, unless we
        stopped reading (the client is not reading our replies), which is not its delay."""
        self.message_timer = None
        if self.paused and self._partial():
            self.message_timer = asyncio.get_running_loop().call_later(
                self.pool.message_timeout, self._message_too_slow)
            return
        if self._partial():
            log.debug("closing tcp connection from %s: no whole message within %.1f s",
                      self.peer, self.pool.message_timeout)
            self.close()

    def _answer(self, message: bytes) -> None:
        self.answered += 1
        taps = self.pool.taps
        taps.seen += 1
        started = 0 if taps.seen & taps.mask else perf_counter_ns()  # see taps: sampled
        try:
            replies = self.responder.respond_stream(self.snapshot(), message, True, self.peer,
                                                     getrandbits(32))
        except Exception:
            log.exception("tcp query from %s failed; answering SERVFAIL", self.peer)
            self.responder.last = None
            reply = error_reply(message, dns.rcode.SERVFAIL)
            replies = [reply] if reply else []
        assert self.transport is not None
        if isinstance(replies, list):
            if not replies and len(message) < 12:
                self.close()  # RFC 7766 section 8: garbage framing, nothing sensible to say
                return
            self.transport.writelines([LENGTH.pack(len(r)) + r for r in replies])
            if started and not self.responder.probe:  # /ready's query is not traffic
                taps.timed(started, self.responder.last, message, replies, self.peer_address,
                           self.local, True, self.responder.cookie)
            return
        self.stream = iter(replies)
        self.sent_from_stream = 0
        self._pump(message)

    def _pump(self, message: bytes | None = None) -> None:
        """Send the next message of the transfer, then yield to the event loop."""
        self.pump_scheduled = False
        if self.stream is None or self.transport is None or self.transport.is_closing():
            return
        if self.paused:
            return  # resume_writing schedules the next step
        try:
            reply = next(self.stream, None)
        except Exception:
            log.exception("zone transfer to %s failed", self.peer)
            self.stream = None
            if self.sent_from_stream == 0 and message is not None:
                failed = error_reply(message, dns.rcode.SERVFAIL)
                if failed:
                    self.transport.write(LENGTH.pack(len(failed)) + failed)
                    self._process()
                    return
            self.close()  # half a transfer cannot be finished any other way
            return
        if reply is None:
            self.stream = None
            self._process()
            return
        self.transport.write(LENGTH.pack(len(reply)) + reply)
        self.sent_from_stream += 1
        self.last_active = time.monotonic()
        self._schedule_pump()

    def _schedule_pump(self) -> None:
        if not self.pump_scheduled and not self.paused:
            self.pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def pause_writing(self) -> None:
        # The client is not reading its answers: stop reading its questions, and stop
        # rendering transfer messages it would not read either.
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            if self.stream is not None:
                self._schedule_pump()
            else:
                self._process()

    def _arm_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.pool.idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        idle_for = time.monotonic() - self.last_active
        if idle_for >= self.pool.idle_timeout:
            log.debug("closing idle tcp connection from %s", self.peer)
            self.close()
        else:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.pool.idle_timeout - idle_for, self._check_idle)

    def close(self) -> None:
        self.pool.connections.discard(self)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
