"""Load and validate RFC 1035 master files into immutable `Zone`s.

`gslb.load.zoneparse` reads the file (the common record types by hand, every other type
through dnspython) and feeds each record straight into a `ZoneBuilder`, so no object is
kept per record. On the way an `_Index` notes what validation needs: every SOA, NS and
CNAME record with its file and line, and the line of each owner's first record. The types
at an owner come from the builder's blobs. Validation then collects *every* problem as a
`file:line: message` line (like octoDNS's validate), instead of stopping at the first. A
zone with any problem is not loaded; the caller decides what keeps serving.
"""

from __future__ import annotations

import io
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, TextIO, TypeVar

import dns.exception
import dns.name
import dns.rdatatype

from gslb.dns.zone import RECORD, Name, Zone, ZoneBuilder, record_types, sigs_key, to_wire
from gslb.load import zoneparse
from gslb.load.zoneparse import ParseState, Sink, logical_lines, parse_file

ZONE_SUFFIX = ".zone"
SOA, NS, CNAME, A, AAAA, DNAME = (dns.rdatatype.SOA, dns.rdatatype.NS, dns.rdatatype.CNAME,
                                  dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.DNAME)
# Types that may sit beside a CNAME (RFC 2181 section 10.1, RFC 4035 section 2.5).
_CNAME_COMPANIONS = {dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3, CNAME}
_AT_CUT = {NS, dns.rdatatype.DS, dns.rdatatype.RRSIG, dns.rdatatype.NSEC}  # what a cut holds
_NSEC3_OWNER = {dns.rdatatype.NSEC3, dns.rdatatype.RRSIG}  # what an NSEC3 chain's name holds
_NOTED = frozenset({SOA, NS, CNAME})
# A SOA for a partial zone that has none (. . 0 0 0 0 0): never served, only validated against
_STAND_IN_SOA = b"\x00\x00" + bytes(20)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class LoadReport:
    zones: list[Zone] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Not wrong enough to refuse a zone (records outside it, skipped as Knot does).
    warnings: list[Problem] = field(default_factory=list)
    # Zones whose file has problems, as far as it parsed (only when asked for): never
    # served, but `gslb check` validates their steering files against them, so one run
    # reports the problems of both files.
    partial: list[Zone] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Noted(NamedTuple):
    """One SOA, NS or CNAME record, where it was written (a tuple: a zone of thousands
    notes three or more each)."""

    key: bytes  # owner, lowercase wire
    owner: bytes  # owner as written
    rdtype: int
    rdata: bytes
    file: str
    line: int


class _Index:
    """What validation needs, gathered while the file is parsed (not a line per record).

    The builder keeps the line of each owner's first record; `file_starts` says from
    which owner on (in the builder's insertion order) the owners come from which file,
    as `$INCLUDE` switches files. The fast path's A and AAAA records go straight to the
    builder: they are never noted."""

    def __init__(self, builder: ZoneBuilder, state: ParseState) -> None:
        self.builder = builder
        self.noted: list[_Noted] = []
        self.file_starts: list[tuple[int, str]] = [(0, state.file)]
        starts, first_lines, noted = self.file_starts, builder.first_lines, self.noted
        current = [state.file]

        # Neither is a method nor reads `state`: the state holds them, and a cycle would
        # keep a zone file's parse alive until the next collection
        def file_changed(file: str) -> None:
            starts.append((len(first_lines), file))
            current[0] = file

        def note(owner: bytes, rdtype: int, rdata: bytes, line: int) -> None:
            noted.append(_Noted(owner.lower(), owner, rdtype, rdata, current[0], line))

        state.fast_builder, state.fast_note, state.file_changed = builder, note, file_changed
        self.sink = self._sink(note)

    def first_record(self, owner_index: int) -> tuple[str, int]:
        """(file, line) of the first record of the owner at `owner_index`."""
        file = next(f for start, f in reversed(self.file_starts) if start <= owner_index)
        return file, self.builder.first_lines[owner_index]

    def _sink(self, note: Callable[[bytes, int, bytes, int], None]) -> Sink:
        add = self.builder.add

        def sink(owner: bytes, rdtype: int, ttl: int, rdata: bytes, line: int) -> None:
            add(owner, rdtype, ttl, rdata, line)
            if rdtype in _NOTED:
                note(owner, rdtype, rdata, line)

        return sink


