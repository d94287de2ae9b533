"""Zone files other DNS projects wrote, for the differential test against Knot DNS.

The files are not kept in this repository: each entry of `corpus/manifest.txt` names a
file inside a source that is read where it is published (see `corpus/README.md`):

- archives from package registries, listed with their pinned version and SHA-256 in
  `corpus/sources.tsv` and downloaded once by `make test` (tools/zone-corpus) into
  `.venv/zone-corpus/`: dnspython's sdist (PyPI) and the upstream tarballs of Debian's
  source packages of Knot DNS, Knot Resolver, PowerDNS, Unbound and BIND 9. A member is a
  path inside the archive's top folder (`tests/example`), or for dnspython `file.py#name`,
  a zone its test module holds as a string (read with `ast`, never run).
- `nsd`: NSD's test packages (`tpkg/`), read from a checkout of NSD's repository named by
  the environment variable GSLB_NSD_SOURCE; without it these entries are not run.

Each entry has the origin its server configuration gives it (the file name of the copy
both servers load is `<origin>.zone`), as Knot and NSD take a zone's name from their
configuration, and a verdict decided once: `serve`, or why the entry is left out (what
Knot said when it refused the file, or why it was not tried). `python -m
tests.interop.zone_corpus` runs Knot on every entry and prints the verdicts it gives;
with `--discover` it first adds the zone files each source's tests use (`discover`).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import random
import re
import select
import socket
import struct
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.xfr

from tests.interop.compare import Query, message_for, read_exactly

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "corpus" / "manifest.txt"
SOURCES = HERE / "corpus" / "sources.tsv"
ROOT = HERE.parent.parent
CACHE = Path(os.environ.get("GSLB_ZONE_CORPUS_CACHE", ROOT / ".venv" / "zone-corpus"))

NSD_ENV = "GSLB_NSD_SOURCE"
SERVE = "serve"
NOT_TRIED = "not tried:"  # a verdict that Knot did not give
LARGEST = 100_000  # bytes: larger files are not tried (the queries grow with the owners)


class SourceMissing(Exception):
    """A source of the corpus is not on this machine."""


@dataclass(frozen=True)
class Entry:
    source: str  # an archive of sources.tsv, or nsd
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


@dataclass(frozen=True)
class Archive:
    """A pinned archive of `corpus/sources.tsv`."""

    name: str
    registry: str  # pypi | debian
    package: str
    version: str
    file: str
    sha256: str

    @property
    def path(self) -> Path:
        return CACHE / self.file


def read_sources(path: Path = SOURCES) -> dict[str, Archive]:
    archives = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 6:
            raise ValueError(f"{path}:{number}: expected 6 tab-separated fields")
        archives[fields[0]] = Archive(*fields)
    return archives


ARCHIVES = read_sources()


@functools.lru_cache(maxsize=None)
def archive_files(name: str) -> dict[str, bytes]:
    """Every regular file of the archive up to 256 KB, by its path inside the archive's
    top folder; the archive is checked against its pinned SHA-256 first."""
    archive = ARCHIVES[name]
    if not archive.path.exists():
        raise SourceMissing(f"{archive.path} is missing: `make test` (tools/zone-corpus) "
                            f"downloads it from {archive.registry}")
    digest = hashlib.sha256(archive.path.read_bytes()).hexdigest()
    if digest != archive.sha256:
        raise SourceMissing(f"{archive.path} has SHA-256 {digest}, not the pinned {archive.sha256}")
    files = {}
    with tarfile.open(archive.path) as tar:
        for member in tar:
            if member.isfile() and member.size <= 256_000 and "/" in member.name:
                data = tar.extractfile(member)
                assert data is not None
                files[member.name.split("/", 1)[1]] = data.read()
    return files


def nsd_source() -> Path:
    value = os.environ.get(NSD_ENV)
    if not value:
        raise SourceMissing(f"{NSD_ENV} (a checkout of NSD's repository) is not set")
    path = Path(value)
    if not (path / "tpkg").is_dir():
        raise SourceMissing(f"{NSD_ENV}={value} has no tpkg/ folder")
    return path


def read_file(source: str, path: str) -> bytes:
    """A file of a source by its path there (KeyError or OSError when it has none)."""
    if source == "nsd":
        return (nsd_source() / path).read_bytes()
    if source not in ARCHIVES:
        raise ValueError(f"unknown corpus source {source!r}")
    return archive_files(source)[path]


def read_member(entry: Entry) -> bytes:
    """The zone file's bytes."""
    path, _, name = entry.member.partition("#")
    data = read_file(entry.source, path)
    return string_constant(data.decode(), name).encode() if name else data


