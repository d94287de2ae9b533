"""A fast RFC 1035 master-file parser that never builds a dnspython object per record.

Large zones are mostly A, AAAA, CNAME, NS, MX, SRV and PTR lines; those are turned into
wire-format rdata by hand. Every other type, names with escapes, and `$GENERATE` go
through dnspython, which stays the reference for rdata syntax. Problems are collected
per line (`file:line: message`) and parsing goes on, so one run reports them all.

The parser feeds a `sink` callable `(owner_wire, rdtype, ttl, rdata_wire, line)`, so a
million-record zone is never held as a list of records.
"""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.ttl

Sink = Callable[[bytes, int, int, bytes, int], None]

_TTL = re.compile(r"^[0-9]+[0-9smhdwSMHDW]*$")
_CLASSES = {"IN", "CH", "HS", "CS", "NONE", "ANY"}
_NAME_RDATA = {dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR, dns.rdatatype.DNAME}
_U16 = struct.Struct("!H")
_SRV = struct.Struct("!HHH")


class LineError(ValueError):
    """A problem with one line; parsing continues with the next."""


@dataclass
class ParseState:
    """What carries from one line to the next (RFC 1035 section 5.1)."""

    file: str
    origin: dns.name.Name
    last_owner: bytes | None = None
    default_ttl: int | None = None
    last_ttl: int | None = None
    problems: list[tuple[str, int, str]] = field(default_factory=list)
    out_of_zone: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def origin_wire(self) -> bytes:
        return self.origin.to_wire()


def parse_file(path: Path, state: ParseState, zone_origin: bytes, sink: Sink, depth: int = 0) -> None:
    """Parse one file (and its `$INCLUDE`s) into `sink`; problems land in `state`."""
    try:
        with open(path, encoding="utf-8") as handle:
            origin_wire = state.origin_wire
            lines = _fast_lines(handle, state, zone_origin, sink)
            for line_no, indented, content in logical_lines(lines):
                try:
                    if content.startswith("$"):
                        _directive(content, path, line_no, state, zone_origin, sink, depth)
                        origin_wire = state.origin_wire
                        continue
                    _record(content, indented, line_no, state, origin_wire, zone_origin, sink)
                except LineError as exc:
                    state.problems.append((state.file, line_no, str(exc)))
    except (OSError, UnicodeDecodeError) as exc:
        state.problems.append((state.file, 1, f"cannot read {path}: {exc}"))


_SIMPLE_ADDRESS = re.compile(
    r"([A-Za-z0-9_*-]{1,63})[ \t]+(?:([0-9]{1,9})[ \t]+)?(?:IN[ \t]+)?(A|AAAA)[ \t]+"
    r"([0-9A-Fa-f.:]+)[ \t]*\r?\n?$"
)


def _fast_lines(handle: Iterable[str], state: ParseState, zone_origin: bytes,
                sink: Sink) -> Iterator[tuple[int, str]]:
    """Take `label [ttl] [IN] A|AAAA address` lines straight to the sink.

    A million-record zone is almost all such lines, and the general path costs twice as
    much per line. Every other line is passed on with its number."""
    inet_pton = socket.inet_pton
    match = _SIMPLE_ADDRESS.match
    families = {"A": (1, socket.AF_INET), "AAAA": (28, socket.AF_INET6)}
    for line_no, raw in enumerate(handle, 1):
        found = match(raw)
        if found is None or state.origin_wire != zone_origin:
            yield line_no, raw
            continue
        owner_text, ttl_text, kind, address = found.groups()
        if ttl_text is not None:
            ttl = state.last_ttl = int(ttl_text)
        elif state.default_ttl is not None:
            ttl = state.default_ttl
        else:
            yield line_no, raw
            continue
        rdtype, family = families[kind]
        try:
            rdata = inet_pton(family, address)
        except OSError:
            yield line_no, raw  # the general path words the error
            continue
        owner = bytes((len(owner_text),)) + owner_text.encode() + zone_origin
        state.last_owner = owner
        sink(owner, rdtype, ttl, rdata, line_no)


def logical_lines(numbered: Iterator[tuple[int, str]]) -> Iterator[tuple[int, bool, str]]:
    """(line number, starts indented, content) with comments and parentheses folded away."""
    for line_no, raw in numbered:
        if '"' not in raw and ";" not in raw and "(" not in raw and "\\" not in raw:
            content = raw.strip()
            if content:
                yield line_no, raw[0] in " \t", content
            continue
        indented = raw[:1] in " \t"
        out: list[str] = []
        depth = 0
        quoted = False
        while True:
            position = 0
            length = len(raw)
            while position < length:
                char = raw[position]
                if char == "\\" and position + 1 < length:
                    out.append(raw[position : position + 2])
                    position += 2
                    continue
                if char == '"':
                    quoted = not quoted
                elif not quoted:
                    if char == ";":
                        break
                    if char in "()":
                        depth += 1 if char == "(" else -1
                        char = " "
                elif char == "\n":
                    char = " "
                out.append(char)
                position += 1
            if depth <= 0 and not quoted:
                break
            following = next(numbered, None)
            if following is None:
                break
            out.append(" ")
            raw = following[1]
        content = "".join(out).strip()
        if content:
            yield line_no, indented, content