def origin_for(path: Path | str, text: str) -> Name:
    """`$ORIGIN` when the file starts with one, else the file name without `.zone`; a
    first `$ORIGIN` below or above the zone the file is named after (`$ORIGIN com.`
    before `example SOA ...` in `example.com.zone`) is only the base for the relative
    names that follow it.

    `$ORIGIN .` starts a BIND dump (`named-compilezone -s full`, `rndc dumpdb`): absolute
    owner names follow, and the apex is the owner of the SOA, which `text` then reaches
    (like `kzonecheck -o`)."""
    name = os.path.basename(path)
    stem = name[: -len(ZONE_SUFFIX)] if name.endswith(ZONE_SUFFIX) else name
    named = dns.name.from_text(stem)
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line or line.upper().startswith("$TTL"):
            continue
        if line.upper().startswith("$ORIGIN"):
            parts = line.split()
            if len(parts) >= 2 and parts[1] != "." and parts[1] in (stem, stem + "."):
                return named  # the usual file: named after its own $ORIGIN
            if len(parts) >= 2:
                origin = dns.name.from_text(parts[1])
                if origin == dns.name.root:
                    return _soa_owner(text) or origin
                if origin.is_subdomain(named) or named.is_subdomain(origin):
                    # a base for relative names in or above the zone the file is named
                    # after (BIND, Knot and NSD take the zone from their configuration)
                    return named
                return origin
        break
    return named


def _soa_owner(text: str) -> Name | None:
    """The owner of the first SOA record, following `$ORIGIN` lines on the way."""
    origin = dns.name.root
    for _, _, content in logical_lines(enumerate(text.splitlines(True), 1)):
        if content is None:
            continue
        fields = content.split()
        if fields[0].upper() == "$ORIGIN" and len(fields) == 2:
            origin = dns.name.from_text(fields[1], origin)
        elif not content.startswith("$") and "SOA" in (f.upper() for f in fields[1:4]):
            return dns.name.from_text(fields[0], origin)
    return None


def _head(handle: TextIO) -> list[str]:
    """The file's lines up to its first that is not blank, a comment or `$TTL`: all that
    `origin_for` reads, without reading a large zone twice (the parser reads on from
    there). After `$ORIGIN .` it reads on to the first SOA line (the apex of a BIND
    dump), which comes first in a dump."""
    lines = []
    dump = False
    for raw in handle:
        lines.append(raw)
        line = raw.split(";", 1)[0].strip()
        if dump:
            if "SOA" in line.upper().split():
                break  # its owner and type are on this line
            continue
        if line and not line.upper().startswith("$TTL"):
            fields = line.split()
            dump = fields[0].upper() == "$ORIGIN" and fields[1:2] == ["."]
            if not dump:
                break
    return lines


SMALL_FILE = 256 << 10  # bytes: a zone file up to this size is read whole


def _lines(raw: io.FileIO) -> TextIO:
    """The zone file's lines as text (universal newlines, as `open` reads them).

    A small file, as nearly all of a server's thousands of zones are, is read in one
    system call and decoded at once: a buffered text file costs three layers and a read
    buffer per file (with large blocks mapped on their own, a fresh 4 MiB mapping for the
    parser's read size). A large one is streamed, so its text is never held twice."""
    if os.fstat(raw.fileno()).st_size > SMALL_FILE:
        return io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8")
    return io.StringIO(raw.readall().decode("utf-8"), newline=None)


