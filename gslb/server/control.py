"""The control channel: typed change messages from the supervisor to forked workers.

Zones are loaded once and inherited by fork; everything that changes *while* workers
serve (health verdicts, overrides, RTT figures, and configuration edits) travels as a
message over a pipe, one pipe per worker, written by the supervisor. Each worker reads
its pipe from its event loop and hands every message to `Server.apply(change)`, the one
entry point that builds the worker's next snapshot view and swaps it in. The supervisor
applies the same message to its own `Server` first, so a worker forked later (a
replacement, or a new generation after SIGHUP) starts from the same state. A single
process (`--workers 1`) calls `Server.apply` directly; no pipe.

Framing: a 4-byte big-endian length, then the pickled message. Pickle is safe here:
both ends are this program, the pipe is created before fork, nothing else can write it.
Writes are non-blocking with an outbox per worker, so a stuck worker can never stall
the supervisor (its backlog just grows until it reads or is replaced).

Adding a message kind:
1. define a frozen dataclass for it here (or in the module that owns the data; it must
   pickle: plain fields, no open handles), with a docstring saying who sends it;
2. handle it in `Server.apply` (gslb/server/run.py): build the new view off the current
   snapshot (`Snapshot.with_state`, or a method like it for your kind) and assign
   `self.snapshot` once;
3. send it from the supervisor with `Supervisor.broadcast(message)` (gslb/server/workers.py)
   or, in a single process, call `server.apply(message)`.
Messages should be idempotent and self-contained (a full view of their part of the state,
not an increment), so a replacement worker, or one that lagged, converges on the latest.
"""

from __future__ import annotations

import errno
import os
import pickle
import struct
from dataclasses import dataclass
from typing import Any

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
