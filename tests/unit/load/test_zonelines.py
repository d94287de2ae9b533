"""The C zone-line scanner (gslb/load/native/zonelines.c) leaves exactly what the
pure-Python fast path and the general path leave: the same records in the same builder,
the same records through the sink, the same writes to the parse state, the same problems.

Seeded random zone files (A, AAAA, NS, CNAME, PTR, MX and SOA lines, with near misses of
every kind) go through `parse_file` and `load_zone_file` with the scanner and without it;
seeded random lines, mutations of qualifying ones, through `parse_file` as well, and the
A and AAAA ones through both fast paths directly. Run under AddressSanitizer by
test_zonelines_asan.py, so a read outside a line, a name or a blob anywhere in the
scanner fails the suite.
"""

from __future__ import annotations

import random
import sys
import string
from array import array
from pathlib import Path

import dns.name
import dns.rdata
import pytest

import gslb.load
from gslb.dns.zone import ZoneBuilder, iter_records
from gslb.load import zoneparse
from gslb.load import zonefile
from gslb.load.zonefile import load_zone_file
from gslb.load.zoneparse import ParseState, parse_file

SEED = 20261206
FILES = 150
MUTATIONS = 20_000
ORIGIN = dns.name.from_text("example.test.")
LABEL = string.ascii_letters + string.digits + "-_*"
SPACES = [" ", " ", " ", "\t", "  ", " \t ", "\x0b", "\x0c", "\x1c", "\x1f", "\r"]
ADDRESSES = ["192.0.2.1", "192.0.2.2", "10.0.0.0", "255.255.255.255", "2001:db8::1",
             "2001:DB8::1", "::", "::ffff:192.0.2.1", "fe80::1:2:3:4"]
BAD_ADDRESSES = ["999.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1.2.3.4;c", "(1.2.3.4",
                 "1.2.3.4)", "2001:db8:::1", "2001:db8::1/64", "1.2.3.4\x00", "x" * 80,
                 "2001:db8::12345", "é", ""]
OTHER_LINES = ["www 300 IN TXT \"a; b\"", "@ IN NS ns1", "mx MX 10 mail", "alias CNAME www",
               "a.b A 192.0.2.9", "x.example.test. A 192.0.2.10", "@ A 192.0.2.11",
               "lower in a 192.0.2.12", "h IN CH A 192.0.2.13", "h CH A 192.0.2.14",
               "h 1h A 192.0.2.15", "h 1234567890 A 192.0.2.16", "h 300 IN A 192.0.2.17 ; c",
               "h 300 300 A 192.0.2.18", "h IN IN A 192.0.2.19", "é A 192.0.2.20",
               "\tIN A 192.0.2.21", " 600 A 192.0.2.22", "h A", "h 300 IN A 1 2",
               "txt TXT ( \"a\"", "p A 192.0.2.23", ")", "esc\\.dot A 192.0.2.24", "",
               "; a comment", "h A 192.0.2.25 (", ")", "h IN 300 A \t", "h 300 IN AAAA é"]
DIRECTIVES = ["$TTL 600", "$TTL 1h", "$TTL 0", "$ORIGIN sub.example.test.",
              "$ORIGIN example.test.", "$ORIGIN Example.TEST.", "$ORIGIN other.test.",
              "$ORIGIN sub"]


def label(rng: random.Random) -> str:
    length = rng.choice([1, 2, 5, 12, 62, 63, 63, 64, 70])
    return "".join(rng.choice(LABEL) for _ in range(length))


def long_origin(rng: random.Random) -> str:
    """An origin inside the zone whose wire form is 190 to 255 octets long, so that
    labels of up to 63 octets land on both sides of the 255-octet limit."""
    target = rng.randrange(190, 256)
    labels, length = [], len(ORIGIN.to_wire())
    while target - length > 1:
        size = min(63, target - length - 1)
        labels.append("".join(rng.choice(string.ascii_letters) for _ in range(size)))
        length += size + 1
    return ".".join(labels + ["example.test."])


