"""Zone files other DNS projects wrote, for the differential test against Knot DNS.

The files are not kept in this repository: each entry of `corpus/manifest.txt` names a
file inside a source that is read where it is published (see `corpus/README.md`):

- `dnspython`: the sdist of dnspython on PyPI, pinned by version and SHA-256, which
  `make test` downloads with pip into `.venv/zone-corpus/`. A member is a file of the
  archive (`tests/example`), or `file.py#name` for a zone the test module holds as a string
  (read with `ast`, never run).
- `nsd`: NSD's test packages (`tpkg/`), read from a checkout of NSD's repository named by
  the environment variable GSLB_NSD_SOURCE; without it these entries are not run.

Each entry has the origin its server configuration gives it (the file name of the copy
both servers load is `<origin>.zone`), as Knot and NSD take a zone's name from their
configuration, and a verdict decided once: `serve`, or why the entry is left out (what
Knot said when it refused the file, or why it was not tried). `python -m
tests.interop.zone_corpus` runs Knot on every entry and prints the verdicts it gives.
"""

from __future__ import annotations

import ast
import hashlib
import os
import random
import re
import select
import socket
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import dns.message
import dns.name
import dns.query
import dns.rdatatype

from tests.interop.compare import Query, message_for

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "corpus" / "manifest.txt"
ROOT = HERE.parent.parent
CACHE = Path(os.environ.get("GSLB_ZONE_CORPUS_CACHE", ROOT / ".venv" / "zone-corpus"))

DNSPYTHON_SDIST = "dnspython-2.7.0.tar.gz"
DNSPYTHON_SHA256 = "ce9c432eda0dc91cf618a5cedf1a4e142651196bbcd2c80e89ed5a907e5cfaf1"
NSD_ENV = "GSLB_NSD_SOURCE"
SERVE = "serve"
NOT_TRIED = "not tried:"  # a verdict that Knot did not give


class SourceMissing(Exception):
    """A source of the corpus is not on this machine."""


@dataclass(frozen=True)
class Entry:
    source: str  # dnspython | nsd
    member: str  # where in the source: a path, or path#name
    origin: str  # absolute, from the configuration
    verdict: str  # SERVE, or why it is not served

    @property
    def served(self) -> bool:
        return self.verdict == SERVE

    @property
    def label(self) -> str:
        return f"{self.source}:{self.member} as {self.origin}"


def read_manifest(path: Path = MANIFEST) -> list[Entry]:
    """`source member origin verdict...` per line; `#` starts a comment."""
    entries = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if raw.lstrip().startswith("#") else raw.strip()
        if not line:
            continue
        fields = line.split(None, 3)
        if len(fields) < 4:
            raise ValueError(f"{path}:{number}: expected 'source member origin verdict'")
        entries.append(Entry(*fields))
    return entries


# --- reading the sources ----------------------------------------------------------------


def dnspython_sdist() -> Path:
    path = CACHE / DNSPYTHON_SDIST
    if not path.exists():
        raise SourceMissing(f"{path} is missing: `make {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}` downloads it with pip")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != DNSPYTHON_SHA256:
        raise SourceMissing(f"{path} has SHA-256 {digest}, not the pinned {DNSPYTHON_SHA256}")
    return path


def nsd_source() -> Path:
    value = os.environ.get(NSD_ENV)
    if not value:
        raise SourceMissing(f"{NSD_ENV} (a checkout of NSD's repository) is not set")
    path = Path(value)
    if not (path / "tpkg").is_dir():
        raise SourceMissing(f"{NSD_ENV}={value} has no tpkg/ folder")
    return path


def read_member(entry: Entry) -> bytes:
    """The zone file's bytes."""
    if entry.source == "dnspython":
        path, _, name = entry.member.partition("#")
        with tarfile.open(dnspython_sdist()) as archive:
            member = archive.extractfile(f"{DNSPYTHON_SDIST[:-len('.tar.gz')]}/{path}")
            assert member is not None
            data = member.read()
        return string_constant(data.decode(), name).encode() if name else data
    if entry.source == "nsd":
        return (nsd_source() / entry.member).read_bytes()
    raise ValueError(f"unknown corpus source {entry.source!r}")


