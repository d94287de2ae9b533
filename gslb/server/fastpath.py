"""The native fast path's Python side: load the C extension, fill its answer table.

`gslb.server._fastpath` (gslb/server/native/*.c, built by `pip install .`) holds a
table of rendered responses and a recvmmsg/sendmmsg socket loop that answers from it
without entering Python. This module decides whether it is there (`available`, logged
once when it is not), builds a snapshot's table (the served zones' names, for the
per-anchor walk) and turns the answer cache's entries into table entries: the answer
cache hands every UDP entry it stores to a `TableStore` instead of its own dicts.

The key format is a contract with `write_key` in native/answer.c: the lowercase wire
name, then `KEY_TAIL` (qtype, the size limit, the server's payload or 0, DO, NSID,
ECS family, ECS source or -1, anchored, and a reserved byte).
"""

from __future__ import annotations

import logging
import struct
from types import ModuleType
from typing import Any, Iterable

from gslb.dns.answers import Entry
from gslb.dns.handler import TCP_LIMIT, Options

log = logging.getLogger("gslb.fastpath")

KEY_TAIL = struct.Struct("!HHHBBBhBB")
NAME_EXISTS, NAME_CUT, NAME_DNAME = 1, 2, 4
PLAIN_VARIANT = 6  # (limit, payload, do, nsid, ecs family, ecs source): not steered

_module: ModuleType | None = None
_failure: str | None = None
_probed = False


def native() -> ModuleType | None:
    """The extension module, or None (the reason logged once) when it cannot load."""
    global _module, _failure, _probed
    if not _probed:
        _probed = True
        try:
            from gslb.server import _fastpath  # type: ignore[attr-defined]
            _module = _fastpath
        except ImportError as exc:
            _failure = str(exc)
            log.warning("native fast path unavailable (%s); UDP runs in the Python loop",
                        exc)
    return _module


def available() -> bool:
    return native() is not None


class TableStore:
    """The answer cache's `native` store: UDP entries with a plain variant go to the
    C table; TCP and steered entries stay in the cache's dicts."""

    __slots__ = ("table",)

    def __init__(self, table: Any) -> None:
        self.table = table

    def store(self, key: tuple, entry: Entry) -> bool:
        variant = key[2]
        if len(variant) != PLAIN_VARIANT or variant[0] == TCP_LIMIT:
            return False
        self.table.put(key[0] + key_tail(key[1], variant, len(key) == 4), entry.flags,
                       entry.body, entry.pointers, entry.anchor_offset, entry.ecs_length)
        return True


def key_tail(qtype: int, variant: tuple, anchored: bool) -> bytes:
    limit, payload, do, nsid, family, source = variant
    return KEY_TAIL.pack(qtype, limit, payload, do, nsid is not None, family, source,
                         anchored, 0)


def build_table(zones: Iterable[Any], options: Options, capacity: int) -> Any:
    """A fresh table for these zones: their origins and names, no answers yet."""
    module = native()
    assert module is not None
    table = module.Table(capacity, options.max_udp_payload, options.nsid is not None)
    for zone in zones:
        index = table.add_zone(zone.origin_wire)
        table.add_names(index, zone.records.keys(), NAME_EXISTS)
        table.add_names(index, zone.ents, NAME_EXISTS)
        table.add_names(index, zone.cuts, NAME_CUT)
        table.add_names(index, zone.dnames, NAME_DNAME)
    return table


def attach(snapshot: Any, options: Options) -> Any:
    """Give a snapshot's answer cache a native table (before anything is rendered into
    it, so every UDP entry lands there); the table, for the socket loops."""
    answers = snapshot.answers
    table = build_table(snapshot.zones, options, answers.capacity)
    answers.native = TableStore(table)
    return table
