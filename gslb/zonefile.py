"""Load and validate RFC 1035 master files into immutable `Zone`s.

dnspython does the parsing. We drive its reader with a recording transaction so every
record keeps the line it came from; validation then collects *every* problem as a
`file:line: message` line (like octoDNS's validate), instead of stopping at the first.
A zone with any problem is not loaded; the caller decides what keeps serving.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tokenizer
import dns.zonefile

from gslb.dns.zone import Name, Zone, build_zone

ZONE_SUFFIX = ".zone"
# Types that may sit beside a CNAME (RFC 2181 section 10.1, RFC 4035 section 2.5).
_CNAME_COMPANIONS = {dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.CNAME}


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

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Record:
    name: Name
    ttl: int
    rdata: Any
    line: int
    file: str = ""


class _Manager:
    """Just enough of a dnspython transaction manager for the zone file reader."""

    def __init__(self, origin: Name) -> None:
        self.origin = origin

    def origin_information(self) -> tuple[Name, bool, Name]:
        return self.origin, False, self.origin

    def get_class(self) -> int:
        return dns.rdataclass.IN


class _RecordingTxn:
    """Collects what the reader adds, with the line of the record, and checks nothing."""

    def __init__(self, origin: Name, file: str) -> None:
        self.manager = _Manager(origin)
        self.manager_file = file  # the zone file itself, as the caller named it
        self.records: list[_Record] = []
        self.line = 0
        self.file = ""

    def check_put_rdataset(self, check: Any) -> None:
        pass  # we validate everything afterwards, reporting all problems at once

    def add(self, name: Name, ttl: int, rdata: Any) -> None:
        self.records.append(_Record(name, ttl, rdata, self.line, self.file))

    def _set_origin(self, origin: Name) -> None:
        pass

    def add_unicode(self, value: str) -> None:
        pass


class _Reader(dns.zonefile.Reader):
    """dnspython's reader, noting where each record starts and out-of-zone names.

    A record that does not parse becomes a problem at the line it starts on, and reading
    goes on with the next line, so one run reports every bad record of a file.
    """

    def __init__(self, tok: dns.tokenizer.Tokenizer, txn: _RecordingTxn, directory: Path) -> None:
        super().__init__(tok, dns.rdataclass.IN, txn, allow_include=True)  # type: ignore[arg-type]
        self.recording = txn
        self.directory = directory
        self.out_of_zone: list[tuple[str, int, Name]] = []
        self.syntax_problems: list[Problem] = []
        _track(tok)

    def where(self) -> tuple[str, int]:
        """The file (included files by their path from the zone file) and line being read."""
        _track(self.tok)
        filename, line = self.tok.where()
        if filename != self.recording.manager_file and not os.path.isabs(filename):
            filename = str(self.directory / filename)
        return filename, line

    def _rr_line(self) -> None:
        self.recording.file, self.recording.line = self.where()
        before = len(self.recording.records)
        if not self._recovering(super()._rr_line):
            return
        name = self.last_name
        if (
            len(self.recording.records) == before
            and name is not None
            and not name.is_subdomain(self.recording.manager.origin)
        ):
            self.out_of_zone.append((self.recording.file, self.recording.line, name))

    def _generate_line(self) -> None:
        self.recording.file, self.recording.line = self.where()
        self._recovering(super()._generate_line)

    def _recovering(self, read_line: Any) -> bool:
        """Run `read_line`; on a syntax error note it and skip to the next line."""
        try:
            read_line()
            return True
        except dns.exception.DNSException as exc:
            detail = str(exc) or exc.__class__.__name__
            self.syntax_problems.append(Problem(self.recording.file, self.recording.line, detail))
        tok = self.tok
        if tok.quoting:
            # "newline in quoted string": the tokenizer stopped on the newline itself.
            tok.quoting = False
            tok.delimiters = dns.tokenizer._DELIMITERS  # type: ignore[attr-defined]
            if not tok.multiline:
                return False
        last = getattr(tok, "gslb_last", None)
        if tok.ungotten_token is None and last is not None and last.is_eol_or_eof():
            return False  # the error was found at the end of the line
        while not tok.get().is_eol_or_eof():
            pass
        return False


def _track(tok: dns.tokenizer.Tokenizer) -> None:
    """Make `tok` remember the last token it returned (to resume after an error)."""
    if getattr(tok, "gslb_last", False) is not False:
        return
    get = tok.get
    tok.gslb_last = None  # type: ignore[attr-defined]

    def tracking_get(want_leading: bool = False, want_comment: bool = False) -> Any:
        token = get(want_leading, want_comment)
        tok.gslb_last = token  # type: ignore[attr-defined]
        return token

    tok.get = tracking_get  # type: ignore[method-assign]


def origin_for(path: Path, text: str) -> Name:
    """`$ORIGIN` when the file starts with one, else the file name without `.zone`."""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line or line.upper().startswith("$TTL"):
            continue
        if line.upper().startswith("$ORIGIN"):
            parts = line.split()
            if len(parts) >= 2:
                return dns.name.from_text(parts[1])
        break
    stem = path.name[: -len(ZONE_SUFFIX)] if path.name.endswith(ZONE_SUFFIX) else path.name
    return dns.name.from_text(stem)


def load_zone_file(path: Path) -> tuple[Zone | None, list[Problem]]:
    """Parse and validate one zone file; the zone is None when anything is wrong."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        origin = origin_for(path, text)
    except (OSError, UnicodeDecodeError, dns.exception.DNSException) as exc:
        return None, [Problem(file, 1, f"cannot read zone file: {exc}")]
    txn = _RecordingTxn(origin, file)
    reader = _Reader(dns.tokenizer.Tokenizer(text, file), txn, path.parent)
    cwd = os.getcwd()
    try:
        os.chdir(path.parent)  # $INCLUDE paths are relative to the including file
        reader.read()
    except dns.exception.DNSException as exc:
        return None, [*reader.syntax_problems, _syntax_problem(file, reader, exc)]
    except OSError as exc:
        where, line = reader.where()
        last = getattr(reader.tok, "gslb_last", None)
        if last is not None and last.is_eol():
            line -= 1  # the $INCLUDE line has been read up to its end
        return None, [*reader.syntax_problems, Problem(where, line, f"$INCLUDE failed: {exc}")]
    finally:
        os.chdir(cwd)
    problems = [
        Problem(where, line, f"{name} is outside the zone {origin}")
        for where, line, name in reader.out_of_zone
    ]
    problems += reader.syntax_problems
    problems += validate(origin, txn.records, file)
    problems.sort(key=lambda p: (p.file != file, p.file, p.line))
    if problems:
        return None, problems
    return build_zone(origin, _rrsets(txn.records), source=file), []