def address_line(rng: random.Random, owners: list[str]) -> str:
    """`label [ttl] [IN] A|AAAA address` in every order and spacing, sometimes broken."""
    owner = rng.choice(owners) if owners and rng.random() < 0.5 else label(rng)
    owner = owner.upper() if rng.random() < 0.2 else owner
    if owner not in owners:
        owners.append(owner)
    ttl = rng.choice(["", "", "300", "60", "0", "999999999", "1000000000", "07", "1h"])
    klass = rng.choice(["", "IN", "IN"])
    middle = [ttl, klass] if rng.random() < 0.5 else [klass, ttl]
    rdtype = rng.choice(["A", "AAAA"])
    good = [a for a in ADDRESSES if (":" in a) == (rdtype == "AAAA")]
    address = rng.choice(good) if rng.random() < 0.9 else rng.choice(BAD_ADDRESSES)
    fields = [owner, *[f for f in middle if f], rdtype, address]
    text = fields[0] + "".join(rng.choice(SPACES) + field for field in fields[1:])
    if rng.random() < 0.1:
        text = rng.choice(SPACES) + text
    if rng.random() < 0.1:
        text += rng.choice(SPACES)
    return text


ODD_NAMES = [".", "a..b", ".a", "a.", "..", "a\\.b", "a\\066", '"a"', "a;b", "(a", "a)", "a$b",
             "a/b", "é.test.", "@.a", "a.@", "@@", "xn--bcher-kva.test.", "a b", "-", "*.a"]
NUMBERS = ["0", "1", "300", "007", "2026010101", "65535", "65536", "4294967295", "4294967296",
           "99999999999", "1h", "2w", "-1", "+5", "1.5", "０"]


def name_text(rng: random.Random, odd: bool) -> str:
    """An rdata name: relative, absolute or `@`, in any case, with labels of up to 70
    octets (so names land on both sides of 255 octets), or (`odd`) something odd."""
    roll = rng.random()
    if roll < 0.1:
        return "@"
    if odd and roll < 0.2:
        return rng.choice(ODD_NAMES)
    sizes = [1, 1, 2, 3, 4] if odd else [1, 1, 2, 2, 3]
    name = ".".join(label(rng) if odd else label(rng)[:20] for _ in range(rng.choice(sizes)))
    if rng.random() < 0.5:
        name += "." + rng.choice(["example.test.", "Example.TEST.", "other.test.", ""])
    return name.upper() if rng.random() < 0.2 else name


def named_line(rng: random.Random, owners: list[str]) -> str:
    """`label|@ [ttl] [IN] NS|CNAME|PTR|MX|SOA rdata`; half of them with near misses
    (odd names, numbers and spacing, fields missing, comments, parentheses)."""
    odd = rng.random() < 0.5
    owner = rng.choice(["@", rng.choice(owners) if owners else "@", label(rng)])
    ttl = rng.choice(["", "", "300", "0", "999999999", "07"]
                     + (["1000000000", "1h"] if odd else []))
    klass = rng.choice(["", "IN", "IN"] + (["in"] if odd else []))
    middle = [ttl, klass] if rng.random() < 0.5 else [klass, ttl]
    rdtype = rng.choice(["NS", "CNAME", "PTR", "MX", "SOA", "SOA"])
    plain = ["0", "10", "65535", "2026010101", "4294967295", "3600"]
    number = lambda: rng.choice(NUMBERS if odd and rng.random() < 0.2 else plain)  # noqa: E731
    if rdtype == "MX":
        rdata = [number(), name_text(rng, odd)]
    elif rdtype == "SOA":
        rdata = [name_text(rng, odd), name_text(rng, odd)] + [number() for _ in range(5)]
    else:
        rdata = [name_text(rng, odd)]
    if odd and rng.random() < 0.1:
        rdata.pop(rng.randrange(len(rdata)))
    if odd and rng.random() < 0.1:
        rdtype = rdtype.lower()
    fields = [owner, *[f for f in middle if f], rdtype, *rdata]
    spaces = SPACES if odd else [" ", "\t", "  "]
    text = fields[0] + "".join(rng.choice(spaces) + field for field in fields[1:])
    roll = rng.random()
    if odd and roll < 0.15:
        text += rng.choice([" ; comment", ";", "\t; NS x"])
    elif odd and roll < 0.25:
        text = " ".join(fields[:-1]) + " (\n  " + fields[-1] + " )"
    elif odd and roll < 0.3:
        text = rng.choice(SPACES) + text
    return text


