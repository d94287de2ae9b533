"""A fast RFC 1035 master-file parser that never builds a dnspython object per record.

Large zones are mostly A, AAAA, CNAME, NS, MX, SRV and PTR lines; those are turned into
wire-format rdata by hand. Every other type, names with escapes, and `$GENERATE` go
through dnspython, which stays the reference for rdata syntax where it reads what Knot
DNS and NSD read (`rdata_from_text`: an IPSECKEY without a key is read here). Problems are collected
per line (`file:line: message`) and parsing goes on, so one run reports them all.

The parser feeds a `sink` callable `(owner_wire, rdtype, ttl, rdata_wire, line)`, so a
million-record zone is never held as a list of records. When the state names a
`ZoneBuilder`, plain A and AAAA lines go straight into it; with the C extension
(`gslb.load._zonelines`) built, so do plain single-line PTR and MX records, and plain NS,
CNAME and SOA records go to the sink without the general path.
"""

from __future__ import annotations

import base64
import itertools
import logging
import re
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable, Iterator, TextIO

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.ANY.LOC import LOC
from dns.rdtypes.IN.IPSECKEY import IPSECKEY, Gateway
import dns.tokenizer
import dns.ttl

from gslb.dns.zone import ZoneBuilder, to_wire

Sink = Callable[[bytes, int, int, bytes, int], object]  # what it returns is not used

_CLASSES = {"IN", "CH", "HS", "CS", "NONE", "ANY"}
_NAME_RDATA = {dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR, dns.rdatatype.DNAME}
_U16 = struct.Struct("!H")
_SRV = struct.Struct("!HHH")
# Zone files are read in large blocks. In 8 KiB ones (the text layer's default) the
# loading thread gives up the GIL for a read every few hundred lines and takes it
# straight back, so a thread waiting for the GIL (the event loop stopping the server, a
# Python UDP loop answering) never sees a switch interval pass unused: it starved for
# up to seconds while a large zone loaded.
READ_BLOCK = 4 << 20
log = logging.getLogger(__name__)


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
    default_from_soa: bool = False  # the default TTL is the SOA's MINIMUM, not a $TTL
    # takes the fast path's records, not `sink`; the native one also tells `fast_note`
    # (owner, rdtype, rdata, line) of its SOA, NS and CNAME records, the ones a loader notes
    fast_builder: ZoneBuilder | None = None
    fast_note: Callable[[bytes, int, bytes, int], None] | None = None
    file_changed: Callable[[str], None] | None = None  # told when `file` changes ($INCLUDE)
    includes: bool = True  # $INCLUDE is followed (zone files); not in text from the API
    # absolute names already read, by their text: the loader's origin, which the file's
    # own `$ORIGIN` line names again
    known: dict[str, dns.name.Name] = field(default_factory=dict)
    continuing: bool = False  # inside parentheses that span lines
    _wire_of: tuple[dns.name.Name | None, bytes] = (None, b"")
    _inside_of: tuple[bytes | None, bool] = (None, False)  # origin wire, inside the zone

    @property
    def origin_wire(self) -> bytes:
        """The current origin in wire form (remembered until the origin changes)."""
        origin, wire = self._wire_of
        if origin is not self.origin:
            wire = to_wire(self.origin)
            self._wire_of = (self.origin, wire)
        return wire


def parse_file(path: Path | str, state: ParseState, zone_origin: bytes, sink: Sink, depth: int = 0,
               opened: tuple[TextIO, list[str]] | None = None) -> None:
    """Parse one file (and its `$INCLUDE`s) into `sink`; problems land in `state`.

    A file that cannot be opened raises OSError (the caller words it: the zone file
    itself, or the `$INCLUDE` line); one that stops decoding is a problem at line 1.
    `opened` is the file already open and the lines read from it so far (the loader
    reads its head for the origin): it is read on, not opened a second time."""
    with (open(path, encoding="utf-8", buffering=READ_BLOCK) if opened is None
          else opened[0]) as handle:
        handle._CHUNK_SIZE = READ_BLOCK  # type: ignore[attr-defined]  # the text layer's read size
        handle_lines = handle if opened is None else itertools.chain(opened[1], handle)
        try:
            origin_wire = state.origin_wire
            builder, note, scanner = state.fast_builder, state.fast_note, native_scanner()
            if builder is not None and note is not None and scanner is not None:
                lines = _native_lines(scanner, handle_lines, state, zone_origin, builder, note)
            else:
                lines = _fast_lines(handle_lines, state, zone_origin,
                                    builder.add if builder is not None else sink)
            for line_no, indented, content in logical_lines(lines, state):
                try:
                    if content is None:
                        raise LineError("newline in quoted string")
                    if content.startswith("$"):
                        _directive(content, path, line_no, state, zone_origin, sink, depth)
                        origin_wire = state.origin_wire
                        continue
                    _record(content, indented, line_no, state, origin_wire, zone_origin, sink)
                except LineError as exc:
                    state.problems.append((state.file, line_no, str(exc)))
        except (OSError, UnicodeDecodeError) as exc:
            state.problems.append((state.file, 1, f"cannot read zone file: {exc}"))


