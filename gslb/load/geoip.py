"""MaxMind databases (GeoIP2/GeoLite2 City, Country, ASN): the edge that reads them.

`GeoDatabases(paths)` opens each file (given with `--geoip`), `locate(address)` answers
one address with the fields of every database merged (with `maxminddb`, the reader under
`geoip2`), and `table()` gives the `GeoTable` that the steering rule maps are built from
(`gslb.steering.geo`): the C walk of `gslb.steering._geomap` reads the files' search
trees directly, all databases at once, decoding each data record once. A City database
of millions of networks takes about a second, and the table holds runs of addresses,
not a Python object per network.

The fields used are the documented GeoIP2 ones: `continent.code`, `country.iso_code`,
`subdivisions[0].iso_code` (the largest subdivision: a US state, a French region),
`location.latitude/longitude` (`locate` only: for `closest`), and
`autonomous_system_number`. The database type in the metadata says which kind a file is.
The walk reads them as `location_from_record` does, and a file whose tree or data does
not hold together is a `GeoIPError` naming it.

`reload_if_changed()` re-opens a file whose mtime, size or inode changed; a file that
fails to open (or to walk, once a table was asked for) leaves the previous one serving
(the failure is kept in `problems`). Replace database files atomically (write elsewhere,
then rename, as geoipupdate does): the readers memory-map the file, so rewriting it in
place changes what the old reader sees.
"""

from __future__ import annotations

import ipaddress
import logging
import mmap
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gslb.steering import _geomap  # type: ignore[attr-defined]
from gslb.steering.engine import MAX_SCOPE
from gslb.steering.geo import UNKNOWN, GeoKeys, GeoTable, LocationMap, merge_locations
from gslb.steering.model import Location

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class GeoIPError(Exception):
    """A database file that cannot be used (missing, corrupt, not a MaxMind DB)."""


def location_from_record(record: Any, database: str | None) -> Location:
    """A GeoIP2 City/Country or ASN record (the raw dict) -> Location (no network)."""
    if not isinstance(record, dict):
        return Location(database=database)
    continent = record.get("continent") or {}
    country = record.get("country") or {}
    subdivisions = record.get("subdivisions") or [{}]
    location = record.get("location") or {}
    asn = record.get("autonomous_system_number")
    return Location(
        continent=continent.get("code"),
        country=country.get("iso_code"),
        subdivision=subdivisions[0].get("iso_code"),
        asn=int(asn) if asn is not None else None,
        latitude=location.get("latitude"),
        longitude=location.get("longitude"),
        database=database,
    )


METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"


@dataclass(frozen=True)
class _Signature:
    mtime_ns: int
    size: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> _Signature:
        return cls.of_stat(path.stat())

    @classmethod
    def of_stat(cls, st: os.stat_result) -> _Signature:
        return cls(st.st_mtime_ns, st.st_size, st.st_ino)