# CPython 3.11's AST constructor is not safe in threads (gh-106905: "AST constructor
# recursion depth mismatch"), and the Knot side reads batches in a thread pool.
_PARSING = threading.Lock()


def string_constant(module_text: str, name: str) -> str:
    """The string a Python module assigns to `name` (anywhere in it), directly or through
    `textwrap.dedent(...)`; the module is parsed, never run."""
    with _PARSING:
        tree = ast.parse(module_text)
    for node in ast.walk(tree):
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


@functools.lru_cache(maxsize=None)
def includes(entry: Entry) -> dict[str, bytes]:
    """The files the entry `$INCLUDE`s by a relative name that stays beside it, read from
    beside the member: name -> bytes (a file the source lacks is left out: the server
    then refuses the zone, as its verdict says)."""
    found = {}
    folder = PurePosixPath(entry.member.partition("#")[0]).parent
    for included in INCLUDE.findall(read_member(entry)):
        name = included.decode(errors="replace")
        if name.startswith("/") or ".." in PurePosixPath(name).parts:
            continue
        try:
            found[name] = read_file(entry.source, str(folder / name))
        except (KeyError, OSError):
            continue
    return found


def write_batch(entries: list[Entry], directory: Path) -> None:
    """`<origin>.zone` for each entry (origins distinct), and the files they `$INCLUDE`
    (relative names, read from beside the member, written beside the copy)."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        (directory / f"{entry.origin}zone").write_bytes(read_member(entry))
        for name, data in includes(entry).items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(data)


def batches(entries: Iterable[Entry], most: int = 40) -> list[list[Entry]]:
    """Entries grouped so that no two in a group share an origin (one server serves one
    zone per name) or the name of a file they include, at most `most` in a group."""
    groups: list[tuple[list[Entry], set[str]]] = []
    for entry in entries:
        names = {f"{entry.origin}zone", *includes(entry)}
        for group, taken in groups:
            if len(group) < most and not names & taken:
                group.append(entry)
                taken |= names
                break
        else:
            groups.append(([entry], names))
    return [group for group, _ in groups]


def served_entries() -> tuple[list[Entry], list[str]]:
    """The entries to serve whose source is here, and why the others are not run. The
    registry archives must be here under CI=true (`make test` downloads them); NSD's
    files are run when given."""
    entries, missing = [], []
    for entry in read_manifest():
        if not entry.served:
            continue
        try:
            read_member(entry)
        except SourceMissing as why:
            if entry.source != "nsd" and os.environ.get("CI") == "true":
                raise
            missing.append(f"{entry.label}: {why}")
            continue
        entries.append(entry)
    return entries, missing


# --- the queries --------------------------------------------------------------------------

PROBE_TYPES = ["A", "TXT", "MX", "AAAA", "NS", "SOA", "TYPE65280"]


@dataclass
class Contents:
    """What a zone holds, as Knot transfers it: owner -> types present."""

    origin: dns.name.Name
    owners: dict[dns.name.Name, set[int]] = field(default_factory=dict)


def contents(host: str, port: int, origin: str) -> Contents:
    """Owners and types from an AXFR, read field by field: rdata is skipped, not parsed
    (dnspython rejects some on purpose odd rdata these files hold, such as a ZONEMD digest
    of the wrong length for its algorithm). TransferError when the server refuses."""
    held = Contents(dns.name.from_text(origin))
    query = dns.message.make_query(held.origin, dns.rdatatype.AXFR).to_wire()
    soas = 0
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(len(query).to_bytes(2, "big") + query)
        while soas < 2:
            wire = read_exactly(sock, int.from_bytes(read_exactly(sock, 2), "big"))
            if wire[3] & 0x0F:
                raise dns.xfr.TransferError(wire[3] & 0x0F)
            offset, questions, answers = 12, *struct.unpack("!HH", wire[4:8])
            for _ in range(questions):
                offset = dns.name.from_wire(wire, offset)[1] + offset + 4
            for _ in range(answers):
                owner, used = dns.name.from_wire(wire, offset)
                rdtype, _, _, length = struct.unpack("!HHIH", wire[offset + used:offset + used + 10])
                offset += used + 10 + length
                held.owners.setdefault(owner, set()).add(rdtype)
                soas += rdtype == dns.rdatatype.SOA
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


DNSSEC_TYPES = {dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.DNSKEY}


def queries_for(held: Contents, rng: random.Random, most: int = 100) -> list[Query]:
    """Every owner (at most `most` of them, the apex and a seeded sample of the rest) with
    every type it has, a type it lacks, a missing child and a missing sibling, and the
    owner once more in mixed case; over UDP with EDNS, with DO off and, in a zone with
    any DNSSEC record, on."""
    owners = [o for o in held.owners if o != held.origin]
    if len(owners) >= most:
        owners = rng.sample(owners, most - 1)
    signed = any(types & DNSSEC_TYPES for types in held.owners.values())
    queries = []
    for owner in [held.origin, *owners] if held.origin in held.owners else owners:
        types = held.owners[owner]
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
            for dnssec_ok in (False, True) if signed else (False,):
                queries.append(Query(name.to_text(), rdtype, tcp=False, edns=True,
                                     dnssec_ok=dnssec_ok))
    return queries


# --- asking many at once ------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def query_wire(query: Query) -> bytes:
    """The query's message with ID 0 (each exchange patches its own ID in)."""
    message = message_for(query)
    message.id = 0
    return message.to_wire()


