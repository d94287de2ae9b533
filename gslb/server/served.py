"""Which configuration version each worker serves, in memory every process of a node shares.

The supervisor makes the table before it forks anything; each worker writes its slot
when it starts serving and after every configuration version it applies. That is how a
write through `gslb serve --api` answers only once every worker serves it (read your
writes: a resolver asking any worker right after the 200 gets the new answer), and how
the heartbeat reports the version the whole node serves. A slot without a worker holds
VACANT, which no wait counts.
"""

from __future__ import annotations

import mmap
import struct
import time

VACANT = -1
SLOT = struct.Struct("=q")  # one aligned 8-byte word: written and read whole
POLL_SECONDS = 0.002


class ServedTable:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.memory = mmap.mmap(-1, SLOT.size * max(1, slots))  # anonymous, shared on fork
        for slot in range(slots):
            self.set(slot, VACANT)

    def set(self, slot: int, version: int) -> None:
        if not 0 <= slot < self.slots:  # a negative offset would write another's slot
            raise IndexError(f"served-version slot {slot} of {self.slots}")
        SLOT.pack_into(self.memory, slot * SLOT.size, version)

    def get(self, slot: int) -> int:
        return int(SLOT.unpack_from(self.memory, slot * SLOT.size)[0])

    def versions(self) -> list[int]:
        return [self.get(slot) for slot in range(self.slots)]

    def lagging(self, version: int) -> list[int]:
        """The slots whose worker serves an older version than `version`."""
        return [slot for slot, served in enumerate(self.versions()) if VACANT < served < version]

    def minimum(self) -> int:
        """The version every worker serves (0 while none serves)."""
        serving = [served for served in self.versions() if served != VACANT]
        return min(serving) if serving else 0

    def wait(self, version: int, timeout: float) -> list[int]:
        """Block until every worker serves `version` (or later), at most `timeout`
        seconds; the slots still behind (empty: all serve it)."""
        deadline = time.monotonic() + timeout
        while True:
            behind = self.lagging(version)
            if not behind or time.monotonic() >= deadline:
                return behind
            time.sleep(POLL_SECONDS)