def load_zone_file(path: Path | str, warnings: list[Problem] | None = None, partial: bool = False,
                   includes: bool = True, strict: bool = False
                   ) -> tuple[Zone | None, list[Problem]]:
    """Parse and validate one zone file; the zone is None when anything is wrong, unless
    `partial` asks for what parsed anyway (when the file could be read at all). Without
    `includes`, an `$INCLUDE` line is a problem (text that came through the API: it
    must never read a file of the server's).

    Records outside the zone are skipped, not wrong: each is a warning (appended to
    `warnings` when given), as Knot DNS says "ignoring out-of-zone data"; so are the
    semantic warnings of `validate`, which `strict` makes problems."""
    file = os.fspath(path)
    try:
        raw = open(path, "rb", buffering=0)
    except OSError as exc:
        return None, [Problem(file, 1, f"cannot read zone file: {exc}")]
    with raw:  # opened once: the parser reads on after the head
        try:
            handle = _lines(raw)
            head = _head(handle)
            origin = origin_for(path, "".join(head))
        except (OSError, UnicodeDecodeError, dns.exception.DNSException) as exc:
            return None, [Problem(file, 1, f"cannot read zone file: {exc}")]
        origin_wire = to_wire(origin)
        state = ParseState(file, origin, includes=includes, _wire_of=(origin, origin_wire))
        state.known[origin.to_text()] = origin  # its $ORIGIN line need not be read again
        builder = ZoneBuilder()
        index = _Index(builder, state)
        parse_file(path, state, origin_wire, index.sink, opened=(handle, head))
    if warnings is not None:
        warnings.extend(
            Problem(where, line, f"ignoring out-of-zone data {name} (outside the zone {origin})")
            for where, line, name in state.out_of_zone)
    problems = [Problem(where, line, message) for where, line, message in state.problems]
    semantic, cautions = validate(origin, index, file)
    problems += semantic + (cautions if strict else [])
    if warnings is not None and not strict:
        warnings.extend(cautions)
    problems.sort(key=lambda p: (p.file != file, p.file, p.line))
    if problems and not partial:
        return None, problems
    if SOA not in record_types(builder.records.get(origin_wire.lower(), b"")):
        builder.add(origin_wire, SOA, 0, _STAND_IN_SOA)  # partial only: reported above
    native = zoneparse.native_scanner()  # the empty non-terminals in C when it is built
    ents = native.ents(builder.records, len(origin_wire)) if native is not None else None
    zone = builder.build(origin, source=file, ents=ents)
    if warnings is not None and zone.signed and not problems:
        soa_line = next((n.line for n in index.noted if n.rdtype == SOA), 1)
        warnings.extend(Problem(file, soa_line, message)
                        for message in signature_warnings(zone, time.time()))
    return zone, problems


SOON = 3 * 86400  # signatures that expire sooner than this are worth a warning