def _directive(content: str, path: Path, line_no: int, state: ParseState,
               zone_origin: bytes, sink: Sink, depth: int) -> None:
    parts = content.split()
    keyword = parts[0].upper()
    if keyword == "$ORIGIN" and len(parts) == 2:
        state.origin = _name(parts[1], state.origin)
    elif keyword == "$TTL" and len(parts) == 2:
        state.default_ttl = _ttl(parts[1])
    elif keyword == "$INCLUDE" and len(parts) in (2, 3):
        if depth >= 8:
            raise LineError("$INCLUDE nested too deeply")
        target = Path(parts[1]) if Path(parts[1]).is_absolute() else path.parent / parts[1]
        saved_origin, saved_owner = state.origin, state.last_owner
        if len(parts) == 3:
            state.origin = _name(parts[2], state.origin)
        parse_file(target, state, zone_origin, sink, depth + 1)
        state.origin, state.last_owner = saved_origin, saved_owner
    elif keyword == "$GENERATE":
        _generate(content, line_no, state, zone_origin, sink)
    else:
        raise LineError(f"unknown or malformed directive: {content}")


def _record(content: str, indented: bool, line_no: int, state: ParseState,
            origin_wire: bytes, zone_origin: bytes, sink: Sink) -> None:
    """One record line: [owner] [ttl] [class] type rdata (TTL and class in either order)."""
    tokens = content.split()
    index = 0
    if indented:
        owner = state.last_owner
        if owner is None:
            raise LineError("record has no owner name and there is no previous one")
    else:
        owner = _owner(tokens[0], state, origin_wire, zone_origin, line_no)
        state.last_owner = owner
        index = 1
    ttl = None
    rdtype = None
    count = len(tokens)
    while index < count:
        token = tokens[index]
        index += 1
        if token in _CLASS_TOKENS:
            if token.upper() != "IN":
                raise LineError(f"class {token.upper()} is not supported; only IN")
            continue
        rdtype = _TYPES.get(token)
        if rdtype is not None:
            break
        if ttl is None and token[0].isdigit():
            ttl = int(token) if token.isdigit() else _ttl(token)
            continue
        rdtype = _type(token)
        break
    if rdtype is None:
        raise LineError("record has no type")
    if owner is _OUTSIDE:
        return
    if '"' in content:  # keep the spacing inside quoted strings
        rest = content
        for _ in range(index):
            rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
        rdata = _rdata(rdtype, tokens[index:], rest, state.origin, origin_wire)
    else:
        rdata = _rdata(rdtype, tokens[index:], None, state.origin, origin_wire)
    if ttl is None:
        ttl = _implicit_ttl(state, rdtype, rdata)
    else:
        if ttl > 0x7FFFFFFF:
            raise LineError(f"TTL {ttl} is above 2147483647 (RFC 2181 section 8)")
        state.last_ttl = ttl
    sink(owner, rdtype, ttl, rdata, line_no)


_OUTSIDE = b"outside"  # sentinel owner: the line is outside the zone, already reported
_CLASS_TOKENS = {c for name in _CLASSES for c in (name, name.lower(), name.capitalize())}
_TYPES: dict[str, int] = {}


def _type(token: str) -> int:
    """A type mnemonic or TYPEnnn, remembered per spelling for the next lines."""
    try:
        rdtype = dns.rdatatype.from_text(token)
    except dns.exception.DNSException:
        raise LineError(f"unknown record type {token!r}") from None
    _TYPES[token] = rdtype
    return rdtype


def _owner(token: str, state: ParseState, origin_wire: bytes, zone_origin: bytes,
           line_no: int) -> bytes:
    """The owner as wire bytes; `_OUTSIDE` (after reporting it) when outside the zone."""
    if token == "@":
        owner = origin_wire
    elif "." not in token and "\\" not in token and len(token) < 64 and token.isascii():
        owner = bytes((len(token),)) + token.encode() + origin_wire
        if origin_wire == zone_origin:
            return owner
    else:
        owner = _name_wire(token, state.origin, origin_wire)
    if _is_subdomain(owner, zone_origin):
        return owner
    state.out_of_zone.append((state.file, line_no, _text(owner)))
    return _OUTSIDE


def _split1(text: str) -> tuple[str, str, str]:
    parts = text.split(None, 1)
    return (parts[0], " ", parts[1] if len(parts) > 1 else "")


def _implicit_ttl(state: ParseState, rdtype: int, rdata: bytes) -> int:
    """$TTL, else the previous record's TTL, else (for the SOA) its MINIMUM field."""
    if state.default_ttl is not None:
        return state.default_ttl
    if state.last_ttl is not None:
        return state.last_ttl
    if rdtype == dns.rdatatype.SOA:
        minimum = struct.unpack("!I", rdata[-4:])[0]
        state.default_ttl = minimum
        return minimum
    raise LineError("no TTL given and no $TTL before this record")