_LABEL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*"
_ADDRESS_TYPES = {"A": (1, socket.AF_INET), "AAAA": (28, socket.AF_INET6)}


_PREFIX = [bytes((length,)) for length in range(64)]


def _fast_lines(handle: Iterable[str], state: ParseState, zone_origin: bytes,
                sink: Sink) -> Iterator[tuple[int, str]]:
    """Take `label [ttl] [IN] A|AAAA address` lines straight to the sink.

    A million-record zone is almost all such lines, and the general path costs several
    times as much per line. A line qualifies only when every token is exactly what the
    general path would read the same way: a plain ASCII label (no dot, escape, quote,
    `@`, `$` or `;`), an all-digit TTL, `IN`, `A` or `AAAA`, and an address `inet_pton`
    accepts (which rejects any trailing comment or parenthesis). Every other line is
    passed on with its number. The parse state only changes while a line is passed on,
    so what the fast path needs of it is read again after each `yield`."""
    inet_pton = socket.inet_pton
    types = _ADDRESS_TYPES
    label_chars = _LABEL_CHARS
    prefix = _PREFIX
    base, default_ttl = _fast_state(state, zone_origin)
    last_owner = last_ttl = None  # written back to `state` before a line is passed on
    for line_no, raw in enumerate(handle, 1):
        parts = raw.split()
        count = len(parts)
        if 2 < count < 6 and parts[-2] in types and base is not None and raw.isascii():
            owner_text = parts[0]
            ttl_text = None
            if count == 4:
                if parts[1] != "IN":
                    ttl_text = parts[1]
            elif count == 5:
                if parts[2] == "IN":
                    ttl_text = parts[1]
                elif parts[1] == "IN":
                    ttl_text = parts[2]
                else:
                    owner_text = ""
            if ttl_text is None:
                ttl = default_ttl
            elif len(ttl_text) < 10 and ttl_text.isdigit():
                ttl = last_ttl = int(ttl_text)
            else:
                ttl = None
            if (ttl is not None and raw[0] not in " \t" and len(owner_text) < 64
                    and len(owner_text) + len(base) < 255  # else the general path refuses it
                    and (owner_text.isalnum() or owner_text and not owner_text.strip(label_chars))):
                rdtype, family = types[parts[-2]]
                try:
                    rdata = inet_pton(family, parts[-1])
                except (OSError, ValueError):  # ValueError: a NUL in the text
                    rdata = None  # the general path words the error
                if rdata is not None:
                    last_owner = prefix[len(owner_text)] + owner_text.encode() + base
                    sink(last_owner, rdtype, ttl, rdata, line_no)
                    continue
        if last_owner is not None:
            state.last_owner = last_owner
            last_owner = None
        if last_ttl is not None:
            state.last_ttl = last_ttl
            last_ttl = None
        yield line_no, raw
        base, default_ttl = _fast_state(state, zone_origin)
    if last_owner is not None:
        state.last_owner = last_owner
    if last_ttl is not None:
        state.last_ttl = last_ttl


def _native_lines(scanner: ModuleType, handle: Iterable[str], state: ParseState,
                  zone_origin: bytes, builder: ZoneBuilder,
                  note: Callable[[bytes, int, bytes, int], None]) -> Iterator[tuple[int, str]]:
    """`_fast_lines` with its loop in C (`gslb.load._zonelines`), which also takes plain
    `@` owners and NS, CNAME, PTR, MX and SOA lines: what it takes ends as the general
    path would leave it (builder, `state`; `note` told of its SOA, NS and CNAME records,
    which the general path hands its sink), the other lines are passed on."""
    lines = iter(handle)
    line_no = 0
    while True:
        base, default_ttl = _fast_state(state, zone_origin)
        line_no, raw, last_owner, last_ttl = scanner.scan(lines, line_no, base, default_ttl,
                                                          builder, note)
        if last_owner is not None:
            state.last_owner = last_owner
        if last_ttl is not None:
            state.last_ttl = last_ttl
        if raw is None:
            return
        yield line_no, raw


