"""The configuration a node serves, as data: base zones and steering per zone.

`LiveConfig` is what the API validates against and what each DNS node turns into its
snapshot. `apply` replays one version's changes on it and returns a new one, touching
only what changed: an RRset change replaces one owner in one zone (`Zone.with_owner`),
a steered record change is written into its zone's steering text (`steertext`), which
is then parsed again, as is a whole new steering text; a zone change parses one zone.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import dns.name
import yaml

from gslb.config.changes import RRSET, STEERED, STEERING, ZONE, Change, Version
from gslb.config.rrsets import FieldProblem, Invalid, owner_blob
from gslb.dns.zone import Name, Zone, to_wire
from gslb.steering.model import SteeredRecord
from gslb.load.steering import STEERING_SUFFIX, origin_from_path, steering_from_text
from gslb.load.zonefile import ZONE_SUFFIX, files_named, load_zone_file

Records = dict[tuple[str, str], SteeredRecord]
ParsedKey = tuple[str, str, int]  # (zone, digest of the steering text before, version after)
Parsed = tuple[str, Records]  # (the steering text after, its records)
# What most zones of a server of thousands steer: nothing. One dict for all of them
# rather than one each; never written to (a zone's records are replaced, not updated).
NO_RECORDS: Records = {}


@dataclass(frozen=True)
class LiveConfig:
    zones_dir: Path
    zones: dict[Name, Zone] = field(default_factory=dict)  # as loaded: no steering stand-ins
    steering_text: dict[Name, str] = field(default_factory=dict)
    steering_file: dict[Name, str] = field(default_factory=dict)
    records: dict[Name, Records] = field(default_factory=dict)  # steered records per zone
    version: int = 0
    # Owners changed since the node adopted `base` (origin -> (base zone, owner keys)),
    # so it can patch its served zone instead of rebuilding it; cleared on adoption.
    pending: dict[Name, tuple[Zone, frozenset[bytes]]] = field(default_factory=dict)

    @classmethod
    def from_loaded(cls, zones_dir: Path, zones: Iterable[Zone], records: Records,
                    version: int) -> "LiveConfig":
        """The configuration as `gslb serve` loaded it from `zones_dir`."""
        by_origin = {zone.origin: zone for zone in zones}
        texts: dict[Name, str] = {}
        files: dict[Name, str] = {}
        for path in files_named(zones_dir, STEERING_SUFFIX):
            origin = steering_origin(path)
            if origin in by_origin and origin not in files:
                files[origin] = str(path)
                texts[origin] = path.read_text(encoding="utf-8")
        grouped: dict[Name, Records] = {}
        for key, record in records.items():
            origin = _zone_of(dns.name.from_text(record.owner), by_origin)
            if origin is not None:
                grouped.setdefault(origin, {})[key] = record
        steered = dict.fromkeys(by_origin, NO_RECORDS)  # the names' hashes come along
        steered.update(grouped)
        return cls(zones_dir, by_origin, texts, files, steered, version)

    def zones_using(self, value: str) -> set[str]:
        """The zones (absolute, lowercase) with a steered member whose value is `value`:
        the zones an override of it changes."""
        wanted = value.lower().rstrip(".")
        return {origin.to_text().lower() for origin, records in self.records.items()
                if any(member.value.lower().rstrip(".") == wanted
                       for record in records.values() for pool in record.pools.values()
                       for member in pool.members)}

    def all_records(self) -> Records:
        merged: Records = {}
        for records in self.records.values():
            merged.update(records)
        return merged

    def zone_path(self, origin: Name) -> Path:
        zone = self.zones.get(origin)
        if zone is not None and zone.source:
            return inside(self.zones_dir, Path(zone.source))
        return inside(self.zones_dir, self.zones_dir / f"{file_stem(origin)}{ZONE_SUFFIX}")

    def steering_path(self, origin: Name) -> Path:
        known = self.steering_file.get(origin)
        return inside(self.zones_dir, Path(known) if known else
                      self.zones_dir / f"{file_stem(origin)}{STEERING_SUFFIX}")

    def apply(self, changes: Iterable[Change], version: int,
              parsed: Mapping[ParsedKey, Parsed] | None = None) -> "LiveConfig":
        """The configuration after one version's `changes`; Invalid when one cannot
        apply."""
        return self.apply_versions([list(changes)], version, parsed)

    def apply_versions(self, rounds: Sequence[Sequence[Change]], version: int,
                       parsed: Mapping[ParsedKey, Parsed] | None = None) -> "LiveConfig":
        """The configuration after consecutive versions' changes (`rounds`, one list per
        version, the last being `version`), in one step: each RRset's last setting is
        written once; each zone's steering text goes through the versions in order (a
        record change is written into the text as the version before left it, so every
        node that starts from the same text ends with the same text) and is parsed
        once. `parsed`: steering another process already brought through these versions
        (`parsed_steering`), so this one need not write and parse it again."""
        zones = dict(self.zones)
        texts = dict(self.steering_text)
        files = dict(self.steering_file)
        records = dict(self.records)
        state = replace(self, zones=zones, steering_text=texts, steering_file=files,
                        records=records, version=version, pending=dict(self.pending))
        blobs: dict[Name, dict[bytes, bytes | None]] = {}  # RRset changes, one copy per zone
        steering: dict[Name, list[list[Change]]] = {}  # each zone's steering changes, per version
        midway: set[Name] = set()  # zones whose steering was settled before a zone change
        for changes in rounds:
            started: set[Name] = set()
            for change in changes:
                origin = dns.name.from_text(change.zone)
                if change.kind == RRSET:
                    zone = zones.get(origin)
                    if zone is None:
                        raise Invalid([FieldProblem("zone", f"no zone {origin}")], 404)
                    key = to_wire(dns.name.from_text(change.name)).lower()
                    changed = blobs.setdefault(origin, {})
                    current = changed[key] if key in changed else zone.records.get(key, b"")
                    changed[key] = owner_blob(current or b"", change.rtype, change.after) or None
                elif change.kind == ZONE:
                    _flush(state, blobs, origin)
                    if origin in steering:
                        _settle(state, origin, steering.pop(origin))
                        midway.add(origin)
                    _apply_zone(state, origin, change.after)
                    state.pending.pop(origin, None)
                else:  # STEERING, STEERED
                    per_version = steering.setdefault(origin, [])
                    if origin not in started:
                        per_version.append([])
                        started.add(origin)
                    per_version[-1].append(change)
        for origin in list(blobs):
            _flush(state, blobs, origin)
        for origin, per_version in steering.items():
            start = (origin.to_text(), digest(self.steering_text.get(origin)), version)
            known = None if origin in midway else (parsed or {}).get(start)
            _settle(state, origin, per_version, known)
        return state


def steering_after(text: str | None, origin: Name, changes: Iterable[Change]) -> str | None:
    """A zone's steering text after one version's steering changes, in order: a whole
    text replaces it (and the record changes before it); the record changes after it
    are written into it together."""
    from gslb.config import steertext  # with ruamel.yaml: for steering edits only

    settings: list[steertext.Setting] = []
    for change in changes:
        if change.kind == STEERING:
            text, settings = change.after, []
        else:
            settings.append((change.name, change.rtype, change.after))
    return steertext.set_records(text, origin, settings) if settings else text


def _flush(state: LiveConfig, blobs: dict[Name, dict[bytes, bytes | None]], origin: Name) -> None:
    """Apply a zone's gathered RRset changes: one copy of its records."""
    changed = blobs.pop(origin, None)
    if not changed:
        return
    zone = state.zones[origin]
    base, keys = state.pending.get(origin, (zone, frozenset()))
    state.zones[origin] = zone.with_records(changed)
    state.pending[origin] = (base, keys | frozenset(changed))


