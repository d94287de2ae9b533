"""DNS over UDP: one thread per socket, answering datagrams in a blocking loop.

Two loops with the same behaviour:

- `NativeUdpLoop`: the C extension's recvmmsg/sendmmsg loop, which answers everything
  its table holds without entering Python and calls `UdpAnswerer` for the rest;
- `PythonUdpLoop`: the fallback when the extension is missing, a plain blocking
  `recvfrom`/`sendto` loop (no event loop: its per-datagram overhead cost more than
  answering the query).

Both run in their own thread beside the event loop that serves TCP and handles signals,
wait in the kernel with a receive timeout so `stop()` takes effect within a fraction of
a second, and count what they do; `counters()` sums every loop of this process.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from random import getrandbits  # the weighted-steering draw; the DNS core reads none
from time import perf_counter_ns
from typing import Any, Callable

import dns.rcode

from gslb.dns.handler import Options, Responder
from gslb.dns.tally import Label, Labels
from gslb.dns.wire import error_reply
from gslb.observability.taps import Taps
from gslb.server import fastpath
from gslb.server.rrl import PythonLimiter
from gslb.snapshot import Snapshot

log = logging.getLogger("gslb.udp")
RECV_TIMEOUT = struct.pack("ll", 0, 100_000)  # 0.1 s: how soon a stop is noticed
RECEIVE_BUFFER = 1 << 20  # 1 MiB: a smaller one drops queries under load
MEMO_ENTRIES = 100_000  # reusable replies remembered per Python loop (then forgotten at once)
COUNTERS = ("received", "answered", "anchored", "probes", "passed", "sent", "dropped",
            "send_errors", "batches")
_loops: list["UdpLoop"] = []
_loops_lock = threading.Lock()


def counters() -> dict[str, int]:
    """UDP counters summed over this process's loops, for metrics.

    received: datagrams read; answered: replies to client queries built in C from the
    table (anchored: of those, from a per-anchor entry); probes: replies to /ready's
    probes built there (gslb/server/probe.py); passed: datagrams handed to the Python
    responder (every datagram in the Python loop); sent; dropped (oversized);
    send_errors; batches (recvmmsg calls that returned datagrams; one per datagram in
    Python)."""
    total = dict.fromkeys(COUNTERS, 0)
    with _loops_lock:
        loops = list(_loops)
    for loop in loops:
        for name, value in loop.counters().items():
            total[name] += value
    return total


class UdpAnswerer:
    """The Python responder for one datagram, never raising: a failure answers SERVFAIL.

    One per loop: each has its own Responder (its `reusable` and `last` are per thread)
    sharing the process's query counts (`labels`). Every query it answers goes through
    the taps (sampled latency, the query log, dnstap)."""

    def __init__(self, options: Options, labels: Labels, snapshot: Callable[[], Snapshot],
                 taps: Taps, local: tuple) -> None:
        self.responder = Responder(options, labels)
        self.snapshot = snapshot
        self.taps = taps
        self.local = local

    def __call__(self, data: bytes, host: str, port: int = 0,
                 draw: int | None = None) -> list[bytes]:
        """`draw`: the weighted draw the native loop used for its table lookup (so the
        answer rendered now fills the very entry it missed); else a fresh one."""
        taps = self.taps
        taps.seen += 1
        started = 0 if taps.seen & taps.mask else perf_counter_ns()  # see taps: sampled
        try:
            if draw is None:
                draw = getrandbits(32)
            replies = self.responder.respond(self.snapshot(), data, False, host, draw)
        except Exception:
            log.exception("query from %s failed; answering SERVFAIL", host)
            self.responder.last = None
            reply = error_reply(data, dns.rcode.SERVFAIL)
            replies = [reply] if reply else []
        if started and not self.responder.probe:  # /ready's own query is not traffic
            taps.timed(started, self.responder.last, data, replies, (host, port), self.local,
                       False, self.responder.cookie)
        return replies

    @property
    def rrl_exempt(self) -> bool:
        """The last query is spared by RRL: the node's own probe, or a valid server
        cookie (read by the native loop after a miss, by the Python loop after each)."""
        return self.responder.probe or self.responder.cookie_valid


class UdpLoop:
    """A loop over one bound UDP socket, in its own thread.

    `shared`: the socket is the supervisor's, open in the worker that replaces this one
    (gslb/server/workers.py). Stopping then only stops reading: what is queued stays for
    the next reader, and nothing may change the socket for the others (no shutdown, no
    change of its blocking mode, which all of them share)."""

    kind = ""
    STOP_WAIT = 2.0  # seconds stop() waits for the thread before it returns

    def __init__(self, sock: socket.socket, answer: UdpAnswerer, shared: bool = False) -> None:
        self.sock = sock
        self.answer = answer
        self.shared = shared
        self.thread = threading.Thread(target=self._run, name=f"udp-{self.kind}", daemon=True)
        self.error: BaseException | None = None
        self._closing = threading.Lock()  # stop() and the thread's end: one closes
        self._finished = self._close_pending = False
        sock.setblocking(True)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, RECV_TIMEOUT)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        except OSError:
            pass

    def start(self) -> None:
        with _loops_lock:
            _loops.append(self)
        self.thread.start()

    def stop(self) -> None:
        """Ask the loop to end, wake it, wait for it, close the socket (this process's
        descriptor of it, when shared).

        Shutting an own socket's receive side wakes a receive in progress at once; a
        shared socket's loop notices within the receive timeout. A thread still running
        after STOP_WAIT (stuck in a slow answer) closes the socket itself when it ends:
        a descriptor closed under a running loop could be reused by a new socket."""
        self._request_stop()
        if not self.shared:
            try:
                self.sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        self.thread.join(timeout=self.STOP_WAIT)
        with _loops_lock:
            if self in _loops:
                _loops.remove(self)
        with self._closing:
            if self._finished or not self.thread.is_alive():
                self.sock.close()
                return
            self._close_pending = True
        log.warning("udp loop (%s) still running %.1f s after stop; its socket closes when "
                    "it ends", self.kind, self.STOP_WAIT)

    def _run(self) -> None:
        try:
            self.serve()
        except BaseException as exc:  # a loop that dies must say so, not vanish
            self.error = exc
            log.exception("udp loop (%s) stopped", self.kind)
        finally:
            with self._closing:
                self._finished = True
                if self._close_pending:
                    self.sock.close()

    def serve(self) -> None:
        raise NotImplementedError

    def _request_stop(self) -> None:
        raise NotImplementedError

    def counters(self) -> dict[str, int]:
        raise NotImplementedError

    def set_table(self, table: Any) -> None:
        """A new snapshot's native table (None when it has none)."""