def exchange(host: str, port: int, queries: list[Query], window: int = 16,
             timeout: float = 1.0, tries: int = 3) -> list[bytes | None]:
    """Send the queries over one UDP socket in the order given, at most `window`
    unanswered at a time (so the server sees them in that order); each reply as it came
    (`parse` reads one), or None when none came after `tries` sends."""
    wires = [(index % 65536).to_bytes(2, "big") + query_wire(query)[2:]
             for index, query in enumerate(queries)]
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
    return replies


def parse(data: bytes) -> dns.message.Message:
    """A reply; one dnspython cannot read is read as its header alone."""
    try:
        return dns.message.from_wire(data, ignore_trailing=True)
    except dns.exception.FormError:
        return dns.message.from_wire(data[:4] + bytes(8))


# --- finding the zone files of a source ---------------------------------------------------

KNOT_CHECKS = "tests/knot/semantic_check_data/"
BIND_TESTS = "bin/tests/system/"
BIND_ZONE = re.compile(r'\bzone\s+"([^"]+)"\s*(?:in\s+|ch\s+)?\{', re.IGNORECASE)


def discover(source: str) -> list[Entry]:
    """The zone files the source's own tests serve or check, each with the origin its
    test gives it, as entries not tried yet: Knot's semantic-check files (its test names
    them example.com), the primary zones of BIND's system tests whose file the tarball
    holds (origin from the `zone` statement of the test's named.conf), and the `*.zone`
    files of PowerDNS's regression tests, Knot Resolver and Unbound (no configuration
    names them: the origin is the file's first $ORIGIN or its SOA's owner)."""
    files = archive_files(source)
    found: list[tuple[str, str]] = []
    if source == "knot":
        found = [(path, "example.com.") for path in files if path.startswith(KNOT_CHECKS)]
        found.append(("samples/example.com.zone", "example.com."))
    elif source == "bind9":
        found = bind_primaries(files)
    elif source in ("pdns", "knot-resolver", "unbound"):
        for path, data in files.items():
            if path.endswith(".zone") or path.startswith("regression-tests/zones/"):
                origin = origin_in_file(data)
                if origin is not None:
                    found.append((path, origin))
    # an origin with a slash or a backslash (RFC 2317's 0/25.2.0.192.in-addr.arpa.) cannot
    # name the copy's file
    return [Entry(source, path, origin, NOT_TRIED + " new") for path, origin in sorted(found)
            if len(files[path]) <= LARGEST and not set(origin) & set("/\\")]


def bind_primaries(files: dict[str, bytes]) -> list[tuple[str, str]]:
    """(zone file, origin) of every `type primary` (or `master`) zone the named.conf files
    of BIND's system tests configure, when the tarball holds that file (many are made by
    the test's setup script)."""
    found = []
    for path, data in files.items():
        folder, _, name = path.rpartition("/")
        if not path.startswith(BIND_TESTS) or not name.startswith("named") or ".conf" not in name:
            continue
        text = re.sub(r"/\*.*?\*/", "", data.decode(errors="replace"), flags=re.DOTALL)
        text = re.sub(r"(?m)(//|#).*$", "", text)
        for match in BIND_ZONE.finditer(text):
            body = _braced(text, match.end())
            kind = re.search(r"\btype\s+(\w+)", body)
            file = re.search(r'\bfile\s+"([^"]+)"', body)
            if kind and file and kind.group(1) in ("primary", "master"):
                member = f"{folder}/{file.group(1)}"
                if member in files:
                    found.append((member, match.group(1).rstrip(".").lower() + "."))
    return sorted(set(found))


