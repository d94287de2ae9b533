"""Query counts kept where a query can bump them cheapest: in the label of its answer.

Every answer the responder gives is counted under a `Label`: (zone, qtype, rcode, tcp,
steering), steering being one (owner, type, pool, values) tuple per decision. Labels are
interned per value, so there are as few as there are distinct values, and the answer
cache stores the label with each entry: a cache hit bumps one attribute of an object it
already holds, with no key to build or hash. The metrics layer reads every label of the
table (`Labels.snapshot`) now and then; nothing is ever reset, so readings only grow.
"""

from __future__ import annotations


class Label:
    __slots__ = ("key", "hits", "misses", "uncached")

    def __init__(self, key: tuple) -> None:
        self.key = key  # (zone, qtype, rcode, tcp, steering)
        self.hits = 0  # answered from the answer cache
        self.misses = 0  # resolved and rendered (then cached, or not cacheable)
        self.uncached = 0  # never looked up in the cache: errors, CH, transfers


UNLABELLED = Label(("none", 0, 0, False, ()))  # entries stored without a label (tests)


class Labels:
    """The intern table of one process (shared by a prewarming responder, whose cache
    entries must carry the same label objects that traffic counts in)."""

    def __init__(self) -> None:
        self.table: dict[tuple, Label] = {}

    def get(self, key: tuple) -> Label:
        label = self.table.get(key)
        if label is None:
            label = self.table.setdefault(key, Label(key))
        return label

    def snapshot(self) -> dict[tuple, int]:
        """{(key, cache): count} with cache True (hit), False (miss) or None (not looked
        up); zero counts left out. Safe while another thread adds labels."""
        counts: dict[tuple, int] = {}
        for label in list(self.table.values()):
            for cache, count in ((True, label.hits), (False, label.misses),
                                 (None, label.uncached)):
                if count:
                    counts[(label.key, cache)] = count
        return counts
