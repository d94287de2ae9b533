"""The control channel: typed messages between the processes of one node, over pipes.

Zones are loaded once and inherited by fork; everything that changes *while* workers
serve travels as a message. Downward (supervisor -> worker, one pipe each): health
verdicts, overrides and RTT (`StateUpdate`), and configuration versions
(`ConfigVersions`), each first applied by the supervisor to its own `Server` so that a
worker forked later (a replacement, or a new generation after SIGHUP) starts current.
A replaced GeoIP database (`GeoChanged`) goes down the same way: each process maps
the table the supervisor walked and swaps in new rule maps. Upward (worker -> supervisor, one pipe
each): `LookNow` after a commit through the API, `Missed` when a worker sees a gap in
version numbers. Between the supervisor and the
state process, which is the node's one follower of the configuration and the state:
`StateUpdate`, `ConfigVersions` and `ConfigSource` up, `LookNow` and `SteeringTargets`
down. A single process (`--workers 1`) calls `Server.apply` directly; no pipe.

Framing: a 4-byte big-endian length, then the pickled message. Pickle is safe here:
both ends are this program, the pipe is created before fork, nothing else can write it.
Writes are non-blocking with an outbox per worker, so a stuck worker can never stall
the supervisor (its backlog just grows until it reads or is replaced).

Adding a message kind:
1. define a frozen dataclass for it here (it must pickle: plain fields, no open
   handles), with a docstring saying who sends it;
2. handle it where it arrives: `Server.apply` (gslb/server/node.py) for what changes a
   snapshot, `Supervisor.pump` (gslb/server/workers.py) for what the supervisor routes;
3. send it with `Supervisor.broadcast(message)` or the sender's `Outbox`.
Messages are idempotent: a state view is a full view, and a configuration version is
applied only once, in order, by its number.
"""

from __future__ import annotations

import errno
import os
import pickle
import struct
from dataclasses import dataclass, field
from typing import Any

from gslb.config.changes import Version
from gslb.config.follower import Source
from gslb.load.geoip import SharedTable
from gslb.state.store import StateView

HEADER = struct.Struct("!I")
MAX_MESSAGE = 256 * 1024 * 1024  # a sanity bound on the length prefix


@dataclass(frozen=True)
class StateUpdate:
    """Health, overrides and RTT: the full current view (from the state service)."""

    view: StateView


@dataclass(frozen=True)
class SteeringTargets:
    """Supervisor -> state process: the steered records changed (a reload), so the
    embedded checker probes what they name now. `records` maps (owner, type) to
    `SteeredRecord`."""

    records: dict


@dataclass(frozen=True)
class ConfigVersions:
    """Configuration versions in order, from the follower (state process) to the
    supervisor, and from the supervisor to every worker."""

    versions: tuple[Version, ...]
    # the steering texts they lead to and their records, made once by the supervisor
    # (gslb.config.live.parsed_steering): the workers need not make them again
    parsed: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigSource:
    """State process -> supervisor: load the configuration of record whole (Redis now
    holds one, or its numbering went back), for `reason`. Supervisor -> state process,
    once loaded: follow `source` from its version on."""

    reason: str
    source: Source | None = None


@dataclass(frozen=True)
class GeoChanged:
    """Supervisor -> every worker and the API process: a GeoIP database file changed
    (the supervisor walked it, and it opened fine): re-open it, take the supervisor's
    table of it (`table`, mapped from the memory file the supervisor keeps; None when no
    rule needs one) and rebuild the steering over it in place, keeping the zones and
    every cached answer."""

    table: SharedTable | None = None


@dataclass(frozen=True)
class LookNow:
    """Worker -> supervisor -> state process: a version was committed here (or versions
    after `after` are missing): read the store now instead of at the next interval."""

    after: int | None = None


@dataclass(frozen=True)
class Missed:
    """Worker -> supervisor: this worker serves `after` but was sent a later version;
    send what lies between."""

    after: int


def encode(message: Any) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


class Outbox:
    """The writing end of one channel: messages queue here and go out as the pipe
    takes them, never blocking (unless `blocking`, for a writer with nothing else to do)."""

    def __init__(self, fd: int, blocking: bool = False) -> None:
        self.fd = fd
        self.pending = bytearray()
        self.closed = False
        os.set_blocking(fd, blocking)

    def send(self, message: Any) -> None:
        if not self.closed:
            self.pending += encode(message)
            self.flush()

    def flush(self) -> None:
        """Write what the pipe accepts now; a reader that went away closes the outbox."""
        while self.pending and not self.closed:
            try:
                written = os.write(self.fd, self.pending)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.EBADF):
                    self.close()
                    return
                raise
            del self.pending[:written]

    @property
    def wants_write(self) -> bool:
        return bool(self.pending) and not self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pending.clear()
            try:
                os.close(self.fd)
            except OSError:
                pass


class Inbox:
    """The reading end: `receive` returns every complete message available now."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self.eof = False
        os.set_blocking(fd, False)

    def receive(self) -> list[Any]:
        while not self.eof:
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
                break
            self.buffer += chunk
        messages = []
        while len(self.buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self.buffer)
            if length > MAX_MESSAGE:
                raise ValueError(f"control message of {length} bytes: the channel is corrupt")
            if len(self.buffer) < HEADER.size + length:
                break
            payload = bytes(self.buffer[HEADER.size : HEADER.size + length])
            del self.buffer[: HEADER.size + length]
            messages.append(pickle.loads(payload))
        return messages

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def channel() -> tuple[Inbox, Outbox]:
    """A new pipe as (reading end, writing end); create it before fork, then each side
    closes the end it does not use."""
    read_fd, write_fd = os.pipe()
    return Inbox(read_fd), Outbox(write_fd)
