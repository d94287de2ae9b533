"""Rewrite one RRset in a zone file's text, keeping every other line as it was written.

The API changes records one RRset at a time; the zone file stays the configuration of
record, so the edit must leave comments, ordering and layout of the records it does not
touch alone. An entry is a record, possibly spread over lines by parentheses, with its
owner written, `@`, or inherited from the entry before it.

The work is in proportion to the RRset, not to the file: the lines where the owner is
written are found by one regular expression over the text (in C), each under the
`$ORIGIN` in force there; then only those lines and the entries that inherit their owner
are read in Python. The entries of the RRset are replaced by the new records, written on
one line each with absolute names, where the first of them was; an entry that inherited
its owner from a removed one gets the owner written out. A SOA whose only change is the
serial keeps its layout: just the serial's digits change.

Zones whose files use `$INCLUDE` or `$GENERATE` are refused: their records are not all
in the text, so an edit could not say where an RRset lives.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from itertools import accumulate

import dns.exception
import dns.name

_TTL = re.compile(r"^\d+[smhdwSMHDW\d]*$")
_CLASSES = {"IN", "CH", "CS", "HS", "ANY", "NONE"}
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s()]+')
_DIRECTIVE = re.compile(r"^\$(ORIGIN|INCLUDE|GENERATE)\b[ \t]*(\S*)", re.M | re.I)


class ZoneTextError(ValueError):
    """The file cannot be edited record by record (the message says why)."""


@dataclass(frozen=True)
class _Entry:
    start: int  # first line index
    end: int  # one past the last line index
    inherited: bool  # the owner field was blank
    rtype: str


@dataclass
class _Text:
    """A zone file's text, split in lines, with where each `$ORIGIN` takes over."""

    text: str
    lower: str  # "\n" + the text in lowercase: offset i here is offset i - 1 in text
    lines: list[str]
    starts: list[int]  # character offset of each line
    origin_at: list[int]  # character offsets where an $ORIGIN takes effect
    origins: list[dns.name.Name]  # the origin in force from each of those offsets

    @classmethod
    def read(cls, text: str, origin: dns.name.Name) -> "_Text":
        lines = text.splitlines(keepends=True)
        lower = "\n" + text.lower()  # str.find on it is C speed; case does not matter here
        at, origins = [0], [origin]
        for offset in sorted(_line_starts(lower, ("$origin", "$include", "$generate"))):
            match = _DIRECTIVE.match(text, offset)
            if match is None:
                continue
            directive = match.group(1).upper()
            if directive != "ORIGIN":
                raise ZoneTextError(f"the zone file uses ${directive}: edit it by hand, "
                                    "the API cannot tell which file holds a record")
            try:
                origins.append(dns.name.from_text(match.group(2), origins[-1]))
            except dns.exception.DNSException as exc:
                raise ZoneTextError(f"cannot read the zone file: {exc}") from None
            at.append(offset)
        return cls(text, lower, lines, [0, *accumulate(map(len, lines))], at, origins)

    def origin_of(self, offset: int) -> dns.name.Name:
        return self.origins[bisect.bisect_right(self.origin_at, offset) - 1]

    def groups(self, owner: dns.name.Name) -> list[list[_Entry]]:
        """Each place the owner is written: that entry and the ones inheriting it."""
        spellings = {owner.to_text().lower()}
        for context in self.origins:
            if owner == context:
                spellings.add("@")
            elif owner.is_subdomain(context):
                spellings.add(owner.relativize(context).to_text().lower())
        found = []
        for offset in sorted(_line_starts(self.lower, spellings)):
            end = self.text.find(" ", offset)
            written = self.text[offset:min(x for x in (end, self.text.find("\t", offset),
                                                        self.text.find("(", offset), len(self.text))
                                           if x >= 0)]
            context = self.origin_of(offset)
            name = context if written == "@" else dns.name.from_text(written, context)
            if name == owner:
                found.append(self._group(bisect.bisect_right(self.starts, offset) - 1))
        return found

    def _group(self, index: int) -> list[_Entry]:
        group = [self._entry(index, False)]
        index = group[0].end
        while index < len(self.lines):
            line = self.lines[index]
            if not _code(line).strip():
                index += 1
                continue
            if not line[:1].isspace():
                break
            group.append(self._entry(index, True))
            index = group[-1].end
        return [e for e in group if e.rtype]

    def _entry(self, start: int, inherited: bool) -> _Entry:
        code = _code(self.lines[start])
        parts = [code]
        depth = _depth(code)
        index = start + 1
        while depth > 0 and index < len(self.lines):
            more = _code(self.lines[index])
            depth += _depth(more)
            parts.append(more)
            index += 1
        tokens = _TOKEN.findall(" ".join(parts))[0 if inherited else 1:]
        while tokens and (_TTL.match(tokens[0]) or tokens[0].upper() in _CLASSES
                          or tokens[0].upper().startswith("CLASS")):
            tokens.pop(0)
        return _Entry(start, index, inherited, tokens[0].upper() if tokens else "")


