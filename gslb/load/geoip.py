"""MaxMind databases (GeoIP2/GeoLite2 City, Country, ASN): the edge that reads them.

`GeoDatabases(paths)` opens each file (given with `--geoip`), `locate(address)` answers
one address with the fields of every database merged, and `table()` walks every network
of every database into the pure `GeoTable` that the steering rule maps are built from
(`gslb.steering.geo`). Both go through one record-to-Location conversion, so a table
entry and `locate` agree.

Records are read raw with `maxminddb` (the reader under `geoip2`; iterating a Reader
needs maxminddb >= 2.5). The fields used are the documented GeoIP2 ones:
`continent.code`, `country.iso_code`, `subdivisions[0].iso_code` (the largest
subdivision: a US state, a French region), `location.latitude/longitude`, and
`autonomous_system_number`. The database type in the metadata says which kind a file is.

`reload_if_changed()` re-opens a file whose mtime, size or inode changed; a file that
fails to open leaves the previous reader serving (the failure is kept in `problems`).
Replace database files atomically (write elsewhere, then rename, as geoipupdate does):
the readers memory-map the file, so rewriting it in place changes what the old reader
sees.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import maxminddb

from gslb.steering.geo import UNKNOWN, GeoTable, merge_locations
from gslb.steering.model import IPNetwork, Location

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


@dataclass(frozen=True)
class _Signature:
    mtime_ns: int
    size: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> _Signature:
        st = path.stat()
        return cls(st.st_mtime_ns, st.st_size, st.st_ino)


class _Database:
    """One open file: its reader, what it is, and the file state it was opened from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.signature = _Signature.of(path)
        try:
            self.reader = maxminddb.open_database(str(path))
            self.type: str = self.reader.metadata().database_type
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoIPError(f"{path}: cannot open as a MaxMind database: {exc}") from exc

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

    def networks(self) -> Iterator[tuple[IPNetwork, Location]]:
        """Every network with a record (IPv4 ones as IPv4 networks, aliases skipped)."""
        for network, record in self.reader:
            yield network, location_from_record(record, self.type)


class GeoDatabases:
    """The MaxMind databases given with `--geoip`, City/Country ones first, then ASN."""

    def __init__(self, paths: Iterable[Path | str]) -> None:
        self.paths = [Path(p) for p in paths]
        self.problems: dict[Path, str] = {}  # the last failed reload per file
        self.generation = 0  # +1 on every reload that changed a reader
        self._dbs = [self._open(path) for path in self.paths]
        self._table: tuple[int, GeoTable] | None = None  # (generation, table)

    @staticmethod
    def _open(path: Path) -> _Database:
        try:
            return _Database(path)
        except FileNotFoundError as exc:
            raise GeoIPError(f"{path}: no such file") from exc

    def _ordered(self) -> list[_Database]:
        return sorted(self._dbs, key=lambda db: db.is_asn)  # stable: given order otherwise

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
        """Every network of every database, combined (see `GeoTable.combine`).

        Built once per generation of the readers: a real City database has millions of
        networks, and a reload that did not change a file must not walk them again."""
        if self._table is None or self._table[0] != self.generation:
            tables = [GeoTable(db.networks()) for db in self._ordered()]
            self._table = (self.generation, GeoTable.combine(*tables) if tables else GeoTable())
        return self._table[1]

    def networks(self) -> Iterator[tuple[IPNetwork, Location]]:
        """Every (network, Location) of the combined databases, in address order per family."""
        return iter(self.table())

    def reload_if_changed(self) -> bool:
        """Re-open the files whose mtime, size or inode changed; True if a reader changed.

        A file that is missing or fails to open keeps its previous reader; the failure is
        logged once per file state and kept in `problems`."""
        changed = False
        for i, db in enumerate(self._dbs):
            try:
                signature = _Signature.of(db.path)
            except OSError as exc:
                self._failed(db.path, f"{db.path}: cannot stat: {exc.strerror or exc}")
                continue
            if signature == db.signature:
                continue
            try:
                self._dbs[i] = _Database(db.path)
            except (GeoIPError, OSError) as exc:
                db.signature = signature  # do not retry until the file changes again
                self._failed(db.path, str(exc))
                continue
            self.problems.pop(db.path, None)
            changed = True
        if changed:
            self.generation += 1
        return changed

    def _failed(self, path: Path, message: str) -> None:
        if self.problems.get(path) != message:
            log.warning("geoip reload failed, keeping the previous database: %s", message)
        self.problems[path] = message


def open_databases(paths: Iterable[Path | str]) -> GeoDatabases | None:
    """`GeoDatabases` for the given paths, or None when there are none."""
    paths = list(paths)
    return GeoDatabases(paths) if paths else None


__all__ = ["GeoDatabases", "GeoIPError", "location_from_record", "open_databases"]
