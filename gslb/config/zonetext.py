"""Rewrite one RRset in a zone file's text, keeping every other line as it was written.

The API changes records one RRset at a time; the zone file stays the configuration of
record, so the edit must leave comments, ordering and layout of the records it does not
touch alone. The file is scanned entry by entry (an entry is a record, possibly spread
over lines by parentheses), knowing each entry's owner (written, `@`, or inherited from
the previous entry) and type. The entries of the RRset are replaced by the new records,
written on one line each with absolute names, where the first of them was; an entry that
inherited its owner from a removed one gets the owner written out. A SOA whose only
change is the serial keeps its layout: just the serial's digits change.

Zones whose files use `$INCLUDE` or `$GENERATE` are refused: their records are not all
in the text, so an edit could not say where an RRset lives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype

_TTL = re.compile(r"^\d+[smhdwSMHDW\d]*$")
_CLASSES = {"IN", "CH", "CS", "HS", "ANY", "NONE"}
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s()]+')


class ZoneTextError(ValueError):
    """The file cannot be edited record by record (the message says why)."""


@dataclass
class _Entry:
    start: int  # first line index
    end: int  # one past the last line index
    owner: dns.name.Name
    inherited: bool  # the owner field was blank
    rtype: str


def _code(line: str) -> str:
    """The line without its comment (a `;` outside quotes)."""
    quoted = False
    escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            return line[:index]
    return line


def _depth(code: str) -> int:
    return sum(1 if t == "(" else -1 for t in re.findall(r'"(?:[^"\\]|\\.)*"|([()])', code) if t)


def _entries(lines: list[str], origin: dns.name.Name) -> list[_Entry]:
    entries: list[_Entry] = []
    current = origin
    owner: dns.name.Name | None = None
    index = 0
    while index < len(lines):
        start = index
        code = _code(lines[index])
        depth = _depth(code)
        parts = [code]
        index += 1
        while depth > 0 and index < len(lines):
            more = _code(lines[index])
            depth += _depth(more)
            parts.append(more)
            index += 1
        if not code.strip():
            continue
        tokens = _TOKEN.findall(" ".join(parts))
        if code.startswith("$"):
            directive = tokens[0].upper()
            if directive in ("$INCLUDE", "$GENERATE"):
                raise ZoneTextError(f"the zone file uses {directive}: edit it by hand, "
                                    "the API cannot tell which file holds a record")
            if directive == "$ORIGIN" and len(tokens) > 1:
                current = dns.name.from_text(tokens[1], current)
            continue
        inherited = code[:1].isspace()
        if not inherited:
            owner = current if tokens[0] == "@" else dns.name.from_text(tokens[0], current)
            tokens = tokens[1:]
        if owner is None:
            raise ZoneTextError(f"line {start + 1}: a record with no owner")
        rest = [t for t in tokens]
        while rest and (_TTL.match(rest[0]) or rest[0].upper() in _CLASSES
                        or rest[0].upper().startswith("CLASS")):
            rest.pop(0)
        if rest:
            entries.append(_Entry(start, index, owner, inherited, rest[0].upper()))
    return entries


def record_lines(owner: dns.name.Name, rtype: str, ttl: int, rdata: list[str]) -> list[str]:
    """The new records, one line each, absolute names (they do not depend on `$ORIGIN`)."""
    return [f"{owner.to_text()} {ttl} IN {rtype} {text}\n" for text in rdata]


def replace_rrset(text: str, origin: dns.name.Name, owner: dns.name.Name, rtype: str,
                  new_lines: list[str]) -> str:
    """`text` with every record of (`owner`, `rtype`) replaced by `new_lines` (none:
    the RRset is removed). ZoneTextError when the file cannot be edited this way."""
    lines = text.splitlines(keepends=True)
    try:
        entries = _entries(lines, origin)
    except dns.exception.DNSException as exc:
        raise ZoneTextError(f"cannot read the zone file: {exc}") from None
    matches = [e for e in entries if e.owner == owner and e.rtype == rtype]
    if not matches:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        return "".join(lines + new_lines)
    removed = {i for e in matches for i in range(e.start, e.end)}
    starts = {e.start: e for e in entries if e not in matches}
    out: list[str] = []
    last_owner: dns.name.Name | None = None
    for index, line in enumerate(lines):
        if index == matches[0].start and new_lines:
            out.extend(new_lines)
            last_owner = owner
        if index in removed:
            continue
        entry = starts.get(index)
        if entry is not None:
            if entry.inherited and last_owner != entry.owner:
                line = entry.owner.to_text() + line  # it inherited from a removed record
            last_owner = entry.owner
        out.append(line)
    return "".join(out)


def replace_serial(text: str, origin: dns.name.Name, old: int, new: int) -> str | None:
    """The text with the apex SOA's serial `old` written as `new`, layout kept; None when
    the SOA cannot be found that way (the caller then rewrites the whole record)."""
    lines = text.splitlines(keepends=True)
    try:
        entries = _entries(lines, origin)
    except dns.exception.DNSException:
        return None
    soa = [e for e in entries if e.owner == origin and e.rtype == "SOA"]
    if len(soa) != 1:
        return None
    seen_type = False
    after_type = 0
    for index in range(soa[0].start, soa[0].end):
        code = _code(lines[index])
        for match in _TOKEN.finditer(code):
            token = match.group(0)
            if not seen_type:
                seen_type = token.upper() == "SOA"
                continue
            after_type += 1
            if after_type == 3:
                if token != str(old):
                    return None
                line = lines[index]
                lines[index] = line[: match.start()] + str(new) + line[match.end():]
                return "".join(lines)
    return None