def _braced(text: str, start: int) -> str:
    """The text up to the brace that closes the one just before `start`."""
    depth, index = 1, start
    while depth and index < len(text):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        index += 1
    return text[start:index]


def origin_in_file(data: bytes) -> str | None:
    """The zone a file holds by its own text: its first `$ORIGIN` before any record, or
    the owner of its SOA when that is absolute (None when neither says)."""
    origin = None
    for raw in data.decode(errors="replace").splitlines():
        line = raw.split(";", 1)[0]
        words = line.split()
        if not words:
            continue
        if words[0].upper() == "$ORIGIN" and len(words) > 1:
            if origin is None:
                origin = words[1]
            continue
        if "SOA" in (w.upper() for w in words[:5]):
            owner = words[0] if not line[0].isspace() else "@"
            if owner.endswith("."):
                return owner.lower()
            break
    return origin.lower() if origin and origin.endswith(".") else None


# --- deciding the verdicts ----------------------------------------------------------------


def knot_verdicts(entries: list[Entry], workdir: Path, jobs: int = 4) -> dict[Entry, str]:
    """Run knotd on every entry (in batches, `jobs` knotd at a time) and say, per entry,
    `serve` or Knot's reason for refusing it (its log lines about the zone). When knotd
    dies on a batch, each of its entries is tried alone."""
    verdicts: dict[Entry, str] = {}
    groups, tried = batches(entries), 0
    while groups:
        numbered = list(enumerate(groups, tried))
        tried, groups = tried + len(groups), []
        with ThreadPoolExecutor(jobs) as pool:
            for (_, group), said in zip(numbered, pool.map(lambda n: _knot_says(n, workdir), numbered)):
                if said is None:
                    groups.extend([entry] for entry in group)
                else:
                    verdicts.update(said)
    return verdicts


def _knot_says(numbered: tuple[int, list[Entry]], workdir: Path) -> dict[Entry, str] | None:
    """One batch's verdicts; None when knotd died on a batch of several (try each alone)."""
    from tests.interop.knot import KnotProcess

    number, group = numbered
    directory = workdir / f"batch{number}"
    write_batch(group, directory)
    knot = KnotProcess(directory, [e.origin for e in group], directory.with_suffix(".knot"))
    knot.workdir.mkdir(parents=True, exist_ok=True)
    try:
        knot.start(every_zone=False)
    except RuntimeError:
        assert knot.proc is not None
        if len(group) > 1:
            return None
        return {group[0]: f"knot refuses: knotd exits with {knot.proc.returncode} loading it"}
    try:
        return {entry: _verdict(knot, entry.origin) for entry in group}
    finally:
        knot.stop()


def _verdict(knot, origin: str) -> str:
    """`serve` when Knot answers the zone's SOA and transfers it (the test lists the
    zone's names from the transfer), else what went wrong."""
    if not knot.serves(origin):
        return "knot refuses: " + brief(knot.refusal(origin) or "no SOA")
    try:
        contents(knot.host, knot.port, origin)
    except (dns.xfr.TransferError, OSError) as error:
        return f"knot refuses: it serves the zone but not its transfer ({error})"
    return SERVE


def brief(said: str, keep: int = 2) -> str:
    """Knot's first reasons; how many more there were."""
    reasons = said.split("; ")
    more = f" (and {len(reasons) - keep} more)" if len(reasons) > keep else ""
    return "; ".join(reasons[:keep]) + more


def main(argv: list[str]) -> int:
    """Print the manifest with the verdicts Knot gives now (`--discover`: with the zone
    files the archives' tests use added)."""
    import tempfile

    entries = read_manifest()
    if "--discover" in argv:
        known = {(e.source, e.member, e.origin) for e in entries}
        for source in ARCHIVES:
            try:
                entries += [e for e in discover(source) if (e.source, e.member, e.origin) not in known]
            except SourceMissing as missing:
                print(f"# not discovered: {source}: {missing}", file=sys.stderr)
    available = []
    for entry in entries:
        if entry.verdict.startswith(NOT_TRIED) and not entry.verdict.endswith(" new"):
            continue
        try:
            read_member(entry)
            available.append(entry)
        except SourceMissing as missing:
            print(f"# not tried: {entry.label}: {missing}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as workdir:
        verdicts = knot_verdicts(available, Path(workdir))
    for line in MANIFEST.read_text().splitlines():
        if not line.startswith("#"):
            break
        print(line)
    for entry in entries:
        verdict = verdicts.get(entry, entry.verdict)
        print(f"{entry.source}\t{entry.member}\t{entry.origin}\t{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