def _apply_zone(state: LiveConfig, origin: Name, text: str | None) -> None:
    path = state.zone_path(origin)
    if text is None:
        state.zones.pop(origin, None)
        state.records.pop(origin, None)
        return
    zone = load_zone_text(text, path)
    if zone.origin != origin:
        raise Invalid([FieldProblem("text", f"the text is zone {zone.origin}, not {origin}")])
    state.zones[origin] = zone
    state.records.setdefault(origin, {})


def _settle(state: LiveConfig, origin: Name, per_version: list[list[Change]],
            known: Parsed | None = None) -> None:
    """Bring a zone's steering through its changes of each version (`steering_after`),
    then parse the text and check it as `gslb check` would; or take `known`, the text
    and records another process made of the same changes."""
    text: str | None
    if known is not None:
        text, found = known
    else:
        text = state.steering_text.get(origin)
        for changes in per_version:
            text = steering_after(text, origin, changes)
    path = str(state.steering_path(origin))
    if text is None:
        state.steering_text.pop(origin, None)
        state.records[origin] = {}
        return
    zone = state.zones.get(origin)
    if zone is None:
        raise Invalid([FieldProblem("zone", f"no zone {origin}")], 404)
    if known is None:
        parsed, problems = steering_from_text(text, path, zone)
        if problems:  # named by their place in the records (the API's client sent JSON)
            from gslb.config.steertext import path_at

            raise Invalid([FieldProblem(path_at(text, p.line) or f"steering (line {p.line})",
                                        p.message) for p in problems])
        found = {(r.owner, r.rdtype): r for r in parsed}
    state.steering_text[origin] = text
    state.steering_file[origin] = path
    state.records[origin] = found