def zone_text(rng: random.Random) -> str:
    lines = []
    if rng.random() < 0.7:
        lines.append("$TTL 3600")
    lines.append(rng.choice(["@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300",
                             "@ 600 IN SOA ns1.example.test. h.Example.TEST. 4294967295 1 2 3 4",
                             "@ IN SOA @ . 1 1h 2 3 4"]))
    owners: list[str] = []
    for _ in range(rng.randrange(20, 200)):
        roll = rng.random()
        if roll < 0.55:
            lines.append(address_line(rng, owners))
        elif roll < 0.75:
            lines.append(named_line(rng, owners))
        elif roll < 0.88:
            lines.append(rng.choice(OTHER_LINES))
        elif roll < 0.95:
            lines.append(rng.choice(DIRECTIVES))
        else:
            lines.append(f"$ORIGIN {long_origin(rng)}")
    ending = rng.choice(["\n", "\n", "\r\n", "\r"])
    return ending.join(lines) + rng.choice([ending, ""])


def without_scanner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zoneparse, "native_scanner", lambda: None)


NOTED_TYPES = {2, 5, 6}  # NS, CNAME, SOA: the scanner tells `note` of them, as promised


def parsed(path: Path) -> tuple:
    """Everything `parse_file` leaves behind: builder, the SOA, NS and CNAME records
    noted (by the scanner, or the general path's sink), state."""
    state = ParseState(str(path), ORIGIN)
    builder = ZoneBuilder()
    sunk: list[tuple] = []

    def note(owner: bytes, rdtype: int, rdata: bytes, line: int) -> None:
        sunk.append((owner, rdtype, rdata, line))

    def sink(owner: bytes, rdtype: int, ttl: int, rdata: bytes, line: int) -> None:
        builder.add(owner, rdtype, ttl, rdata, line)
        if rdtype in NOTED_TYPES:
            note(owner, rdtype, rdata, line)

    state.fast_builder, state.fast_note = builder, note

    parse_file(path, state, ORIGIN.to_wire(), sink)
    return (list(builder.records.items()), builder.first_lines, builder.typed, builder.count,
            sunk, state.problems, state.out_of_zone, state.last_owner, state.last_ttl,
            state.default_ttl, state.default_from_soa)