_scanner_module: ModuleType | None = None
_scanner_probed = False


def native_scanner() -> ModuleType | None:
    """The C extension, or None (the reason logged once) when it is not built."""
    global _scanner_module, _scanner_probed
    if not _scanner_probed:
        _scanner_probed = True
        try:
            from gslb.load import _zonelines  # type: ignore[attr-defined]
            _scanner_module = _zonelines
        except ImportError as exc:
            log.warning("native zone-line scanner unavailable (%s); zone lines are read "
                        "in Python", exc)
    return _scanner_module


def _fast_state(state: ParseState, zone_origin: bytes) -> tuple[bytes | None, int | None]:
    """The origin's wire form when the fast path may run (inside the zone, not in the
    middle of a parenthesised record), and the TTL of a record that states none when
    that is simply `$TTL`."""
    if state.continuing:
        return None, None
    origin_wire = state.origin_wire
    if state._inside_of[0] is not origin_wire:
        state._inside_of = (origin_wire, _is_subdomain(origin_wire, zone_origin))
    base = origin_wire if state._inside_of[1] else None
    default_ttl = state.default_ttl if not state.default_from_soa else None
    return base, default_ttl


def logical_lines(numbered: Iterator[tuple[int, str]],
                  state: ParseState | None = None) -> Iterator[tuple[int, bool, str | None]]:
    """(line number, starts indented, content) with comments and parentheses folded away.

    Content None means the line ends inside a quoted string, which RFC 1035 does not
    allow; the next line starts afresh. While a parenthesis is open, `state.continuing`
    is set so the fast path leaves the continuation lines alone."""
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
            length = len(raw.rstrip("\r\n"))
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
                out.append(char)
                position += 1
            if quoted or depth <= 0:
                break
            if state is not None:
                state.continuing = True
            following = next(numbered, None)
            if state is not None:
                state.continuing = False
            if following is None:
                break
            out.append(" ")
            raw = following[1]
        if quoted:
            yield line_no, indented, None
            continue
        content = "".join(out).strip()
        if content:
            yield line_no, indented, content


def directive_fields(content: str) -> list[str]:
    """A directive's fields; a quoted one (`$INCLUDE "my file.zone"`) loses its quotes
    and keeps its spaces, as BIND and Knot read it."""
    if '"' not in content:
        return content.split()
    return [re.sub(r"\\(.)", r"\1", quoted) if quoted or not plain else plain
            for quoted, plain in _FIELD.findall(content)]


_FIELD = re.compile(r'"((?:[^"\\]|\\.)*)"|([^\s"]+)')


def _directive(content: str, path: Path | str, line_no: int, state: ParseState,
               zone_origin: bytes, sink: Sink, depth: int) -> None:
    parts = directive_fields(content)
    keyword = parts[0].upper()
    if keyword == "$ORIGIN" and len(parts) == 2:
        state.origin = state.known.get(parts[1]) or _name(parts[1], state.origin)
    elif keyword == "$TTL" and len(parts) == 2:
        state.default_ttl = _ttl(parts[1])
        state.default_from_soa = False
    elif keyword == "$INCLUDE" and not state.includes:
        raise LineError("$INCLUDE is not allowed here (zone text given through the API or "
                        "kept in Redis): give the records themselves")
    elif keyword == "$INCLUDE" and len(parts) in (2, 3):
        if depth >= 8:
            raise LineError("$INCLUDE nested too deeply")
        target = Path(parts[1]) if Path(parts[1]).is_absolute() else Path(path).parent / parts[1]
        # RFC 1035 section 5.1: the included file never changes the parent's origin; a
        # $TTL or a TTL it states goes on applying after it (as in NSD; Knot restores it)
        saved = (state.origin, state.last_owner, state.file)
        if len(parts) == 3:
            state.origin = _name(parts[2], state.origin)
        _set_file(state, str(target))
        try:
            parse_file(target, state, zone_origin, sink, depth + 1)
        except OSError as exc:
            raise LineError(f"$INCLUDE failed: {exc}") from None
        finally:
            state.origin, state.last_owner, file = saved
            _set_file(state, file)
    elif keyword == "$GENERATE":
        _generate(content, line_no, state, zone_origin, sink)
    else:
        raise LineError(f"unknown or malformed directive: {content}")


