"""dnstap: each sampled query and its response, as AUTH_QUERY and AUTH_RESPONSE messages
(protocol buffers, dnstap.proto) in a Frame Streams connection to a collector, the way
Knot, BIND, Unbound and CoreDNS emit them.

The query path only appends a tuple to a bounded queue (`offer`); a thread of the
process encodes the messages and writes them. When the collector is slow, gone or not
there yet, the queue fills and further pairs are dropped and counted: answers never
wait for the collector. The thread reconnects with a back-off.

Frame Streams (fstrm) bidirectional handshake, as unix-socket and TCP collectors such as
`fstrm_capture` expect: the writer sends READY with the content type
`protobuf:dnstap.Dnstap`, the reader answers ACCEPT, the writer sends START, then data
frames (a 32-bit big-endian length and the payload); at the end STOP, answered by FINISH.
"""

from __future__ import annotations

import collections
import logging
import socket
import struct
import threading
import time

import dns.name

log = logging.getLogger("gslb.dnstap")
CONTENT_TYPE = b"protobuf:dnstap.Dnstap"
ACCEPT, START, STOP, READY, FINISH = 1, 2, 3, 4, 5
FIELD_CONTENT_TYPE = 1
AUTH_QUERY, AUTH_RESPONSE = 1, 2  # dnstap Message.Type
INET, INET6 = 1, 2  # SocketFamily
UDP, TCP = 1, 2  # SocketProtocol
DNSTAP_MESSAGE = 1  # Dnstap.Type
IDLE_SLEEP = 0.01  # how long the writer naps when the queue is empty
IO_TIMEOUT = 2.0  # connect, handshake and each write
BACKOFF_MAX = 5.0
U32 = struct.Struct("!I")


# -- protocol buffers, by hand: three wire types are all dnstap needs ------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _field_fixed32(number: int, value: int) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<I", value)


def _address(host: str) -> tuple[int, bytes]:
    host = host.split("%", 1)[0]
    try:
        return INET, socket.inet_pton(socket.AF_INET, host)
    except OSError:
        return INET6, socket.inet_pton(socket.AF_INET6, host)