def _line_starts(lower: str, words: set[str] | tuple[str, ...]) -> set[int]:
    """Offsets (in the text) of the lines that start with one of `words` followed by a
    blank or "(" (`lower` is "\n" + the lowercased text)."""
    found = set()
    for word in words:
        needle = "\n" + word
        index = lower.find(needle)
        while index >= 0:
            after = index + len(needle)
            if after < len(lower) and lower[after] in " \t(":
                found.add(index)
            index = lower.find(needle, index + 1)
    return found


def _code(line: str) -> str:
    """The line without its comment (a `;` outside quotes)."""
    if ";" not in line:
        return line
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
    if "(" not in code and ")" not in code:
        return 0
    return sum(1 if t == "(" else -1 for t in re.findall(r'"(?:[^"\\]|\\.)*"|([()])', code) if t)


def record_lines(owner: dns.name.Name, rtype: str, ttl: int, rdata: list[str]) -> list[str]:
    """The new records, one line each, absolute names (they do not depend on `$ORIGIN`)."""
    return [f"{owner.to_text()} {ttl} IN {rtype} {text}\n" for text in rdata]


def replace_rrset(text: str, origin: dns.name.Name, owner: dns.name.Name, rtype: str,
                  new_lines: list[str]) -> str:
    """`text` with every record of (`owner`, `rtype`) replaced by `new_lines` (none:
    the RRset is removed). ZoneTextError when the file cannot be edited this way."""
    zone = _Text.read(text, origin)
    groups = zone.groups(owner)
    matches = {e.start: e for group in groups for e in group if e.rtype == rtype}
    if not matches:
        return text + ("" if not text or text.endswith("\n") else "\n") + "".join(new_lines)
    out = list(zone.lines)
    first = min(matches)
    for entry in matches.values():
        for index in range(entry.start, entry.end):
            out[index] = ""
    if new_lines:
        out[first] = "".join(new_lines)
    for group in groups:
        head = group[0]
        if head.start not in matches or (new_lines and head.start == first):
            continue
        kept = [e for e in group[1:] if e.start not in matches]
        if kept:  # it inherited its owner from a removed record: write the owner out
            out[kept[0].start] = owner.to_text() + out[kept[0].start]
    return "".join(out)


def replace_serial(text: str, origin: dns.name.Name, old: int, new: int) -> str | None:
    """The text with the apex SOA's serial `old` written as `new`, layout kept; None when
    the SOA cannot be found that way (the caller then rewrites the whole record)."""
    try:
        zone = _Text.read(text, origin)
        soa = [e for group in zone.groups(origin) for e in group if e.rtype == "SOA"]
    except ZoneTextError:
        return None
    if len(soa) != 1:
        return None
    seen_type = False
    after_type = 0
    lines = list(zone.lines)
    for index in range(soa[0].start, soa[0].end):
        for match in _TOKEN.finditer(_code(lines[index])):
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