def _set_file(state: ParseState, file: str) -> None:
    state.file = file
    if state.file_changed is not None:
        state.file_changed(file)


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
    if '"' in content or "\\" in content:  # keep the spacing inside quoted strings
        rest = content
        for _ in range(index):
            rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
        rdata = _rdata(rdtype, tokens[index:], rest, state.origin, origin_wire)
    else:
        rdata = _rdata(rdtype, tokens[index:], None, state.origin, origin_wire)
    if rdtype == dns.rdatatype.SOA and state.default_ttl is None and len(rdata) >= 4:
        state.default_ttl = struct.unpack("!I", rdata[-4:])[0]  # pre-$TTL practice
        state.default_from_soa = True
    if ttl is None:
        ttl = _implicit_ttl(state)
    else:
        if ttl > 0x7FFFFFFF:
            raise LineError(f"TTL {ttl} is above 2147483647 (RFC 2181 section 8)")
        state.last_ttl = ttl
    sink(owner, rdtype, ttl, rdata, line_no)


_OUTSIDE = b"outside"  # sentinel owner: the line is outside the zone, already reported
_CLASS_TOKENS = {c for name in _CLASSES for c in (name, name.lower(), name.capitalize())}
_TYPES: dict[str, dns.rdatatype.RdataType] = {}


def _type(token: str) -> dns.rdatatype.RdataType:
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
        if len(owner) > 255:
            raise LineError(f"name {token!r} is longer than 255 octets with the origin")
        if origin_wire == zone_origin:
            return owner
    else:
        owner = _name_wire(token, state.origin, origin_wire)
    if _is_subdomain(owner, zone_origin):
        return owner
    state.out_of_zone.append((state.file, line_no, _text(owner)))
    return _OUTSIDE


def _implicit_ttl(state: ParseState) -> int:
    """$TTL, else the previous record's TTL, else the SOA's MINIMUM (as dnspython does
    by default: RFC 2308 section 4 makes the last stated TTL win over the SOA's)."""
    if state.last_ttl is not None and (state.default_ttl is None or state.default_from_soa):
        return state.last_ttl
    if state.default_ttl is not None:
        return state.default_ttl
    raise LineError("no TTL given and no $TTL before this record")


def _rdata(rdtype: dns.rdatatype.RdataType, fields: list[str], raw: str | None, origin: dns.name.Name,
           origin_wire: bytes) -> bytes:
    """Wire-format rdata; the common types by hand, the rest through dnspython."""
    if rdtype in _ADDRESS_FAMILIES and (not fields or fields[0] != "\\#"):
        return _address(rdtype, fields)
    try:
        if rdtype in _NAME_RDATA and len(fields) == 1:
            return _name_wire(fields[0], origin, origin_wire)
        if rdtype == dns.rdatatype.MX and len(fields) == 2:
            return _U16.pack(_number(fields[0])) + _name_wire(fields[1], origin, origin_wire)
        if rdtype == dns.rdatatype.SRV and len(fields) == 4:
            numbers = _SRV.pack(_number(fields[0]), _number(fields[1]), _number(fields[2]))
            return numbers + _name_wire(fields[3], origin, origin_wire)
    except (OSError, ValueError, struct.error, LineError):
        pass  # let dnspython produce the precise error message below
    text = raw if raw is not None else " ".join(fields)
    try:
        return to_wire(rdata_from_text(rdtype, text, origin))
    except (dns.exception.DNSException, ValueError, struct.error) as exc:
        raise LineError(f"bad {dns.rdatatype.to_text(rdtype)} rdata: {exc}") from None