class _Database:
    """One open file: its reader, its bytes for the walk, what it is, and the file state
    it was opened from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        import maxminddb  # with multiprocessing and pickle: not for a node without --geoip

        for _ in range(3):  # the same file for both, should it be replaced meanwhile
            try:
                with open(path, "rb") as file:
                    self.signature = _Signature.of_stat(os.fstat(file.fileno()))
                    self.bytes = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
                self.reader = maxminddb.open_database(str(path))
                metadata = self.reader.metadata()
            except FileNotFoundError:
                raise
            except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
                raise GeoIPError(f"{path}: cannot open as a MaxMind database: {exc}") from exc
            if _Signature.of(path) == self.signature:
                break
            self.reader.close()
            self.bytes.close()
        else:
            raise GeoIPError(f"{path}: changed on every attempt to open it")
        self.type: str = metadata.database_type
        self.shape = (metadata.node_count, metadata.record_size, metadata.ip_version,
                      self.bytes.rfind(METADATA_MARKER))

    @property
    def is_asn(self) -> bool:
        return "ASN" in self.type

    def locate(self, address: IPAddress) -> tuple[Location, int]:
        """The record's Location and the prefix length of the tree node holding it (for a
        missing record too: absence holds on that network)."""
        if address.version == 6 and self.reader.metadata().ip_version == 4:
            return Location(), 0
        record, prefix = self.reader.get_with_prefix_len(address)
        return location_from_record(record, self.type) if record is not None else Location(), prefix

    def walked(self) -> None:
        """The walk read the whole file: its pages leave this process's memory (they stay
        in the page cache, and a later walk maps them back)."""
        self.bytes.madvise(mmap.MADV_DONTNEED)


def _walked(databases: list[_Database], *mode: object) -> tuple:
    """The C walk over these databases (`mode`: its location-mode arguments), its error
    named after the file at fault; their pages leave memory after, and so do its memos."""
    try:
        return _geomap.walk([(db.bytes, *db.shape) for db in databases], *mode)
    except ValueError as exc:
        index, message = exc.args if len(exc.args) == 2 else (-1, str(exc))
        raise GeoIPError(f"{databases[index].path}: {message}" if index >= 0 else message) from None
    finally:
        for db in databases:
            db.walked()
        _geomap.release_memory()  # the walk's memos, freed: back to the system


def walk(databases: list[_Database]) -> GeoTable:
    """The table of these databases (the first one's fields first), by the C walk."""
    v4, v4_keys, v6, v6_keys, (places, place, asn, mask) = _walked(databases)
    names = [db.type for db in databases]
    by_mask = ["+".join(name for i, name in enumerate(names) if bits >> i & 1) or None
               for bits in range(1 << len(names))]
    keys = GeoKeys(places, place, asn, mask, by_mask)
    return GeoTable.from_runs({4: (v4, v4_keys), 6: (v6, v6_keys)}, keys)


def walk_locations(databases: list[_Database]) -> LocationMap:
    """What `locate` says of every address (entries and network lengths), by the C walk
    in its location mode: the map `closest` and `latency` records are keyed by."""
    v4, v4_ids, v4_prefixes, v6, v6_ids, v6_prefixes, entries = _walked(
        databases, True, MAX_SCOPE[4], MAX_SCOPE[6])
    return LocationMap({4: (v4, v4_ids, v4_prefixes), 6: (v6, v6_ids, v6_prefixes)}, *entries)


@dataclass(frozen=True)
class SharedTable:
    """A table's runs in a memory file that the process which walked the databases (a
    supervisor) keeps open, for the other processes of the node (its workers) to map
    instead of walking the files again: `path` opens it (/proc/PID/fd/N), `sizes` are
    the byte lengths of its four arrays in order (IPv4 starts and keys, IPv6 starts and
    keys); `keys` are the `GeoKeys` arguments (small: one entry per distinct place and
    ASN)."""

    path: str
    sizes: tuple[int, int, int, int]
    keys: tuple[Any, ...]


def _arrays(table: GeoTable) -> list[Any]:
    return [part for version in (4, 6) for part in (table.runs(version).starts,
                                                    table.runs(version).raw)]


def share_table(table: GeoTable) -> tuple[int, SharedTable]:
    """The table's runs written to a new memory file: its descriptor (the caller keeps
    it open while others may map it) and how to map it."""
    fd = os.memfd_create("gslb-geoip", os.MFD_CLOEXEC)
    arrays = _arrays(table)
    with open(fd, "wb", closefd=False) as out:
        for array in arrays:
            out.write(array)
    keys = table.keys
    return fd, SharedTable(f"/proc/{os.getpid()}/fd/{fd}",
                           (len(arrays[0]), len(arrays[1]), len(arrays[2]), len(arrays[3])),
                           (keys.places, keys.place_raw, keys.asn_raw, keys.database.tobytes(),
                            keys.databases))


def mapped_table(shared: SharedTable) -> GeoTable:
    """The table of a `SharedTable`, its runs read in place from the mapped file (pages
    every process mapping it shares)."""
    with open(shared.path, "rb") as file:
        memory = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    if len(memory) != sum(shared.sizes):
        memory.close()
        raise ValueError(f"{shared.path}: {len(memory)} bytes, not {sum(shared.sizes)}")
    view, parts, at = memoryview(memory), [], 0
    for size in shared.sizes:
        parts.append(view[at:at + size])
        at += size
    return GeoTable.from_runs({4: (parts[0], parts[1]), 6: (parts[2], parts[3])},
                              GeoKeys(*shared.keys))


class GeoDatabases:
    """The MaxMind databases given with `--geoip`, City/Country ones first, then ASN."""

    def __init__(self, paths: Iterable[Path | str]) -> None:
        self.paths = [Path(p) for p in paths]
        self.problems: dict[Path, str] = {}  # the last failed reload per file
        self.generation = 0  # +1 on every reload that changed a reader
        self._dbs = [self._open(path) for path in self.paths]
        self._table: tuple[int, GeoTable] | None = None  # (generation, table)
        self._locations: tuple[int, LocationMap] | None = None
        self._lock = threading.RLock()  # a reload thread and the geo watcher both reload
        self.shared_fd: int | None = None  # the memory file of `share`'s last table

    @staticmethod
    def _open(path: Path) -> _Database:
        try:
            return _Database(path)
        except FileNotFoundError as exc:
            raise GeoIPError(f"{path}: no such file") from exc

    def _ordered(self) -> list[_Database]:
        return _by_kind(self._dbs)

    @property
    def types(self) -> list[str]:
        return [db.type for db in self._ordered()]

    def locate(self, address: IPAddress | str) -> Location:
        """What the databases say about one address; `network` is where all of them hold
        (the longest of their prefixes); `UNKNOWN` when none knows it."""
        address = ipaddress.ip_address(address) if isinstance(address, str) else address
        found = []
        prefix = 0
        for db in self._ordered():
            location, length = db.locate(address)
            prefix = max(prefix, length)
            if location != Location():
                found.append(location)
        if not found:
            return UNKNOWN
        network = ipaddress.ip_network(address).supernet(new_prefix=prefix)
        return replace(merge_locations(found), network=network)

    def table(self) -> GeoTable:
        """What the databases say of every address, from one walk of their search trees.

        Built once per generation of the readers: a reload that did not change a file
        must not walk them again."""
        with self._lock:
            if self._table is None or self._table[0] != self.generation:
                self._table = (self.generation, walk(self._ordered()))
            return self._table[1]

    def locations(self) -> LocationMap:
        """The location map of the databases (`walk_locations`), once per generation."""
        with self._lock:
            if self._locations is None or self._locations[0] != self.generation:
                self._locations = (self.generation, walk_locations(self._ordered()))
            return self._locations[1]

    def reload_if_changed(self) -> bool:
        """Re-open the files whose mtime, size or inode changed; True if a reader changed.

        A file that is missing or fails to open keeps its previous reader; so does one
        whose tree or data is broken, when the table is in use (it is walked here, so the
        rebuild that follows finds it ready). The failure is logged once per file state
        and kept in `problems`."""
        with self._lock:
            changed = False
            table = None
            for i, db in enumerate(self._dbs):
                try:
                    signature = _Signature.of(db.path)
                except OSError as exc:
                    self._failed(db.path, f"{db.path}: cannot stat: {exc.strerror or exc}")
                    continue
                if signature == db.signature:
                    continue
                # The walk below takes seconds for a City file: this line marks its start.
                log.info("geoip: %s changed on disk; reading it", db.path)
                try:
                    fresh = _Database(db.path)
                    if self._table is not None:
                        table = walk(_by_kind([*self._dbs[:i], fresh, *self._dbs[i + 1:]]))
                except (GeoIPError, OSError) as exc:
                    db.signature = signature  # do not retry until the file changes again
                    self._failed(db.path, str(exc))
                    continue
                self._dbs[i] = fresh
                self.problems.pop(db.path, None)
                changed = True
            if changed:
                self.generation += 1
                if table is not None:
                    self._table = (self.generation, table)
            return changed

    def share(self) -> SharedTable | None:
        """The current table for the node's other processes (`follow`), None when none
        was built (no rule needs one). This process then reads its table from the
        shared file too, so every process of the node holds one copy of it."""
        with self._lock:
            if self._table is None:
                return None
            fd, shared = share_table(self._table[1])
            self._table = (self._table[0], mapped_table(shared))
            if self.shared_fd is not None:  # a process that has not mapped it walks instead
                os.close(self.shared_fd)
            self.shared_fd = fd
            return shared

    def follow(self, shared: SharedTable) -> bool:
        """Another process of the node walked the changed files and `share`d its table:
        re-open those files here (their readers answer `locate`) and take that table,
        mapped, instead of walking them again. False, with nothing changed, when no file
        changed or the table cannot be mapped (`reload_if_changed` then walks here)."""
        with self._lock:
            try:
                table = mapped_table(shared)
            except (OSError, ValueError) as exc:
                log.warning("geoip: cannot map the table %s (%s); walking the files here",
                            shared.path, exc)
                return False
            changed = False
            for i, db in enumerate(self._dbs):
                try:
                    if _Signature.of(db.path) == db.signature:
                        continue
                    fresh = _Database(db.path)
                except (GeoIPError, OSError) as exc:
                    self._failed(db.path, str(exc))
                    continue
                log.info("geoip: %s changed on disk; its table walked by another process", db.path)
                self._dbs[i] = fresh
                self.problems.pop(db.path, None)
                changed = True
            if changed:
                self.generation += 1
                self._table = (self.generation, table)
            return changed

    def _failed(self, path: Path, message: str) -> None:
        if self.problems.get(path) != message:
            log.warning("geoip reload failed, keeping the previous database: %s", message)
        self.problems[path] = message


def _by_kind(databases: list[_Database]) -> list[_Database]:
    """City/Country databases first, then ASN (stable: given order otherwise)."""
    return sorted(databases, key=lambda db: db.is_asn)


def open_databases(paths: Iterable[Path | str]) -> GeoDatabases | None:
    """`GeoDatabases` for the given paths, or None when there are none."""
    paths = list(paths)
    return GeoDatabases(paths) if paths else None


__all__ = ["GeoDatabases", "GeoIPError", "SharedTable", "location_from_record", "mapped_table",
           "open_databases", "share_table"]