def encode_message(kind: int, query: bytes, response: bytes | None, peer: tuple,
                   local: tuple, tcp: bool, query_ns: int, response_ns: int,
                   zone: bytes = b"") -> bytes:
    """One dnstap `Message` (AUTH_QUERY: the query; AUTH_RESPONSE: the response, with
    the query's time too); `zone` is the wire name of the zone that answered, if any."""
    family, query_address = _address(peer[0])
    _, response_address = _address(local[0]) if local[0] else (family, b"")
    body = (_field_varint(1, kind) + _field_varint(2, family) + _field_varint(3, TCP if tcp else UDP)
            + _field_bytes(4, query_address)
            + (_field_bytes(5, response_address) if response_address else b"")
            + _field_varint(6, peer[1]) + _field_varint(7, local[1])
            + _field_varint(8, query_ns // 1_000_000_000)
            + _field_fixed32(9, query_ns % 1_000_000_000))
    if kind == AUTH_QUERY:
        body += _field_bytes(10, query)
    if zone:
        body += _field_bytes(11, zone)
    if kind == AUTH_QUERY:
        return body
    assert response is not None
    return (body + _field_varint(12, response_ns // 1_000_000_000)
            + _field_fixed32(13, response_ns % 1_000_000_000) + _field_bytes(14, response))


def encode_dnstap(identity: bytes, version: bytes, message: bytes) -> bytes:
    """The `Dnstap` envelope around one Message."""
    return (_field_bytes(1, identity) + _field_bytes(2, version) + _field_bytes(14, message)
            + _field_varint(15, DNSTAP_MESSAGE))


# -- Frame Streams -----------------------------------------------------------------------

def control_frame(kind: int, content_type: bytes | None = CONTENT_TYPE) -> bytes:
    body = U32.pack(kind)
    if content_type is not None:
        body += U32.pack(FIELD_CONTENT_TYPE) + U32.pack(len(content_type)) + content_type
    return U32.pack(0) + U32.pack(len(body)) + body


def data_frame(payload: bytes) -> bytes:
    return U32.pack(len(payload)) + payload


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("collector closed the connection")
        data += chunk
    return data


def read_control(sock: socket.socket) -> int:
    """Read one control frame; its type."""
    escape, length = struct.unpack("!II", _read_exact(sock, 8))
    if escape != 0 or not 4 <= length <= 512:
        raise ConnectionError("collector sent no control frame")
    return U32.unpack(_read_exact(sock, length)[:4])[0]


def connect(target: str) -> socket.socket:
    """`unix:PATH` or `tcp:HOST:PORT`, handshake done (READY, ACCEPT, START)."""
    if target.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: str | tuple[str, int] = target[5:]
    else:
        host, _, port = target[4:].rpartition(":")
        host = host.strip("[]")
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_STREAM)
        address = (host, int(port))
    sock.settimeout(IO_TIMEOUT)
    try:
        sock.connect(address)
        sock.sendall(control_frame(READY))
        if read_control(sock) != ACCEPT:
            raise ConnectionError("collector did not accept protobuf:dnstap.Dnstap")
        sock.sendall(control_frame(START))
    except (OSError, struct.error):
        sock.close()
        raise
    return sock


class Dnstap:
    """The feed of one process: `offer` on the query path, a writer thread behind it."""

    def __init__(self, target: str, identity: str, version: str, every: int = 1,
                 queue_size: int = 10_000) -> None:
        self.target = target
        self.identity = identity.encode()
        self.version = version.encode()
        self.every = max(1, every)
        self.queue_size = queue_size
        self.queue: collections.deque = collections.deque()
        self.seen = 0
        self.sent = 0  # frames written to the collector
        # Frames dropped, counted apart by each thread so no increment is lost.
        self.dropped_full = 0  # the queue was full (collector slow or gone)
        self.dropped_send = 0  # the connection broke while they were being written
        self.reconnects = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="dnstap", daemon=True)

    def start(self) -> "Dnstap":
        self.thread.start()
        return self

    def offer(self, query: bytes, response: bytes, peer: tuple, local: tuple, tcp: bool,
              elapsed_ns: int, zone: str = "") -> None:
        """One answered query (the caller's thread): queued, or dropped when full."""
        self.seen += 1
        if self.seen % self.every:
            return
        if len(self.queue) >= self.queue_size:
            self.dropped_full += 2
            return
        self.queue.append((query, response, peer, local, tcp, time.time_ns(), elapsed_ns, zone))

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.dropped_send

    def close(self, timeout: float = 1.0) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _frames(self, item: tuple) -> bytes:
        query, response, peer, local, tcp, response_ns, elapsed_ns, zone = item
        query_ns = response_ns - elapsed_ns
        zone_wire = (dns.name.from_text(zone).to_wire() or b"") if zone else b""
        frames = b""
        for kind in (AUTH_QUERY, AUTH_RESPONSE):
            message = encode_message(kind, query, response, peer, local, tcp, query_ns,
                                     response_ns, zone_wire)
            frames += data_frame(encode_dnstap(self.identity, self.version, message))
        return frames

    def _run(self) -> None:
        backoff = 0.1
        while not self.stopping.is_set():
            try:
                sock = connect(self.target)
            except (OSError, ValueError) as exc:
                log.debug("dnstap collector %s: %s", self.target, exc)
                self.stopping.wait(backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)
                continue
            self.reconnects += 1
            log.info("dnstap: connected to %s", self.target)
            backoff = 0.1
            try:
                self._pump(sock)
            except OSError as exc:
                log.warning("dnstap collector %s: %s; reconnecting", self.target, exc)
            finally:
                sock.close()

    def _pump(self, sock: socket.socket) -> None:
        """Write queued pairs until told to stop (what is queued then still goes), then
        STOP and wait for FINISH."""
        while True:
            if not self.queue:
                if self.stopping.is_set():
                    break
                time.sleep(IDLE_SLEEP)
                continue
            batch: list[tuple] = []
            while self.queue and len(batch) < 256:
                batch.append(self.queue.popleft())
            frames = b"".join(self._frames(item) for item in batch)
            try:
                sock.sendall(frames)
            except OSError:
                self.dropped_send += 2 * len(batch)
                raise
            self.sent += 2 * len(batch)
        sock.sendall(control_frame(STOP, None))
        try:
            read_control(sock)  # FINISH, if the collector says it in time
        except (OSError, struct.error):
            pass