def rdata_from_text(rdtype: dns.rdatatype.RdataType, text: str,
                    origin: dns.name.Name) -> dns.rdata.Rdata:
    """Rdata from its master-file text, names made absolute: dnspython's reading, where
    it reads what Knot DNS and NSD read, and theirs where it does not (raises
    DNSException or ValueError)."""
    if rdtype == dns.rdatatype.IPSECKEY and not text.lstrip().startswith("\\#"):
        return _ipseckey(text, origin)
    if rdtype == dns.rdatatype.ZONEMD:
        return _zonemd(text)
    rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=origin, relativize=False)
    if isinstance(rd, LOC):
        # centimetres held as a float (42849672.91 m is 4284967290.9999995 cm) would be
        # cut to .90 m on the wire: round to the centimetre the text gave
        rd = LOC(rd.rdclass, rd.rdtype, rd.latitude, rd.longitude, round(rd.altitude),
                 rd.size, rd.horizontal_precision, rd.vertical_precision)
    return rd


def _ipseckey(text: str, origin: dns.name.Name) -> IPSECKEY:
    """IPSECKEY as dnspython reads it, except that the public key may be absent (RFC 4025
    section 2.6: algorithm 0 says there is none; NSD's test zones write `10 0 0 .`),
    which dnspython refuses and Knot DNS and NSD load."""
    with dns.exception.ExceptionWrapper(dns.exception.SyntaxError):
        tok = dns.tokenizer.Tokenizer(text)
        precedence, gateway_type, algorithm = tok.get_uint8(), tok.get_uint8(), tok.get_uint8()
        gateway = Gateway.from_text(gateway_type, tok, origin, False)
        key = base64.b64decode(tok.concatenate_remaining_identifiers(allow_empty=True).encode(),
                               validate=True)
        return IPSECKEY(dns.rdataclass.IN, dns.rdatatype.IPSECKEY, precedence, gateway_type,
                        algorithm, gateway.gateway, key)


def _zonemd(text: str) -> dns.rdata.Rdata:
    """ZONEMD (RFC 8976 section 2.2): serial, scheme, hash algorithm, hex digest.

    dnspython also wants the digest as long as the hash algorithm's output under every
    scheme, which refuses RFC 8976's own example zone of appendix A.3 (scheme 241, private
    use, hash 1 and a 20-octet digest). The length of a digest belongs to its scheme:
    only SIMPLE (1) is defined to be the hash's output; section 2.2.4 asks every digest
    for 12 octets at least. Knot DNS loads such records too."""
    with dns.exception.ExceptionWrapper(dns.exception.SyntaxError):
        tok = dns.tokenizer.Tokenizer(text)
        if text.lstrip().startswith("\\#"):  # RFC 3597 form, as the API writes it back
            data = dns.rdata.GenericRdata.from_text(
                dns.rdataclass.IN, dns.rdatatype.ZONEMD, tok).data
            if len(data) < 6:
                raise ValueError("shorter than serial, scheme and hash algorithm")
            (serial, scheme, algorithm), digest = struct.unpack_from("!IBB", data), data[6:]
        else:
            serial, scheme, algorithm = tok.get_uint32(), tok.get_uint8(), tok.get_uint8()
            digest = bytes.fromhex(tok.concatenate_remaining_identifiers())
    if scheme == 0 or algorithm == 0:
        raise ValueError("scheme and hash algorithm 0 are reserved (RFC 8976 section 5)")
    if len(digest) < 12:
        raise ValueError("a digest is never shorter than 12 octets (RFC 8976 section 2.2.4)")
    output = _ZONEMD_HASH_SIZES.get(algorithm)
    if scheme == 1 and output is not None and len(digest) != output:
        raise ValueError(f"a SIMPLE digest with hash algorithm {algorithm} has {output} "
                         f"octets, not {len(digest)}")
    wire = struct.pack("!IBB", serial, scheme, algorithm) + digest
    try:
        return dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.ZONEMD, wire, 0, len(wire))
    except dns.exception.FormError:  # the length check above: kept as the bytes it is
        return dns.rdata.GenericRdata(dns.rdataclass.IN, dns.rdatatype.ZONEMD, wire)


_ZONEMD_HASH_SIZES = {1: 48, 2: 64}  # SHA-384, SHA-512 (RFC 8976 section 5.3)