def string_constant(module_text: str, name: str) -> str:
    """The string a Python module assigns to `name` (anywhere in it), directly or through
    `textwrap.dedent(...)`; the module is parsed, never run."""
    for node in ast.walk(ast.parse(module_text)):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
            dedent = isinstance(value, ast.Call) and ast.unparse(value.func) == "textwrap.dedent"
            if dedent:
                value = value.args[0]  # type: ignore[union-attr]
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                import textwrap

                return textwrap.dedent(value.value) if dedent else value.value
    raise KeyError(f"no string assigned to {name}")


INCLUDE = re.compile(rb"^\$INCLUDE\s+\"?([^\s\";]+)", re.IGNORECASE | re.MULTILINE)


def write_batch(entries: list[Entry], directory: Path) -> None:
    """`<origin>.zone` for each entry (origins distinct), and the files they `$INCLUDE`
    (relative names, read from beside the member, written beside the copy)."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        data = read_member(entry)
        (directory / f"{entry.origin}zone").write_bytes(data)
        for included in INCLUDE.findall(data):
            name = included.decode()
            if entry.source == "nsd" and "/" not in name:
                source = nsd_source() / entry.member.rsplit("/", 1)[0] / name
                (directory / name).write_bytes(source.read_bytes())


def batches(entries: Iterable[Entry]) -> list[list[Entry]]:
    """Entries grouped so that no two in a group share an origin (one server serves one
    zone per name), as few groups as that allows."""
    groups: list[list[Entry]] = []
    for entry in entries:
        for group in groups:
            if all(other.origin != entry.origin for other in group):
                group.append(entry)
                break
        else:
            groups.append([entry])
    return groups


# --- the queries --------------------------------------------------------------------------

PROBE_TYPES = ["A", "TXT", "MX", "AAAA", "NS", "SOA", "TYPE65280"]


@dataclass
class Contents:
    """What a zone holds, as Knot transfers it: owner -> types present."""

    origin: dns.name.Name
    owners: dict[dns.name.Name, set[int]] = field(default_factory=dict)


def contents(host: str, port: int, origin: str) -> Contents:
    held = Contents(dns.name.from_text(origin))
    for message in dns.query.xfr(host, origin, port=port, relativize=False, lifetime=10):
        for rrset in message.answer:
            held.owners.setdefault(rrset.name, set()).add(rrset.rdtype)
    return held


def mixed_case(name: dns.name.Name, rng: random.Random) -> dns.name.Name:
    return dns.name.Name([bytes(c ^ 0x20 if chr(c).isalpha() and rng.random() < 0.5 else c
                                for c in label) for label in name.labels])


def _prefixed(label: bytes, name: dns.name.Name) -> dns.name.Name | None:
    try:
        return dns.name.Name([label, *name.labels])
    except dns.name.NameTooLong:
        return None


def _sibling(name: dns.name.Name) -> dns.name.Name | None:
    first = name.labels[0]
    try:
        return dns.name.Name([first[:55] + b"-nx", *name.labels[1:]])
    except dns.name.NameTooLong:
        return None


def queries_for(held: Contents, rng: random.Random) -> list[Query]:
    """Every owner with every type it has, a type it lacks, a missing child and a missing
    sibling, and the owner once more in mixed case; each with DO off and on (EDNS, UDP)."""
    queries = []
    for owner, types in held.owners.items():
        asked: list[tuple[dns.name.Name, str]] = [
            (owner, dns.rdatatype.to_text(t)) for t in sorted(types)]
        lacking = next(t for t in PROBE_TYPES if dns.rdatatype.from_text(t) not in types)
        asked.append((owner, lacking))
        child = _prefixed(b"nx-child", owner)
        if child is not None:
            asked.append((child, "A"))
        if owner != held.origin:
            sibling = _sibling(owner)
            if sibling is not None:
                asked.append((sibling, "A"))
        asked.append((mixed_case(owner, rng), dns.rdatatype.to_text(min(types))))
        for name, rdtype in asked:
            for dnssec_ok in (False, True):
                queries.append(Query(name.to_text(), rdtype, tcp=False, edns=True,
                                     dnssec_ok=dnssec_ok))
    return queries


# --- asking many at once ------------------------------------------------------------------


def exchange(host: str, port: int, queries: list[Query], window: int = 16,
             timeout: float = 1.0, tries: int = 3) -> list[dns.message.Message | None]:
    """Send the queries over one UDP socket in the order given, at most `window`
    unanswered at a time (so the server sees them in that order); each reply, or None
    when none came after `tries` sends."""
    wires = []
    for index, query in enumerate(queries):
        message = message_for(query)
        message.id = index % 65536
        wires.append(message.to_wire())
    replies: list[bytes | None] = [None] * len(wires)
    pending: dict[int, list] = {}  # id -> [index, sent at, sends]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        sock.setblocking(False)
        sent = 0
        while sent < len(wires) or pending:
            while sent < len(wires) and len(pending) < window:
                pending[sent % 65536] = [sent, time.monotonic(), 1]
                sock.send(wires[sent])
                sent += 1
            ready, _, _ = select.select([sock], [], [], 0.05)
            if ready:
                while True:
                    try:
                        data = sock.recv(65535)
                    except BlockingIOError:
                        break
                    key = int.from_bytes(data[:2], "big")
                    if key in pending:
                        replies[pending.pop(key)[0]] = data
            now = time.monotonic()
            for key, item in list(pending.items()):
                if now - item[1] > timeout:
                    if item[2] >= tries:
                        del pending[key]
                    else:
                        item[1], item[2] = now, item[2] + 1
                        sock.send(wires[item[0]])
    return [None if data is None else _parse(data) for data in replies]


def _parse(data: bytes) -> dns.message.Message:
    try:
        return dns.message.from_wire(data, ignore_trailing=True)
    except dns.exception.FormError:
        return dns.message.from_wire(data[:4] + bytes(8))


# --- deciding the verdicts ----------------------------------------------------------------


def knot_verdicts(entries: list[Entry], workdir: Path) -> dict[Entry, str]:
    """Run knotd on every entry (in batches) and say, per entry, `serve` or Knot's
    reason for refusing it (its log lines about the zone). When knotd dies on a batch,
    each of its entries is tried alone."""
    from tests.interop.knot import KnotProcess

    verdicts: dict[Entry, str] = {}
    groups = batches(entries)
    while groups:
        group = groups.pop(0)
        number = len(verdicts) + len(groups)
        directory = workdir / f"batch{number}"
        write_batch(group, directory)
        knot = KnotProcess(directory, [e.origin for e in group], workdir / f"knot{number}")
        knot.workdir.mkdir(parents=True, exist_ok=True)
        try:
            knot.start(every_zone=False)
        except RuntimeError:
            assert knot.proc is not None
            if len(group) > 1:
                groups.extend([entry] for entry in group)
            else:
                verdicts[group[0]] = f"knot refuses: knotd exits with {knot.proc.returncode} loading it"
            continue
        try:
            for entry in group:
                verdicts[entry] = (SERVE if knot.serves(entry.origin) else
                                   "knot refuses: " + brief(knot.refusal(entry.origin) or "no SOA"))
        finally:
            knot.stop()
    return verdicts


def brief(said: str, keep: int = 2) -> str:
    """Knot's first reasons; how many more there were."""
    reasons = said.split("; ")
    more = f" (and {len(reasons) - keep} more)" if len(reasons) > keep else ""
    return "; ".join(reasons[:keep]) + more


def main() -> int:
    import tempfile

    entries = read_manifest()
    available = []
    for entry in entries:
        if entry.verdict.startswith(NOT_TRIED):
            continue
        try:
            read_member(entry)
            available.append(entry)
        except SourceMissing as missing:
            print(f"# not tried: {entry.label}: {missing}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as workdir:
        verdicts = knot_verdicts(available, Path(workdir))
    for entry in entries:
        verdict = verdicts.get(entry, entry.verdict)
        print(f"{entry.source}\t{entry.member}\t{entry.origin}\t{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