def load_zones(directory: Path) -> LoadReport:
    """Every `*.zone` file in `directory`; duplicate origins are errors in both files."""
    report = LoadReport()
    paths = sorted(directory.glob(f"*{ZONE_SUFFIX}"))
    if not directory.is_dir():
        report.problems.append(Problem(str(directory), 0, "zones directory does not exist"))
        return report
    seen: dict[Name, str] = {}
    for path in paths:
        zone, problems = load_zone_file(path)
        report.problems.extend(problems)
        if zone is None:
            continue
        if zone.origin in seen:
            report.problems.append(
                Problem(str(path), 1, f"zone {zone.origin} is already loaded from {seen[zone.origin]}")
            )
            continue
        seen[zone.origin] = str(path)
        report.zones.append(zone)
    if not paths:
        report.problems.append(Problem(str(directory), 0, f"no *{ZONE_SUFFIX} files found"))
    return report


def validate(origin: Name, records: list[_Record], file: str) -> list[Problem]:
    """Every semantic problem of a parsed zone, in line order."""
    problems: list[Problem] = []
    by_name: dict[Name, dict[int, list[_Record]]] = {}
    for record in records:
        by_name.setdefault(record.name, {}).setdefault(record.rdata.rdtype, []).append(record)

    apex = by_name.get(origin, {})
    first_line = records[0].line if records else 1
    if dns.rdatatype.SOA not in apex:
        problems.append(Problem(file, first_line, f"zone {origin} has no SOA record at its apex"))
    elif len(apex[dns.rdatatype.SOA]) > 1:
        second = apex[dns.rdatatype.SOA][1]
        problems.append(Problem(second.file or file, second.line, "more than one SOA record at the apex"))
    if dns.rdatatype.NS not in apex:
        problems.append(Problem(file, first_line, f"zone {origin} has no NS records at its apex"))

    cuts = {name for name, types in by_name.items() if name != origin and dns.rdatatype.NS in types}
    for name, types in by_name.items():
        if dns.rdatatype.SOA in types and name != origin:
            soa = types[dns.rdatatype.SOA][0]
            problems.append(Problem(soa.file or file, soa.line, f"SOA record at {name}, which is not the zone apex"))
        problems.extend(_cname_problems(file, name, types))
        for ns in types.get(dns.rdatatype.NS, []):
            problems.extend(_glue_problems(file, origin, cuts, by_name, ns))
    problems.sort(key=lambda p: (p.file != file, p.file, p.line))
    return problems


def _cname_problems(file: str, name: Name, types: dict[int, list[_Record]]) -> list[Problem]:
    cnames = types.get(dns.rdatatype.CNAME)
    if not cnames:
        return []
    problems = []
    if len(cnames) > 1:
        problems.append(Problem(cnames[1].file or file, cnames[1].line, f"more than one CNAME record at {name}"))
    others = sorted(
        dns.rdatatype.to_text(rdtype) for rdtype in types if rdtype not in _CNAME_COMPANIONS
    )
    if others:
        problems.append(
            Problem(cnames[0].file or file, cnames[0].line, f"CNAME at {name} beside other data ({', '.join(others)})")
        )
    return problems


def _glue_problems(
    file: str, origin: Name, cuts: set[Name], by_name: dict[Name, dict[int, list[_Record]]], ns: _Record
) -> list[Problem]:
    """An NS target inside this zone needs an address record here, or nobody can reach it."""
    target = ns.rdata.target
    if not target.is_subdomain(origin):
        return []
    types = by_name.get(target, {})
    if dns.rdatatype.A in types or dns.rdatatype.AAAA in types:
        return []
    below_cut = any(target.is_subdomain(cut) for cut in cuts)
    what = "glue" if below_cut else "address record"
    return [Problem(ns.file or file, ns.line, f"NS {target} for {ns.name} has no {what} (A or AAAA) in the zone")]


def _rrsets(records: list[_Record]) -> list[dns.rrset.RRset]:
    sets: dict[tuple[Name, int], dns.rrset.RRset] = {}
    for record in records:
        key = (record.name, record.rdata.rdtype)
        rrset = sets.get(key)
        if rrset is None:
            rrset = sets[key] = dns.rrset.RRset(record.name, dns.rdataclass.IN, record.rdata.rdtype)
        rrset.add(record.rdata, record.ttl)
    return list(sets.values())


def _syntax_problem(file: str, reader: _Reader, exc: Exception) -> Problem:
    """dnspython says `file:line: detail` for syntax errors; keep its line and detail."""
    text = str(exc) or exc.__class__.__name__
    parts = text.split(":", 2)
    if len(parts) == 3 and parts[1].strip().isdigit():
        return Problem(parts[0] or file, int(parts[1]), parts[2].strip())
    return Problem(file, reader.tok.where()[1], text)