def _rdata(rdtype: int, fields: list[str], raw: str | None, origin: dns.name.Name,
           origin_wire: bytes) -> bytes:
    """Wire-format rdata; the common types by hand, the rest through dnspython."""
    try:
        if rdtype == dns.rdatatype.A and len(fields) == 1:
            return socket.inet_pton(socket.AF_INET, fields[0])
        if rdtype == dns.rdatatype.AAAA and len(fields) == 1:
            return socket.inet_pton(socket.AF_INET6, fields[0])
        if rdtype in _NAME_RDATA and len(fields) == 1:
            return _name_wire(fields[0], origin, origin_wire)
        if rdtype == dns.rdatatype.MX and len(fields) == 2:
            return _U16.pack(int(fields[0])) + _name_wire(fields[1], origin, origin_wire)
        if rdtype == dns.rdatatype.SRV and len(fields) == 4:
            numbers = _SRV.pack(int(fields[0]), int(fields[1]), int(fields[2]))
            return numbers + _name_wire(fields[3], origin, origin_wire)
    except (OSError, ValueError, struct.error, LineError):
        pass  # let dnspython produce the precise error message below
    text = raw if raw is not None else " ".join(fields)
    try:
        rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=origin, relativize=False)
        return rd.to_wire()
    except (dns.exception.DNSException, ValueError, struct.error) as exc:
        raise LineError(f"bad {dns.rdatatype.to_text(rdtype)} rdata: {exc}") from None


def _name_wire(token: str, origin: dns.name.Name, origin_wire: bytes) -> bytes:
    """A master-file name as wire bytes (case kept); escapes and IDNs via dnspython."""
    if token == "@":
        return origin_wire
    if "\\" in token or not token.isascii():
        return _name(token, origin).to_wire()
    absolute = token.endswith(".")
    body = token[:-1] if absolute else token
    out = bytearray()
    if body:
        for label in body.split("."):
            if not label or len(label) > 63:
                raise LineError(f"bad name {token!r}: empty or over-long label")
            out.append(len(label))
            out += label.encode("ascii")
    elif not absolute:
        raise LineError("empty name")
    if absolute:
        out.append(0)
    else:
        out += origin_wire
    if len(out) > 255:
        raise LineError(f"name {token!r} is longer than 255 octets")
    return bytes(out)


def _name(token: str, origin: dns.name.Name) -> dns.name.Name:
    try:
        return dns.name.from_text(token, origin)
    except dns.exception.DNSException as exc:
        raise LineError(f"bad name {token!r}: {exc}") from None


def _ttl(token: str) -> int:
    try:
        return dns.ttl.from_text(token)
    except dns.exception.DNSException as exc:
        raise LineError(f"bad TTL {token!r}: {exc}") from None


def _is_subdomain(name: bytes, origin: bytes) -> bool:
    if not name.lower().endswith(origin.lower()):
        return False
    if len(name) == len(origin):
        return True
    offset = 0  # the suffix must start on a label boundary
    while offset < len(name) - len(origin):
        offset += name[offset] + 1
    return offset == len(name) - len(origin)


def _text(name_wire: bytes) -> str:
    return dns.name.from_wire(name_wire, 0)[0].to_text()


def _generate(content: str, line_no: int, state: ParseState, zone_origin: bytes, sink: Sink) -> None:
    """`$GENERATE` through dnspython's reader, which implements its full syntax."""
    import dns.tokenizer
    import dns.zonefile

    collected: list[tuple[dns.name.Name, int, dns.rdata.Rdata]] = []

    class _Txn:
        class manager:  # noqa: N801 - the reader reads txn.manager.origin_information()
            @staticmethod
            def origin_information():
                return state.origin, False, state.origin

            @staticmethod
            def get_class():
                return dns.rdataclass.IN

        @staticmethod
        def check_put_rdataset(check):
            pass

        @staticmethod
        def add(name, ttl, rd):
            collected.append((name, ttl, rd))

        @staticmethod
        def _set_origin(origin):
            pass

    ttl_line = f"$TTL {state.default_ttl}\n" if state.default_ttl is not None else ""
    text = f"$ORIGIN {state.origin}\n{ttl_line}{content}\n"
    try:
        reader = dns.zonefile.Reader(dns.tokenizer.Tokenizer(text), dns.rdataclass.IN, _Txn)
        reader.read()
    except dns.exception.DNSException as exc:
        detail = str(exc).split(": ", 1)[-1]
        raise LineError(f"bad $GENERATE: {detail}") from None
    for name, ttl, rd in collected:
        owner = name.to_wire()
        if not _is_subdomain(owner, zone_origin):
            state.out_of_zone.append((state.file, line_no, name.to_text()))
            continue
        sink(owner, rd.rdtype, ttl, rd.to_wire(), line_no)