@dataclass(frozen=True)
class Replayed:
    """What `replay` made of some versions: the configuration after those that apply,
    the version after which one is missing (a gap to ask for), and the version that
    could not apply, with why."""

    live: LiveConfig
    gap: int | None = None
    failed: tuple[int, Invalid] | None = None


def replay(live: LiveConfig, versions: Iterable[Version],
           parsed: Mapping[ParsedKey, Parsed] | None = None) -> Replayed:
    """Apply the versions that follow `live`, in order (those it holds already are
    skipped); stop at a gap, or at a version that does not apply. The one way every
    process (a DNS node, the API, a checker agent) takes in versions it is given."""
    batch: list[Version] = []
    gap = None
    for version in versions:
        if version.number <= live.version + len(batch):
            continue
        if version.number != live.version + len(batch) + 1:
            gap = live.version + len(batch)
            break
        batch.append(version)
    for rounds, number in _steps(batch):
        try:
            live = live.apply_versions(rounds, number, parsed)
        except Invalid as exc:
            return Replayed(live, gap, (number, exc))
    return Replayed(live, gap)


def _steps(batch: list[Version]) -> list[tuple[list[list[Change]], int]]:
    """How to apply a batch of consecutive versions: in one step (so a burst of writes
    costs one rebuild), or one step per version when a zone is created or deleted in it
    (the order of a zone and what lives in it then matters)."""
    if len(batch) > 1 and not any(c.kind == ZONE for v in batch for c in v.changes):
        return [([list(v.changes) for v in batch], batch[-1].number)]
    return [([list(v.changes)], v.number) for v in batch]


def digest(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()


def parsed_steering(start: LiveConfig, end: LiveConfig,
                    versions: Iterable[Version]) -> dict[ParsedKey, Parsed]:
    """The steering texts and records these versions took `start` to (`end`, after
    applying them), to send along with the versions: the processes they are fanned out
    to, which hold what `start` held, take them instead of writing each record change
    into the text and parsing it again (tens of milliseconds for a record of hundreds of
    members, in every worker). Keyed by zone, the digest of the text the versions start
    from, and the last version: a process that starts elsewhere works them out itself."""
    zones = {change.zone for version in versions for change in version.changes
             if change.kind in (STEERING, STEERED)}
    found = {}
    for zone in zones:
        origin = dns.name.from_text(zone)
        text = end.steering_text.get(origin)
        if text is not None:
            found[(zone, digest(start.steering_text.get(origin)), end.version)] = (
                text, end.records.get(origin, {}))
    return found


def load_zone_text(text: str, path: Path) -> Zone:
    """Parse and validate a zone file's text as `gslb check` would, before it is
    written to `path`; Invalid lists every problem by line."""
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder) / path.name
        scratch.write_text(text, encoding="utf-8")
        zone, problems = load_zone_file(scratch, includes=False)
    if zone is None:
        raise Invalid([FieldProblem(f"text (line {p.line})", p.message) for p in problems])
    zone.source = str(path)
    return zone


ZONE_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")


def check_zone_name(origin: Name) -> None:
    """A zone the API may create: not the root, and every label letters, digits,
    hyphens or underscores (the name becomes a file name in the zones folder, so no
    `/`, `\\`, dots inside a label or control characters). Invalid otherwise."""
    labels = [label.decode("ascii", "replace").lower() for label in origin.labels[:-1]]
    if not labels:
        raise Invalid([FieldProblem("name", "the root zone cannot be created through the API")])
    for label in labels:
        if not ZONE_LABEL.match(label):
            raise Invalid([FieldProblem("name", f"zone label {label!r}: only letters, digits, "
                                        "hyphens and underscores (a hyphen not first or last)")])


def file_stem(origin: Name) -> str:
    """The zone's file name without its suffix: the name without the final dot."""
    return origin.to_text(omit_final_dot=True)


def inside(folder: Path, path: Path) -> Path:
    """`path`, when it lies in `folder` itself; Invalid otherwise, so no change through
    the API can write or delete a file elsewhere whatever name it carries."""
    # lexically (a zone file the operator linked into the folder stays editable)
    if Path(os.path.abspath(path)).parent != Path(os.path.abspath(folder)):
        raise Invalid([FieldProblem("name", f"{path.name!r} would be a file outside the zones "
                                    "folder")], 422)
    return path


def steering_origin(path: Path) -> Name | None:
    """The zone a steering file is for: its `zone:` key, else its file name."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("zone"):
            return dns.name.from_text(str(data["zone"]))
        return origin_from_path(path)
    except Exception:  # an unreadable file: `gslb check` reports it; the API skips it
        return None


def _zone_of(name: Name, zones: dict[Name, Zone]) -> Name | None:
    while True:
        if name in zones:
            return name
        if len(name) <= 1:
            return None
        name = name.parent()