def _number(text: str) -> int:
    """A decimal field as dnspython reads it (ASCII digits only; no sign)."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(text)
    return int(text)


_ADDRESS_FAMILIES = {dns.rdatatype.A: ("IPv4", socket.AF_INET), dns.rdatatype.AAAA: ("IPv6", socket.AF_INET6)}


def _address(rdtype: dns.rdatatype.RdataType, fields: list[str]) -> bytes:
    """A or AAAA rdata; `inet_pton` accepts exactly what dnspython does."""
    kind, family = _ADDRESS_FAMILIES[rdtype]
    what = dns.rdatatype.to_text(rdtype)
    if not fields:
        raise LineError(f"bad {what} rdata: no {kind} address")
    if len(fields) != 1:
        raise LineError(f"bad {what} rdata: expected one {kind} address, found {len(fields)} fields")
    try:
        return socket.inet_pton(family, fields[0])
    except (OSError, ValueError):
        raise LineError(f"bad {what} rdata: {fields[0]!r} is not an {kind} address") from None


def _name_wire(token: str, origin: dns.name.Name, origin_wire: bytes) -> bytes:
    """A master-file name as wire bytes (case kept); escapes and IDNs via dnspython."""
    if token == "@":
        return origin_wire
    if "\\" in token or not token.isascii():
        return to_wire(_name(token, origin))
    absolute = token.endswith(".")
    body = token[:-1] if absolute else token
    if body:
        labels = body.split(".")
        if "" in labels or max(map(len, labels)) > 63:
            raise LineError(f"bad name {token!r}: empty or over-long label")
        wire = "".join([chr(len(label)) + label for label in labels]).encode("ascii")
    elif absolute:
        wire = b""
    else:
        raise LineError("empty name")
    wire += b"\x00" if absolute else origin_wire
    if len(wire) > 255:
        raise LineError(f"name {token!r} is longer than 255 octets")
    return wire


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


MAX_GENERATED = 1_000_000  # records one `$GENERATE` line may make
_RANGE = re.compile(r"^(\d+)-(\d+)(?:/(\d+))?$")


def _generate(content: str, line_no: int, state: ParseState, zone_origin: bytes, sink: Sink) -> None:
    """`$GENERATE` through dnspython's reader, which implements its full syntax.

    The range is checked first: a typo like `1-100000000` would otherwise spend minutes
    making records before anything could be reported."""
    import dns.zonefile

    fields = content.split()
    bounds = _RANGE.match(fields[1]) if len(fields) > 1 else None
    if bounds is not None:
        start, stop, step = int(bounds[1]), int(bounds[2]), int(bounds[3] or 1)
        if step and stop >= start and (stop - start) // step + 1 > MAX_GENERATED:
            raise LineError(f"$GENERATE range {fields[1]} makes more than {MAX_GENERATED:,} records")

    collected: list[tuple[dns.name.Name, int, dns.rdata.Rdata]] = []

    class _Txn:
        class manager:  # noqa: N801 - the reader reads txn.manager.origin_information()
            @staticmethod
            def origin_information() -> tuple[dns.name.Name, bool, dns.name.Name]:
                return state.origin, False, state.origin

            @staticmethod
            def get_class() -> dns.rdataclass.RdataClass:
                return dns.rdataclass.IN

        @staticmethod
        def check_put_rdataset(check: object) -> None:
            pass

        @staticmethod
        def add(name: dns.name.Name, ttl: int, rd: dns.rdata.Rdata) -> None:
            collected.append((name, ttl, rd))

        @staticmethod
        def _set_origin(origin: dns.name.Name | None) -> None:
            pass

    try:  # what a record without a TTL gets here: $TTL, else the last one stated (BIND)
        implicit: int | None = _implicit_ttl(state)
    except LineError:
        implicit = None  # the line must state its own, or dnspython says what is missing
    ttl_line = f"$TTL {implicit}\n" if implicit is not None else ""
    text = f"$ORIGIN {state.origin}\n{ttl_line}{content}\n"
    try:
        # dnspython annotates `txn` as a Transaction, but the reader only calls the few
        # members _Txn has (a duck-typed stand-in, not a Transaction subclass).
        reader = dns.zonefile.Reader(dns.tokenizer.Tokenizer(text), dns.rdataclass.IN,
                                     _Txn)  # type: ignore[arg-type]
        reader.read()
    except dns.exception.DNSException as exc:
        detail = str(exc).split(": ", 1)[-1]
        raise LineError(f"bad $GENERATE: {detail}") from None
    for name, ttl, rd in collected:
        owner = to_wire(name)
        if not _is_subdomain(owner, zone_origin):
            state.out_of_zone.append((state.file, line_no, name.to_text()))
            continue
        sink(owner, rd.rdtype, ttl, to_wire(rd), line_no)