def signature_warnings(zone: Zone, now: float) -> list[str]:
    """gslb serves signatures, it does not make them: when the apex SOA's RRSIGs (the
    signer's last run) have expired, validators reject every answer of the zone."""
    sigs = zone.node(zone.origin).get(sigs_key(SOA))
    if sigs is None:
        return []
    expiration = min(rd.expiration for rd in sigs)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expiration))
    if expiration <= now:
        return [f"the zone's signatures expired at {stamp}: validating resolvers reject its "
                "answers; re-sign the zone and reload"]
    if expiration - now < SOON:
        hours = int((expiration - now) // 3600)
        return [f"the zone's signatures expire at {stamp} (in {hours} h): re-sign the zone "
                "and reload before then"]
    return []


def files_named(directory: Path, *suffixes: str) -> list[Path]:
    """The entries of `directory` whose names end with one of `suffixes`, in name order:
    what `directory.glob(f"*{suffix}")` finds, in one pass of `os.scandir` (a glob
    matches each of thousands of names against a pattern, then Path objects are
    sorted). Empty when `directory` cannot be listed, as a glob is."""
    return [directory / name for name in names_in(directory, *suffixes)]


def names_in(directory: Path, *suffixes: str) -> list[str]:
    """`files_named`'s names alone."""
    try:
        with os.scandir(directory) as entries:
            return sorted(entry.name for entry in entries if entry.name.endswith(suffixes))
    except OSError:
        return []


def load_zones(directory: Path, partial: bool = False, strict: bool = False,
               parallel: bool = False) -> LoadReport:
    """Every `*.zone` file in `directory`; duplicate origins are errors in both files.
    With `partial`, zones with problems go to `report.partial` as far as they parsed;
    with `strict`, warnings of the zone data are problems. With `parallel`, a forked
    process loads half the bytes of many files, in small ones (`_load_files`): only
    where nothing else runs beside the caller, as at a server's start."""
    report = LoadReport()
    # file names as plain strings: a Path interns each name's text, and the table of
    # interned strings never shrinks (5,000 zones: 0.9 MiB for good)
    folder = "" if str(directory) == "." else str(directory)  # as `directory / name` writes it
    paths = [os.path.join(folder, name) for name in names_in(directory, ZONE_SUFFIX)]
    if not directory.is_dir():
        report.problems.append(Problem(str(directory), 0, "zones directory does not exist"))
        return report
    seen: dict[bytes, str] = {}  # by lowercase wire name: bytes hash once, a Name each time
    for path, (zone, problems, warnings) in zip(paths, _load_files(paths, partial, strict,
                                                                   parallel)):
        report.warnings.extend(warnings)
        report.problems.extend(problems)
        if zone is None:
            continue
        if problems:
            report.partial.append(zone)
            continue
        if zone.origin_wire in seen:
            report.problems.append(
                Problem(path, 1, f"zone {zone.origin} is already loaded from {seen[zone.origin_wire]}")
            )
            continue
        seen[zone.origin_wire] = path
        report.zones.append(zone)
    if not paths:
        report.problems.append(Problem(str(directory), 0, f"no *{ZONE_SUFFIX} files found"))
    return report


Loaded = tuple[Zone | None, list[Problem], list[Problem]]  # a file's zone, problems, warnings
PARALLEL_FROM = 200  # zone files: fewer load sooner in one process than with a second


def _load_files(paths: list[str], partial: bool, strict: bool, parallel: bool) -> list[Loaded]:
    """Each file loaded, in order. In parallel (two CPUs or more, enough files), a forked
    child loads half of the bytes, in small files only (`_handed`), and hands its zones
    back pickled: 5,000 small zones load in 0.23 s rather than 0.35, the pickle costing
    20 us a zone each way. Should the child fail, this process loads those files too, so
    the outcome is the same."""
    if not parallel or len(paths) < PARALLEL_FROM or len(os.sched_getaffinity(0)) < 2:
        return _load_each(paths, partial, strict)
    handed = _handed([_size(path) for path in paths])
    if len(handed) < PARALLEL_FROM // 2:
        return _load_each(paths, partial, strict)
    theirs = [path for i, path in enumerate(paths) if i in handed]
    result = forked(lambda: _load_each(theirs, partial, strict))
    try:
        mine = iter(_load_each([path for i, path in enumerate(paths) if i not in handed],
                               partial, strict))
    finally:
        back = result()
    done = iter(back if back is not None else _load_each(theirs, partial, strict))
    return [next(done) if i in handed else next(mine) for i in range(len(paths))]


def _handed(sizes: list[int]) -> set[int]:
    """The files (by index) a second process loads: small ones, from the last, until they
    hold half of all the bytes. A large zone stays in this process: handing it back
    would cost more than loading it (a million records: 0.4 s to load, 0.8 s to pickle
    and unpickle, and twice the memory meanwhile)."""
    half = sum(sizes) / 2
    handed: set[int] = set()
    total = 0
    for i in reversed(range(len(sizes))):
        if total >= half:
            break
        if sizes[i] <= SMALL_FILE:
            handed.add(i)
            total += sizes[i]
    return handed


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0  # the load words the problem


def _load_each(paths: list[str], partial: bool, strict: bool) -> list[Loaded]:
    loaded = []
    for path in paths:
        warnings: list[Problem] = []
        zone, problems = load_zone_file(path, warnings, partial, strict=strict)
        loaded.append((zone, problems, warnings))
    return loaded


T = TypeVar("T")


def forked(job: Callable[[], T]) -> Callable[[], T | None]:
    """Start `job` in a forked child while the caller goes on; the function returned
    waits for the child and gives its result, or None when it failed (no fork, an
    exception, a signal): the caller then does the job itself. The child leaves by
    `os._exit`, running no exit handler and flushing no buffer of the parent's."""
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        return lambda: None
    if pid == 0:  # pragma: no cover (the child's coverage is not collected)
        status = 1
        try:
            os.close(read)
            with open(write, "wb") as out:
                pickle.dump(job(), out, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        finally:
            os._exit(status)
    os.close(write)

    def result() -> T | None:
        with open(read, "rb") as source:
            try:
                handed: T | None = pickle.load(source)  # as it comes: never all the bytes at once
            except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
                handed = None
            source.read()  # what a child that failed part way wrote: it must not block
        _, status = os.waitpid(pid, 0)
        return handed if status == 0 else None

    return result


def validate(origin: Name, index: _Index, file: str) -> tuple[list[Problem], list[Problem]]:
    """Every semantic problem of a parsed zone, in line order, and the warnings: what
    Knot DNS and NSD load with a warning (no NS at the apex, a name server of the zone
    without an address) loads here too, and `gslb check --strict` refuses it."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    records = index.builder.records
    apex = to_wire(origin).lower()
    first_line = index.first_record(0)[1] if records else 1
    by_type: dict[int, list[_Noted]] = {SOA: [], NS: [], CNAME: []}
    for noted in index.noted:
        by_type[noted.rdtype].append(noted)

    apex_soas = [n for n in by_type[SOA] if n.key == apex]
    if not apex_soas:
        problems.append(Problem(file, first_line, f"zone {origin} has no SOA record at its apex"))
    elif len({n.rdata for n in apex_soas}) > 1:  # an identical repeat (an AXFR dump) is one
        second = next(n for n in apex_soas if n.rdata != apex_soas[0].rdata)
        problems.append(Problem(second.file, second.line, "more than one SOA record at the apex"))
    if NS not in record_types(records.get(apex, b"")):
        warnings.append(Problem(file, first_line, f"zone {origin} has no NS records at its "
                                "apex: no resolver can find its name servers"))

    for soa in _first_per_owner(n for n in by_type[SOA] if n.key != apex):
        problems.append(Problem(soa.file, soa.line, f"SOA record at {_text(soa.owner)}, which is not the zone apex"))
    cnames: dict[bytes, list[_Noted]] = {}
    for cname in by_type[CNAME]:
        cnames.setdefault(cname.key, []).append(cname)
    for group in cnames.values():
        problems.extend(_cname_problems(group, records[group[0].key]))
    cuts = {n.key for n in by_type[NS] if n.key != apex}
    for ns in by_type[NS]:
        warnings.extend(_glue_problems(apex, cuts, records, ns))
    if cuts:
        warnings.extend(_occluded(index, apex, cuts, {n.rdata.lower() for n in by_type[NS]}))
    problems.extend(_below_dname(index))
    problems.sort(key=lambda p: (p.file != file, p.file, p.line))
    return problems, warnings


def _first_per_owner(noted: Iterable[_Noted]) -> list[_Noted]:
    seen: dict[bytes, _Noted] = {}
    for record in noted:
        seen.setdefault(record.key, record)
    return list(seen.values())


def _cname_problems(cnames: list[_Noted], blob: bytes) -> list[Problem]:
    """RFC 1034 section 3.6.2: a CNAME is alone at its name, and there is only one."""
    problems = []
    if len(cnames) > 1:
        name = _text(cnames[0].owner)
        problems.append(Problem(cnames[1].file, cnames[1].line, f"more than one CNAME record at {name}"))
    if len(blob) == RECORD.size + len(cnames[0].rdata):  # the CNAME alone
        return problems
    others = sorted(
        dns.rdatatype.to_text(dns.rdatatype.RdataType(rdtype)) for rdtype in record_types(blob)
        if rdtype not in _CNAME_COMPANIONS
    )
    if others:
        name = _text(cnames[0].owner)
        problems.append(
            Problem(cnames[0].file, cnames[0].line, f"CNAME at {name} beside other data ({', '.join(others)})")
        )
    return problems


def _glue_problems(apex: bytes, cuts: set[bytes], records: dict[bytes, bytes], ns: _Noted) -> list[Problem]:
    """An NS target inside this zone needs an address record here, or nobody can reach it."""
    target = ns.rdata.lower()  # NS rdata is the uncompressed target name
    if not _is_at_or_below(target, apex):
        return []
    types = record_types(records.get(target, b""))
    if A in types or AAAA in types:
        return []
    below_cut = any(suffix in cuts for suffix in _suffixes(target))
    what = "glue" if below_cut else "address record"
    return [Problem(ns.file, ns.line,
                    f"NS {_text(ns.rdata)} for {_text(ns.owner)} has no {what} (A or AAAA) in the zone")]


def _occluded(index: _Index, apex: bytes, cuts: set[bytes], targets: set[bytes]) -> list[Problem]:
    """Data a delegation hides (Knot's semantic check): at a cut only NS and DS (and
    DNSSEC records) are answered, below it only the addresses of the name servers its NS
    records name (glue); anything else is never served."""
    found = []
    for position, (key, blob) in enumerate(index.builder.records.items()):
        cut = next((s for s in _suffixes(key) if s in cuts and s != apex), None)
        if cut is None:
            continue
        types = record_types(blob)
        hidden = (types - _AT_CUT if cut == key else
                  types if key not in targets else types - {A, AAAA})
        if hidden:
            where = "at" if cut == key else "below"
            names = ", ".join(sorted(dns.rdatatype.to_text(dns.rdatatype.RdataType(t))
                                     for t in hidden))
            file, line = index.first_record(position)
            found.append(Problem(file, line, f"{_text(key)} {names} {where} the delegation "
                                 f"{_text(cut)} is occluded: never answered"))
    return found


def _below_dname(index: _Index) -> list[Problem]:
    """RFC 6672 section 2.3: a DNAME's owner has no descendants (Knot DNS refuses them
    too): a name below one is never reached, the DNAME rewrites every query for it."""
    records = index.builder.records
    dnames = index.builder.typed[DNAME]  # the builder notes them as it goes
    if not dnames:
        return []
    found = []
    for position, (key, blob) in enumerate(records.items()):
        if set(record_types(blob)) <= _NSEC3_OWNER:
            continue  # a hashed name of the NSEC3 chain, not a name of the zone's tree
        owner = next((s for s in _suffixes(key) if s in dnames and s != key), None)
        if owner is not None:
            file, line = index.first_record(position)
            found.append(Problem(file, line, f"{_text(key)} is below the DNAME at {_text(owner)}: "
                                 "a DNAME's owner has no descendants (RFC 6672 section 2.3)"))
    return found


def _is_at_or_below(name: bytes, ancestor: bytes) -> bool:
    """Both lowercase wire names: `name` is `ancestor` or a name under it."""
    offset = 0
    while len(name) - offset > len(ancestor):
        offset += name[offset] + 1
    return name[offset:] == ancestor


def _suffixes(name_wire: bytes) -> Iterator[bytes]:
    """The name and each of its ancestors, the root excluded."""
    offset = 0
    while name_wire[offset]:
        yield name_wire[offset:]
        offset += name_wire[offset] + 1


def _text(name_wire: bytes) -> str:
    return dns.name.from_wire(name_wire, 0)[0].to_text()
