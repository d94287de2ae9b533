"""The embedded configuration store: the zones folder is the configuration of record.

Layout, beside the zone files it edits:

    zones/.gslb/versions/00000012.json   one immutable file per version (changes, author, time)
    zones/.gslb/head                     the number of the last committed version
    zones/.gslb/written                  the last version the zone and steering files hold
    zones/.gslb/lock                     flock(2): one writer at a time, across processes

A commit, under the lock: the version file, then `head` (from here on the version is
accepted: the running nodes apply it from the version file, in memory), then the zone
and steering files it changes, then `written`. Rewriting a large zone file takes a while;
the answers do not wait for it. Each file is replaced atomically (temp file, fsync,
rename, fsync of the folder). A crash before `head` moves leaves a version nobody saw
(ignored, and overwritten by the next commit); a crash after it leaves `written` behind
`head`: on the next start `recover` writes those versions' files again (changes are
settings, so writing twice is harmless), so an accepted version is never lost.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import dns.name

from gslb.config.changes import RRSET, STEERED, STEERING, ZONE, Change, Version, oldest_kept
from gslb.config.live import LiveConfig, steering_after
from gslb.config.rrsets import FieldProblem, Invalid
from gslb.config.zonetext import ZoneTextError, record_lines, replace_rrset, replace_serial

STATE_DIR = ".gslb"
log = logging.getLogger("gslb.config")


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace `path` so a reader (or a crash) sees the old file or the new, never half;
    the new file has `mode` from its first byte."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w",
              encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), mode)  # whatever the umask
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _fsync_dir(path.parent)


def remove_durably(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore:
    def __init__(self, zones_dir: Path) -> None:
        self.zones_dir = zones_dir
        self.root = zones_dir / STATE_DIR
        self.versions_dir = self.root / "versions"

    def _ensure(self) -> None:
        self.versions_dir.mkdir(parents=True, exist_ok=True)

    def head(self) -> int:
        try:
            return int((self.root / "head").read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def version(self, number: int) -> Version | None:
        try:
            return Version.from_json(json.loads(self._path(number).read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None

    def versions_after(self, number: int) -> list[Version]:
        """Every complete version after `number`, in order."""
        return [v for n in range(number + 1, self.head() + 1) if (v := self.version(n)) is not None]

    def _path(self, number: int) -> Path:
        return self.versions_dir / f"{number:08d}.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        self._ensure()
        with open(self.root / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def written(self) -> int:
        """The version the zone and steering files hold (`head` before this marker existed)."""
        try:
            return int((self.root / "written").read_text().strip() or 0)
        except FileNotFoundError:
            return self.head()

    def commit(self, before: LiveConfig, after: LiveConfig, changes: list[Change], author: str,
               message: str) -> Version:
        """Accept a version (the caller holds the lock, and `before` is at `head`); the
        files follow with `write_files`."""
        version = Version(self.head() + 1, author, time.time(), message, tuple(changes))
        self._ensure()
        write_atomic(self._path(version.number), json.dumps(version.to_json()))
        write_atomic(self.root / "head", str(version.number))
        number = oldest_kept(version.number) - 1  # the history is bounded: drop the oldest
        while number > 0 and self._path(number).exists():
            self._path(number).unlink()
            number -= 1
        return version

    def write_files(self, before: LiveConfig, after: LiveConfig, version: Version) -> None:
        """The zone and steering files of an accepted version (the configuration
        before it and after it)."""
        write_files(before, after, version.changes)
        write_atomic(self.root / "written", str(version.number))

    def recover(self, live: LiveConfig) -> bool:
        """Write the files of accepted versions a crash left unwritten (`live` holds the
        files as they are); True when it wrote any."""
        pending = self.versions_after(self.written())
        if not pending:
            return False
        after = live
        for version in pending:
            after = after.apply(version.changes, version.number)
        write_files(live, after, [c for version in pending for c in version.changes])
        write_atomic(self.root / "written", str(pending[-1].number))
        return True


def write_files(before: LiveConfig, after: LiveConfig, changes: Sequence[Change]) -> None:
    """Bring the zone and steering files in line with `changes` (idempotent), which
    took the configuration from `before` to `after`."""
    def where(origin: dns.name.Name) -> LiveConfig:  # a zone's files are where they were
        return before if origin in before.zones else after

    texts: dict[Path, str | None] = {}
    for change in changes:
        origin = dns.name.from_text(change.zone)
        if change.kind == ZONE:
            texts[where(origin).zone_path(origin)] = change.after
        elif change.kind == RRSET:
            path = where(origin).zone_path(origin)
            if path not in texts:
                texts[path] = path.read_text(encoding="utf-8")
            texts[path] = edit_zone_text(texts[path], origin, change)

    def read(path: Path) -> str | None:
        return path.read_text(encoding="utf-8") if path.exists() else None

    for origin, text in steering_texts(before, after, changes,
                                       lambda o: read(where(o).steering_path(o))).items():
        texts[where(origin).steering_path(origin)] = text
    for path, text in texts.items():
        if text is None:
            remove_durably(path)
        else:
            write_atomic(path, text)


def steering_texts(before: LiveConfig, after: LiveConfig, changes: Sequence[Change],
                   stored: Callable[[dns.name.Name], str | None]) -> dict[dns.name.Name, str | None]:
    """The steering text to store for each zone whose steering `changes` change: the
    text `after` holds when the store held what `before` did; else (a file edited by
    hand and not reloaded yet) the changes written into what the store holds, so the
    edit is kept, as in zone files."""
    texts = {}
    for zone in dict.fromkeys(c.zone for c in changes if c.kind in (STEERING, STEERED)):
        origin = dns.name.from_text(zone)
        current = stored(origin)
        texts[origin] = after.steering_text.get(origin)
        if current != before.steering_text.get(origin):
            try:
                texts[origin] = steering_after(current, origin, [c for c in changes if c.zone == zone
                                                                 and c.kind in (STEERING, STEERED)])
            except Invalid:
                log.warning("the steering of %s was edited by hand into something that cannot "
                            "be edited; it now reads as this node serves it", zone)
    return texts


def edit_zone_text(text: str | None, origin: dns.name.Name, change: Change) -> str:
    """The zone file's text with one RRset change written into it."""
    if text is None:
        raise Invalid([FieldProblem("zone", f"zone {origin} has no file")], 409)
    owner = dns.name.from_text(change.name)
    after = change.after
    try:
        if change.rtype == "SOA" and change.before and after:
            old, new = change.before["rdata"][0].split(), after["rdata"][0].split()
            if old[:2] + old[3:] == new[:2] + new[3:] and change.before["ttl"] == after["ttl"]:
                edited = replace_serial(text, origin, int(old[2]), int(new[2]))
                if edited is not None:
                    return edited
        lines = record_lines(owner, change.rtype, after["ttl"], after["rdata"]) if after else []
        return replace_rrset(text, origin, owner, change.rtype, lines)
    except ZoneTextError as exc:
        raise Invalid([FieldProblem("zone", str(exc))], 409) from None