class NativeUdpLoop(UdpLoop):
    kind = "native"

    def __init__(self, sock: socket.socket, answer: UdpAnswerer, table: Any,
                 shared: bool = False, limiter: Any = None) -> None:
        super().__init__(sock, answer, shared)
        module = fastpath.native()
        assert module is not None
        self.loop = module.Loop(sock.fileno(), table, answer)
        self.loop.latency_mask = answer.taps.mask
        self.loop.limiter = limiter  # the C Limiter (gslb/server/rrl.py), or None: RRL off

    def serve(self) -> None:
        self.loop.run()

    def _request_stop(self) -> None:
        self.loop.stop()

    def counters(self) -> dict[str, int]:
        return dict(self.loop.counters())

    def set_table(self, table: Any) -> None:
        self.loop.table = table  # one reference swap, between two batches
        self.loop.latency_mask = self.answer.taps.mask


class PythonUdpLoop(UdpLoop):
    kind = "python"

    def __init__(self, sock: socket.socket, answer: UdpAnswerer, shared: bool = False,
                 limiter: PythonLimiter | None = None) -> None:
        super().__init__(sock, answer, shared)
        self.limiter = limiter  # None: RRL off
        self.stopping = False
        self.received = self.sent = self.send_errors = 0

    def serve(self) -> None:
        """Receive, answer, send. Replies the responder marks reusable (cache hits for
        names steering does not cover) are remembered by the datagram's bytes after the
        ID, per snapshot, so a repeated query costs a dict lookup, one concatenation and
        its count; not while the query log or dnstap wants every query. With RRL on,
        every reply passes the limiter (the same rules as the native loop's)."""
        recvfrom = self.sock.recvfrom
        send = self._send if self.limiter is None else self._send_limited
        answer = self.answer
        responder = answer.responder
        current = answer.snapshot
        taps = answer.taps
        memo: dict[bytes, tuple[bytes, Label | None]] = {}
        memo_for = None
        while not self.stopping:
            try:
                data, addr = recvfrom(65535)
            except (BlockingIOError, InterruptedError):  # the receive timeout
                continue
            except OSError as exc:
                if self.stopping or self.sock.fileno() < 0:
                    return
                log.debug("udp receive failed: %s", exc)
                continue
            if addr is None:  # an empty read: stop() shut the receive side
                return
            self.received += 1
            snapshot = current()
            if snapshot is not memo_for:
                memo, memo_for = {}, snapshot
            known = memo.get(data[2:])
            if known is not None and not taps.active:
                taps.seen += 1
                started = 0 if taps.seen & taps.mask else perf_counter_ns()  # sampled
                tail, label = known
                if label is not None:
                    label.hits += 1
                reply = data[:2] + tail
                send(reply, addr)
                if started:
                    taps.timed(started, label, data, [reply], addr, answer.local, False)
                continue
            replies = answer(data, addr[0], addr[1])
            if responder.reusable and len(replies) == 1:
                if len(memo) >= MEMO_ENTRIES:
                    memo.clear()
                memo[data[2:]] = (replies[0][2:], responder.last)
            spared = answer.rrl_exempt  # the node's probe, a valid cookie: never limited
            for reply in replies:
                (self._send if spared else send)(reply, addr)

    def _send_limited(self, reply: bytes, addr: tuple) -> None:
        assert self.limiter is not None
        verdict, sent = self.limiter.check(reply, addr[0])
        if sent is not None:
            self._send(sent, addr)

    def _send(self, reply: bytes, addr: tuple) -> None:
        try:
            self.sock.sendto(reply, addr)
            self.sent += 1
        except OSError as exc:
            self.send_errors += 1
            log.debug("udp send to %s failed: %s", addr[0], exc)

    def _request_stop(self) -> None:
        self.stopping = True

    def counters(self) -> dict[str, int]:
        return {"received": self.received, "answered": 0, "anchored": 0, "probes": 0,
                "passed": self.received, "sent": self.sent, "dropped": 0,
                "send_errors": self.send_errors, "batches": self.received}
