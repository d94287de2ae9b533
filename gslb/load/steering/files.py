"""Which steering files there are, which zone each belongs to, and what loading them all gives.

A zone's steering sits beside its zone file as `<origin>.gslb.yaml` (or `.gslb.yml`); the
`zone:` key, when given, overrides the name. This module finds the files, reads and
composes each one, matches it to a loaded zone, hands its records to `records.validate`,
and gathers the result into a `SteeringLoad`: the valid records, every problem, and what
was left out for a problem (so a reload can keep the last good version). A name steered
in two files is a problem in the second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import dns.exception
import dns.name
import yaml

from gslb.dns.zone import Zone
from gslb.load.steering.records import validate
from gslb.load.yamlcheck import Checker, Fields, line_of
from gslb.load.zonefile import Problem, files_named
from gslb.steering.model import SteeredRecord

STEERING_SUFFIX = ".gslb.yaml"
STEERING_SUFFIXES = (".gslb.yaml", ".gslb.yml")  # both spellings YAML tools use
# libyaml's parser when PyYAML has it (ten times faster: a change to a large steered
# record is parsed by every process that applies it), else the pure-Python one
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FILE_KEYS = ("checks", "datacenters", "records", "zone")


@dataclass
class _Parsed:
    root: Fields | None  # the file's top-level mapping, None when there is none to read
    checker: Checker


@dataclass
class SteeringLoad:
    """What the steering files say: the valid records, every problem, and which records
    (or whole files) were left out for a problem, so a reload can keep their last good
    version instead of dropping the name."""

    records: dict[tuple[str, str], SteeredRecord] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    broken: dict[tuple[str, str | None], str] = field(default_factory=dict)
    broken_files: set[str] = field(default_factory=set)


def _parse(path: Path) -> _Parsed:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        checker = Checker(str(path))
        checker.add(1, "", f"cannot read steering file: {exc}")
        return _Parsed(None, checker)
    return _parse_text(text, str(path))


def _parse_text(text: str, file: str) -> _Parsed:
    checker = Checker(file)
    try:
        node = yaml.compose(text, Loader=LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        checker.add(mark.line + 1 if mark else 1, "", f"invalid YAML: {exc.problem or exc.context}")
        return _Parsed(None, checker)
    except yaml.YAMLError as exc:
        checker.add(1, "", f"invalid YAML: {exc}")
        return _Parsed(None, checker)
    if node is None:
        checker.add(1, "", 'the file is empty (expected a mapping with "records")')
        return _Parsed(None, checker)
    return _Parsed(checker.mapping(node, "", "the file", _FILE_KEYS), checker)


def _declared_origin(parsed: _Parsed) -> tuple[dns.name.Name | None, int]:
    """The `zone:` key's name and line, when there is a valid one."""
    if parsed.root is None or "zone" not in parsed.root:
        return None, 1
    node = parsed.root["zone"][1]
    text = parsed.checker.string(node, "", "zone")
    if text is None:
        return None, line_of(node)
    try:
        return dns.name.from_text(text), line_of(node)
    except dns.exception.DNSException as exc:
        parsed.checker.add(node, "", f'zone "{text}" is not a valid name: {exc}')
        return None, line_of(node)


def origin_from_path(path: Path) -> dns.name.Name:
    """`example.com.gslb.yaml` (or `.gslb.yml`) -> `example.com.`"""
    suffix = next((s for s in STEERING_SUFFIXES if path.name.endswith(s)), None)
    stem = path.name[: -len(suffix)] if suffix else path.stem
    return dns.name.from_text(stem)


def steering_files(zones_dir: Path) -> list[Path]:
    """Every steering file in `zones_dir`, both spellings, in name order."""
    return files_named(zones_dir, *STEERING_SUFFIXES)


def load_steering(path: Path, zone: Zone) -> tuple[list[SteeredRecord], list[Problem]]:
    """Every steered record in `path` for `zone`, and every problem found (sorted by
    line). Records with a problem are left out."""
    return _checked(_parse(path), zone)


def steering_from_text(text: str, file: str, zone: Zone
                       ) -> tuple[list[SteeredRecord], list[Problem]]:
    """`load_steering` for a text not (yet) on disk: the API checks a rewritten file
    with exactly the rules `gslb check` applies before it writes it."""
    return _checked(_parse_text(text, file), zone)


def _checked(parsed: _Parsed, zone: Zone) -> tuple[list[SteeredRecord], list[Problem]]:
    origin, line = _declared_origin(parsed)
    if origin is not None and origin != zone.origin:
        parsed.checker.add(line, "", f"zone {origin} does not match {zone.origin}, the zone it was loaded for")
    records = validate(parsed.checker, parsed.root, zone)[0] if parsed.root is not None else []
    return records, sorted(parsed.checker.problems, key=lambda p: p.line)


def load_all_steering(zones_dir: Path, zones: list[Zone]
                      ) -> tuple[dict[tuple[str, str], SteeredRecord], list[Problem]]:
    """Every steering file's valid records, keyed by (owner, type), and every problem."""
    load = load_steering_files(zones_dir, zones)
    return load.records, load.problems


def load_steering_files(zones_dir: Path, zones: list[Zone],
                        skip: Iterable[dns.name.Name] = ()) -> SteeringLoad:
    """Every `*.gslb.yaml` (or `.gslb.yml`) in `zones_dir`, matched to its zone by the
    `zone:` key or the file name; keyed by (owner, type). A name steered in two files is
    a problem in the second. Files of the zones in `skip` (kept from before on a reload)
    are not read."""
    paths = steering_files(zones_dir)
    # only when there is a file to match: a dnspython name hashes in Python (a microsecond)
    by_origin = {zone.origin: zone for zone in zones} if paths else {}
    skipped = set(skip)
    load = SteeringLoad()
    steered = load.records
    for path in paths:
        parsed = _parse(path)
        origin, line = _declared_origin(parsed)
        if origin is None and parsed.root is not None and "zone" not in parsed.root:
            try:
                origin = origin_from_path(path)
            except dns.exception.DNSException as exc:
                parsed.checker.add(1, "", f"cannot tell the zone from the file name: {exc}")
        if origin in skipped:
            continue
        zone = by_origin.get(origin) if origin is not None else None
        if origin is not None and zone is None:
            parsed.checker.add(line, "", f"no zone {origin} is loaded for this file")
        records, broken = validate(parsed.checker, parsed.root, zone) \
            if parsed.root is not None and zone is not None else ([], {})
        if zone is None or parsed.root is None or "records" not in parsed.root \
                or not isinstance(parsed.root["records"][1], yaml.MappingNode):
            load.broken_files.add(str(path))
        load.broken.update(broken)
        for record in records:
            key = (record.owner, record.rdtype)
            if key in steered:
                where, _, number = record.source.rpartition(":")
                parsed.checker.add(int(number), "", f"{record.owner} {record.rdtype} is already steered "
                                   f"in {steered[key].source}")
            else:
                steered[key] = record
        load.problems += sorted(parsed.checker.problems, key=lambda p: p.line)
    return load