def loaded(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """What `load_zone_file` returns and notes: the zone's records and empty
    non-terminals, problems, warnings, and the SOA, NS and CNAME records validation saw."""
    noted = []
    validate = zonefile.validate

    def noting(origin: dns.name.Name, index: zonefile._Index, file: str) -> tuple:
        noted.extend(index.noted)
        return validate(origin, index, file)

    with monkeypatch.context() as patch:
        patch.setattr(zonefile, "validate", noting)
        warnings: list = []
        zone, problems = load_zone_file(path, warnings, partial=True)
    records = sorted(zone.records.items()) if zone is not None else None
    ents = sorted(zone.ents) if zone is not None else None  # found in C, or by Zone
    return records, ents, problems, warnings, noted


def test_the_scanner_is_built() -> None:
    assert zoneparse.native_scanner() is not None  # else the tests below compare Python with itself


@pytest.mark.parametrize("batch", range(5))
def test_random_zone_files_parse_alike_with_and_without_the_scanner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    rng = random.Random(SEED + batch)
    taken = 0
    for number in range(FILES // 5):
        path = tmp_path / f"zone{number}.test.zone"
        text = zone_text(rng).encode("utf-8")
        if rng.random() < 0.05:  # stops decoding: a problem at line 1, what was read stays
            text += b"\xff\n"
        path.write_bytes(text)
        with monkeypatch.context() as patch:
            without_scanner(patch)
            expected = parsed(path)
        assert parsed(path) == expected, path.read_text()
        taken += expected[3]
    assert taken > 500


@pytest.mark.parametrize("batch", range(3))
def test_random_zone_files_load_alike_with_and_without_the_scanner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    """Through the loader: the same zone, problems, warnings and noted records."""
    rng = random.Random(SEED - batch)
    noted = ents = 0
    for number in range(FILES // 5):
        path = tmp_path / str(number) / "example.test.zone"
        path.parent.mkdir()
        path.write_text(f"$ORIGIN {rng.choice(['example.test.', 'Example.Test.'])}\n"
                        + zone_text(rng))
        with monkeypatch.context() as patch:
            without_scanner(patch)
            expected = loaded(path, monkeypatch)
        assert loaded(path, monkeypatch) == expected, path.read_text()
        noted += len(expected[4])
        ents += len(expected[1] or ())
    assert noted > 100 and ents > 10, (noted, ents)


def test_small_files_read_whole_load_as_streamed_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small file is read and decoded at once, a large one streamed: the same zone,
    problems and warnings from either, whatever the line endings or where decoding stops."""
    rng = random.Random(SEED + 99)
    for number in range(FILES // 5):
        path = tmp_path / str(number) / "example.test.zone"
        path.parent.mkdir()
        text = f"$ORIGIN example.test.\n{zone_text(rng)}".encode()
        if rng.random() < 0.1:
            cut = rng.randrange(len(text))
            text = text[:cut] + b"\xff" + text[cut:]
        path.write_bytes(text)
        with monkeypatch.context() as patch:
            patch.setattr(zonefile, "SMALL_FILE", 0)
            streamed = loaded(path, monkeypatch)
        assert loaded(path, monkeypatch) == streamed, path.read_bytes()


def ignore(*record: object) -> None:
    """A note for the scanner that keeps nothing."""


def fast_path_run(lines: list[str], base_origin: dns.name.Name, default_ttl: int | None,
                  native: bool) -> tuple:
    """Both fast paths alone over `lines`, with a state the general path never changes."""
    state = ParseState("x", base_origin, default_ttl=default_ttl)
    builder = ZoneBuilder()
    if native:
        scanner = zoneparse.native_scanner()
        assert scanner is not None
        passed = list(zoneparse._native_lines(scanner, lines, state, ORIGIN.to_wire(), builder,
                                              ignore))
    else:
        passed = list(zoneparse._fast_lines(lines, state, ORIGIN.to_wire(), builder.add))
    return (passed, list(builder.records.items()), builder.first_lines, builder.count,
            state.last_owner, state.last_ttl)


MUTATION_ALPHABET = list(" \t\r\n\x0b\x0c\x1c\x1d\x1e\x1f\x00\x7f;()@.$\\\"é€0123456789:aAIN")


def mutated(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(len(chars) + 1)
        roll = rng.random()
        if roll < 0.4 and at < len(chars):
            chars[at] = rng.choice(MUTATION_ALPHABET)
        elif roll < 0.7:
            chars.insert(at, rng.choice(MUTATION_ALPHABET))
        elif at < len(chars):
            del chars[at]
    return "".join(chars)


def test_mutated_address_lines_are_taken_or_passed_on_alike() -> None:
    """A and AAAA lines as `_fast_lines` reads them; the scanner also takes `@` as owner,
    which the general path reads (compared in the test below)."""
    rng = random.Random(SEED)
    origins = [ORIGIN, dns.name.from_text("sub.Example.TEST."),
               dns.name.from_text(long_origin(rng)), dns.name.from_text(long_origin(rng))]
    for _ in range(MUTATIONS // 50):
        owners: list[str] = []
        lines = []
        for _ in range(50):
            line = address_line(rng, owners)
            if rng.random() < 0.5:
                line = mutated(rng, line)
            if line.split()[:1] != ["@"]:
                lines.append(line + rng.choice(["\n", "\n", ""]))
        origin, ttl = rng.choice(origins), rng.choice([None, 300, 0, 4294967295])
        expected = fast_path_run(lines, origin, ttl, native=False)
        assert fast_path_run(lines, origin, ttl, native=True) == expected, lines


def test_mutated_lines_parse_alike_with_and_without_the_scanner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(SEED + 1)
    origins = ["example.test.", "sub.Example.TEST.", long_origin(rng), long_origin(rng)]
    path = tmp_path / "mutated.zone"
    sunk = 0
    for _ in range(MUTATIONS // 50):
        owners: list[str] = []
        lines = [f"$ORIGIN {rng.choice(origins)}",
                 rng.choice(["$TTL 300", "$TTL 0", "$TTL 4294967295", ""])]
        for _ in range(50):
            line = address_line(rng, owners) if rng.random() < 0.4 else named_line(rng, owners)
            lines.append(mutated(rng, line) if rng.random() < 0.5 else line)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with monkeypatch.context() as patch:
            without_scanner(patch)
            expected = parsed(path)
        assert parsed(path) == expected, lines
        sunk += len(expected[4])
    assert sunk > 1000


def test_a_duplicate_keeps_the_lower_ttl_and_counts_once() -> None:
    lines = ["h 600 IN A 192.0.2.1\n", "H 300 A 192.0.2.1\n", "h 900 A 192.0.2.1\n",
             "h IN 60 AAAA 2001:db8::1\n", "h 30 AAAA 2001:DB8::1\n", "h 30 A 192.0.2.2\n"]
    passed, records, first_lines, count, owner, ttl = fast_path_run(lines, ORIGIN, None, True)
    assert passed == [] and count == 3 and first_lines == array("I", [1])
    assert records == [(b"\x01h\x07example\x04test\x00",
                        b"\x00\x01\x00\x00\x01\x2c\x00\x04\xc0\x00\x02\x01"
                        b"\x00\x1c\x00\x00\x00\x1e\x00\x10" + bytes.fromhex("20010db8" + "00" * 11 + "01")
                        + b"\x00\x01\x00\x00\x00\x1e\x00\x04\xc0\x00\x02\x02")]
    assert owner == b"\x01h\x07example\x04test\x00" and ttl == 30


def test_a_line_passed_on_still_sets_the_ttl_it_states() -> None:
    """`_fast_lines` keeps a TTL it read even when the address then fails: so does C."""
    lines = ["a 300 A 192.0.2.1\n", "b 77 A 300.1.1.1\n", "c A 192.0.2.3\n"]
    passed, _, _, count, owner, ttl = fast_path_run(lines, ORIGIN, 5, True)
    assert passed == [(2, "b 77 A 300.1.1.1\n")] and count == 2 and ttl == 77
    state = ParseState("x", ORIGIN, default_ttl=5)
    scanner = zoneparse.native_scanner()
    builder = ZoneBuilder()
    lines_iter = zoneparse._native_lines(scanner, lines, state, ORIGIN.to_wire(), builder,
                                         ignore)
    assert next(lines_iter) == (2, "b 77 A 300.1.1.1\n")
    assert state.last_ttl == 77 and state.last_owner == b"\x01a\x07example\x04test\x00"


def test_the_loader_uses_the_scanner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "example.test.zone"
    path.write_text("$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
                    + "".join(f"h{i} A 192.0.2.{i}\n" for i in range(100)))
    calls = []
    real = zoneparse._native_lines
    monkeypatch.setattr(zoneparse, "_native_lines", lambda *args: calls.append(1) or real(*args))
    zone, problems = load_zone_file(path)
    assert problems == [] and zone is not None and calls == [1]
    assert zone.get(dns.name.from_text("h99.example.test."), 1) is not None


def test_bad_arguments_raise_and_keep_the_builder_whole() -> None:
    scanner = zoneparse.native_scanner()
    base = ORIGIN.to_wire()
    builder = ZoneBuilder()
    with pytest.raises(TypeError):
        scanner.scan(iter(["a A 192.0.2.1\n", b"b A 192.0.2.2\n"]), 0, base, 300, builder, builder.add)
    assert builder.count == 1 and builder.first_lines == array("I", [1])
    with pytest.raises(TypeError):
        scanner.scan(["a A 192.0.2.1\n"], 0, base, 300, builder, builder.add)  # not an iterator
    with pytest.raises(TypeError):
        scanner.scan(iter([]), 0, "example.test.", 300, builder, builder.add)
    with pytest.raises(AttributeError):
        scanner.scan(iter([]), 0, base, 300, object(), print)
    # the rdata is there (as an AAAA's), then a record cut short: Python's _merge raises too
    builder.records[b"\x01m" + base] = b"\x00\x1c\x00\x00\x00\x01\x00\x04\xc0\x00\x02\x00\x00\x01\x00"
    with pytest.raises(ValueError):
        scanner.scan(iter(["m A 192.0.2.0\n"]), 0, base, 300, builder, builder.add)
    builder.records[b"\x01n" + base] = b"\x00\x01\x00\x00\x00\x01\x00\x09\xc0\x00\x02\x01"
    assert scanner.scan(iter(["n A 192.0.2.1\n"]), 0, base, 300, builder, builder.add)[0] == 1
    assert builder.records[b"\x01n" + base].endswith(b"\x00\x04\xc0\x00\x02\x01")
    too_long = b"\x3f" + b"x" * 63
    assert scanner.scan(iter(["a 9 A 192.0.2.1\n"]), 0, too_long * 5, None, builder, builder.add) == \
        (1, "a 9 A 192.0.2.1\n", None, 9)  # 320 octets: nothing qualifies, the TTL is read
    huge = "a " + " " * 1_000_000 + "A " + "1" * 100_000 + "\n"
    assert scanner.scan(iter([huge]), 0, base, 300, builder, builder.add)[1] == huge
    with pytest.raises(TypeError):
        scanner.scan(iter([]), 0, base, 300, builder, None)


def test_a_note_that_raises_stops_the_scan_with_the_builder_whole() -> None:
    """The record is stored before `note` is told of it: when the note raises, the
    builder holds it, counted, with its line, and nothing after it."""
    scanner = zoneparse.native_scanner()
    base = ORIGIN.to_wire()
    builder = ZoneBuilder()
    calls = []

    def note(*record: object) -> None:
        calls.append(record)
        if len(calls) == 2:
            raise RuntimeError("full")

    lines = ["a A 192.0.2.1\n", "@ NS ns1\n", "b A 192.0.2.2\n", "c CNAME a\n", "d A 192.0.2.3\n"]
    with pytest.raises(RuntimeError):
        scanner.scan(iter(lines), 0, base, 300, builder, note)
    assert calls == [(base, 2, b"\x03ns1" + base, 2), (b"\x01c" + base, 5, b"\x01a" + base, 4)]
    assert builder.count == 4 and builder.first_lines == array("I", [1, 2, 3, 4])
    assert builder.typed[2] == {base} and b"\x01d" + base not in builder.records


@pytest.mark.parametrize("origin", ["example.test.", "Sub.Example.TEST."])
def test_named_records_are_stored_as_dnspython_writes_them(origin: str) -> None:
    """Every rdata the scanner makes is dnspython's `to_wire` of the same text."""
    base = dns.name.from_text(origin)
    lines = ["@ IN SOA ns1.Example.test. hostmaster 4294967295 0 007 1209600 300",
             "@ 60 SOA @ . 1 2 3 4 5", "@ IN NS ns1", "@ NS NS2.example.TEST.", "@ IN 30 NS @",
             "www CNAME Host.sub", "x CNAME .", "p IN PTR a-b_c.*.d.", "@ MX 0 .",
             "m 300 IN MX 65535 mail", "m MX 00010 @", f"l NS {'a' * 63}.{'b' * 63}",
             f"l2 NS {'a' * 63}.{'b' * 63}.{'c' * 63}.{'d' * 61}.", "@ A 192.0.2.1"]
    builder = ZoneBuilder()
    noted = []
    result = zoneparse.native_scanner().scan(iter(lines), 0, base.to_wire(), 3600, builder,
                                       lambda *record: noted.append(record))
    assert result == (len(lines), None, base.to_wire(), 300)
    assert [line for _, rdtype, _, line in noted] == [1, 2, 3, 4, 5, 6, 7, 12, 13]
    stored: dict[int, list[bytes]] = {rdtype: [] for rdtype in (1, 2, 5, 6, 12, 15)}
    for blob in builder.records.values():
        for rdtype, ttl, rdata in iter_records(blob):
            stored[rdtype].append(rdata)
    expected: dict[int, list[bytes]] = {rdtype: [] for rdtype in stored}
    for line in lines:
        rdtype, *fields = line.split()[line.split().index(next(
            t for t in line.split()[1:] if t in ("SOA", "NS", "CNAME", "PTR", "MX", "A"))):]
        rd = dns.rdata.from_text("IN", rdtype, " ".join(fields), origin=base, relativize=False)
        expected[rd.rdtype].append(rd.to_wire())
    assert stored == expected


def test_without_the_extension_the_python_fast_path_reads_the_zone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "example.test.zone"
    path.write_text("$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nh A 192.0.2.2\n")
    monkeypatch.setitem(sys.modules, "gslb.load._zonelines", None)  # import fails
    monkeypatch.delattr(gslb.load, "_zonelines", raising=False)
    monkeypatch.setattr(zoneparse, "_scanner_probed", False)
    monkeypatch.setattr(zoneparse, "_scanner_module", None)
    for _ in range(2):
        zone, problems = load_zone_file(path)
        assert problems == [] and zone is not None
        assert zone.get(dns.name.from_text("h.example.test."), 1) is not None
    warned = [r for r in caplog.records if "zone-line scanner unavailable" in r.getMessage()]
    assert len(warned) == 1
