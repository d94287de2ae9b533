"""DNS cookies (RFC 7873, RFC 9018 server cookies), in Python (gslb/dns/cookies.py) and
in C (gslb/server/native/cookie.c), which must agree byte for byte: RFC 9018 Appendix
A's worked examples, the validity window, forged cookies, the lengths that are FORMERR,
and the cookie in whole replies, from the responder and from the table."""

from __future__ import annotations

import ipaddress
import random
import struct
from pathlib import Path

import dns.edns
import dns.message
import dns.rcode
import pytest

from gslb.dns.cookies import Cookies, siphash24
from gslb.dns.edns import OPTION_COOKIE
from gslb.dns.handler import Options, Responder
from gslb.dns.resolver import Zones
from gslb.dns.wire import parse_query
from gslb.server import fastpath
from gslb.server.cookiefile import CookieSecretError, CookieSecrets, read_secrets
from gslb.snapshot import Snapshot
from tests.zonesets import INTEROP_ZONES, load_zone_dir

native = pytest.mark.skipif(not fastpath.available(), reason="the C extension is not built")

SECRET = bytes.fromhex("e5e973e5a6b2a43f48e7dc849e37bfcf")  # A.1 to A.3
OLD_SECRET = bytes.fromhex("dd3bdf9344b678b185a6f5cb60fca715")  # A.4, before the roll-over
NEW_SECRET = bytes.fromhex("445536bcd2513298075a5d379663c962")  # A.4, after it
V6_CLIENT = "2001:db8:220:1:59de:d0f4:8769:82b8"

# RFC 9018 Appendix A: (secrets, client, query's COOKIE, now, reply's COOKIE, valid)
VECTORS = {
    "A.1 learning a new server cookie": (
        [SECRET], "198.51.100.100", "2464c4abcf10c957", 1559731985,
        "2464c4abcf10c957010000005cf79f111f8130c3eee29480", False),
    "A.2 the same client, 40 minutes later: renewed": (
        [SECRET], "198.51.100.100", "2464c4abcf10c957010000005cf79f111f8130c3eee29480",
        1559734385, "2464c4abcf10c957010000005cf7a871d4a564a1442aca77", True),
    # Made at 09:46:25, asked at 11:38:20: past RFC 9018's hour, so not valid (the
    # example's server renews it all the same, as this one does any it cannot honour).
    "A.3 another client, reserved bytes set": (
        [SECRET], "203.0.113.203", "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5",
        1559734700, "fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e", False),
    "A.4 IPv6, the secret rolled over": (
        [NEW_SECRET, OLD_SECRET], V6_CLIENT, "22681ab97d52c298010000005cf7c57926556bd0934c72f8",
        1559741961, "22681ab97d52c298010000005cf7c609a6bb79d16625507a", True),
}


@pytest.fixture(scope="module")
def zones() -> Zones:
    return load_zone_dir(INTEROP_ZONES)


def cookie_query(value: bytes | None, name: str = "www.parent.test.", ecs: str | None = None,
                 extra: list | None = None) -> bytes:
    options = [] if value is None else [dns.edns.GenericOption(OPTION_COOKIE, value)]
    if ecs is not None:
        options.append(dns.edns.ECSOption.from_text(ecs))
    query = dns.message.make_query(name, "A", use_edns=0, options=options + (extra or []))
    query.flags = 0
    return query.to_wire()


def packed(host: str) -> bytes:
    return ipaddress.ip_address(host).packed


def python_verdict(secrets: list[bytes], host: str, cookie: bytes, now: int) -> tuple[bytes, bool]:
    return Cookies(secrets, clock=lambda: now).answer(cookie, packed(host))


def c_verdict(zones: Zones, secrets: list[bytes], host: str, cookie: bytes,
              now: int) -> tuple[bytes | None, bool]:
    fastpath.set_cookies(secrets, now)
    table = fastpath.build_table(zones, Options(cookies=Cookies(secrets, lambda: now)), 100)
    return table.cookie(cookie_query(cookie), host)


def reply_cookie(wire: bytes) -> bytes | None:
    options = [o for o in dns.message.from_wire(wire).options if o.otype == OPTION_COOKIE]
    assert len(options) <= 1
    return options[0].to_wire() if options else None


@pytest.mark.parametrize("name", VECTORS)
def test_rfc9018_vectors_in_python(name: str) -> None:
    secrets, host, sent, now, expected, valid = VECTORS[name]
    assert python_verdict(secrets, host, bytes.fromhex(sent), now) == (bytes.fromhex(expected), valid)


@native
@pytest.mark.parametrize("name", VECTORS)
def test_rfc9018_vectors_in_c(zones: Zones, name: str) -> None:
    secrets, host, sent, now, expected, valid = VECTORS[name]
    assert c_verdict(zones, secrets, host, bytes.fromhex(sent), now) == (bytes.fromhex(expected), valid)


@pytest.mark.parametrize("name", VECTORS)
def test_rfc9018_vectors_in_whole_replies(zones: Zones, name: str) -> None:
    """The reply's OPT carries the vector's cookie, from the responder and from C."""
    secrets, host, sent, now, expected, valid = VECTORS[name]
    options = Options(cookies=Cookies(secrets, clock=lambda: now))
    wire = cookie_query(bytes.fromhex(sent))
    [reply] = Responder(options).respond(Snapshot(zones), wire, False, host)
    assert reply_cookie(reply) == bytes.fromhex(expected)
    if fastpath.available():
        fastpath.set_cookies(secrets, now)
        assert fastpath.build_table(zones, options, 100).answer(wire, host) == reply


def test_reserved_bytes_are_hashed_as_sent() -> None:
    """A.3's cookie verifies while it is fresh, its reserved bytes set; the reply's has
    them clear."""
    _, host, sent, _, _, _ = VECTORS["A.3 another client, reserved bytes set"]
    reply, valid = python_verdict([SECRET], host, bytes.fromhex(sent), 1559727985 + 60)
    assert valid and reply[8:12] == b"\x01\x00\x00\x00" and reply != bytes.fromhex(sent)


# Ages of a server cookie (seconds since its timestamp; negative: ahead): valid? echoed?
WINDOW = [(0, True, True), (1800, True, True), (1801, True, False), (3600, True, False),
          (3601, False, False), (-300, True, True), (-301, False, False),
          (1 << 31, False, False)]


@pytest.mark.parametrize("age,valid,echoed", WINDOW)
def test_the_validity_window(zones: Zones, age: int, valid: bool, echoed: bool) -> None:
    now = 1_700_000_000
    client = bytes.fromhex("0123456789abcdef")
    made = Cookies([SECRET], clock=lambda: (now - age) & 0xFFFFFFFF)
    sent = made.answer(client, packed("192.0.2.1"))[0]
    python = python_verdict([SECRET], "192.0.2.1", sent, now)
    assert python[1] is valid
    assert (python[0] == sent) is echoed
    if not echoed:  # a fresh one, stamped now
        assert python[0][:16] == client + struct.pack("!BxxxI", 1, now)
    if fastpath.available():
        assert c_verdict(zones, [SECRET], "192.0.2.1", sent, now) == python


FORGERIES = {
    "a random hash": lambda good: good[:16] + bytes(8),
    "another client's address": None,  # see below
    "another client cookie": lambda good: bytes(8) + good[8:],
    "version 2": lambda good: good[:8] + b"\x02" + good[9:],
    "an 8-byte server cookie": lambda good: good[:16],
    "a 32-byte server cookie": lambda good: good + bytes(16),
    "a timestamp moved": lambda good: good[:12] + struct.pack("!I", 1_700_000_001) + good[16:],
}


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_server_cookies_are_not_honoured(zones: Zones, name: str) -> None:
    """Answered with a fresh cookie (cookies are not required), never marked valid."""
    now = 1_700_000_000
    good = python_verdict([SECRET], "192.0.2.1", bytes.fromhex("0123456789abcdef"), now)[0]
    forge = FORGERIES[name]
    host = "192.0.2.2" if forge is None else "192.0.2.1"
    sent = good if forge is None else forge(good)
    python = python_verdict([SECRET], host, sent, now)
    assert python == (sent[:8] + Cookies([SECRET], lambda: now).server_cookie(
        SECRET, sent[:8], struct.pack("!I", now), packed(host)), False)
    if fastpath.available():
        assert c_verdict(zones, [SECRET], host, sent, now) == python


def test_a_cookie_of_a_secret_no_longer_held_is_not_valid() -> None:
    now = 1_700_000_000
    sent = python_verdict([OLD_SECRET], "192.0.2.1", bytes(8), now)[0]
    assert python_verdict([NEW_SECRET, OLD_SECRET], "192.0.2.1", sent, now)[1]
    assert not python_verdict([NEW_SECRET], "192.0.2.1", sent, now)[1]


@pytest.mark.parametrize("length", [0, 1, 7, 9, 12, 15, 41, 64])
def test_malformed_cookie_lengths_are_formerr(zones: Zones, length: int) -> None:
    """RFC 7873 section 5.2.2; C leaves them to Python (a miss)."""
    options = Options(cookies=Cookies([SECRET], clock=lambda: 1_700_000_000))
    wire = cookie_query(bytes(length))
    [reply] = Responder(options).respond(Snapshot(zones), wire, False, "192.0.2.1")
    message = dns.message.from_wire(reply)
    assert message.rcode() == dns.rcode.FORMERR and reply_cookie(reply) is None
    if fastpath.available():
        fastpath.set_cookies([SECRET], 1_700_000_000)
        table = fastpath.build_table(zones, options, 100)
        assert table.answer(wire) is None and table.cookie(wire) == (None, False)


def test_two_cookie_options_are_formerr(zones: Zones) -> None:
    options = Options(cookies=Cookies([SECRET], clock=lambda: 1_700_000_000))
    wire = cookie_query(bytes(8), extra=[dns.edns.GenericOption(OPTION_COOKIE, bytes(8))])
    [reply] = Responder(options).respond(Snapshot(zones), wire, False, "192.0.2.1")
    assert dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR
    if fastpath.available():
        fastpath.set_cookies([SECRET], 1_700_000_000)
        assert fastpath.build_table(zones, options, 100).answer(wire) is None


@pytest.mark.parametrize("length", [8, 16, 24, 40])
def test_every_valid_length_gets_a_cookie(zones: Zones, length: int) -> None:
    options = Options(cookies=Cookies([SECRET], clock=lambda: 1_700_000_000))
    wire = cookie_query(bytes(range(length)))
    [reply] = Responder(options).respond(Snapshot(zones), wire, False, "192.0.2.1")
    cookie = reply_cookie(reply)
    assert cookie is not None and cookie[:8] == bytes(range(8)) and len(cookie) == 24


def test_the_verdict_is_on_the_parsed_query_for_rate_limiting() -> None:
    """`Edns.cookie_valid`, set by `Responder.check_cookie` (rate limiting reads it)."""
    now = 1_700_000_000
    responder = Responder(Options(cookies=Cookies([SECRET], clock=lambda: now)))
    good = python_verdict([SECRET], "192.0.2.1", bytes(8), now)[0]
    for sent, valid, verdict in ((good, True, "valid"), (bytes(8), False, "new"),
                                 (good[:16] + bytes(8), False, "invalid")):
        query = parse_query(cookie_query(sent))
        assert query is not None and query.edns is not None
        responder.check_cookie(query, "192.0.2.1")
        assert query.edns.cookie_valid is valid and responder.cookie == verdict
    query = parse_query(cookie_query(None))
    assert query is not None and query.edns is not None
    responder.check_cookie(query, "192.0.2.1")
    assert not query.edns.cookie_valid and responder.cookie == "-"


def test_without_cookies_configured_no_reply_has_one(zones: Zones) -> None:
    wire = cookie_query(bytes(8))
    [reply] = Responder(Options()).respond(Snapshot(zones), wire, False, "192.0.2.1")
    assert dns.message.from_wire(reply).rcode() == dns.rcode.NOERROR
    assert reply_cookie(reply) is None
    if fastpath.available():
        fastpath.set_cookies([SECRET], 1_700_000_000)  # on for the process, off for this table
        table = fastpath.build_table(zones, Options(), 100)
        assert table.cookie(wire) == (None, False)
        assert table.answer(wire) == reply


def test_cached_replies_carry_each_clients_own_cookie(zones: Zones) -> None:
    """The answer cache writes each query's cookie over the stored one, before the ECS
    option; the Python loop never reuses a reply with a cookie."""
    now = 1_700_000_000
    responder = Responder(Options(cookies=Cookies([SECRET], clock=lambda: now)))
    snapshot = Snapshot(zones)
    for ecs in (None, "192.0.2.0/24", "0.0.0.0/0"):
        for client in range(3):
            wire = cookie_query(bytes([client]) * 8, ecs=ecs)
            [reply] = responder.respond(snapshot, wire, False, f"192.0.2.{client}")
            assert reply == Responder(responder.options).respond(Snapshot(zones), wire, False,
                                                                 f"192.0.2.{client}")[0]
            assert reply_cookie(reply)[:8] == bytes([client]) * 8  # type: ignore[index]
            assert not responder.reusable
    assert snapshot.answers.hits >= 6


def test_pure_siphash_is_the_native_one() -> None:
    if not fastpath.available():
        pytest.skip("the C extension is not built")
    from gslb.server import _fastpath  # type: ignore[attr-defined]

    rng = random.Random(9018)
    for n in range(70):
        key, data = rng.randbytes(16), rng.randbytes(n)
        assert siphash24(key, data) == _fastpath.siphash(key, data)


def test_the_secret_file(tmp_path: Path) -> None:
    path = tmp_path / "cookie.secret"
    path.write_text(f"# the fleet's\n{NEW_SECRET.hex()}\n\n{OLD_SECRET.hex().upper()}  # old\n")
    assert read_secrets(path) == [NEW_SECRET, OLD_SECRET]
    for text in ("", "# nothing\n", "abcd\n", NEW_SECRET.hex() + "00\n", "zz" * 16 + "\n",
                 (SECRET.hex() + "\n") * 9):
        path.write_text(text)
        with pytest.raises(CookieSecretError):
            read_secrets(path)


def test_a_changed_secret_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "cookie.secret"
    path.write_text(SECRET.hex() + "\n")
    secrets = CookieSecrets(path)
    assert secrets.cookies.secrets == (SECRET,) and not secrets.reload_if_changed()
    path.write_text(f"{NEW_SECRET.hex()}\n{SECRET.hex()}\n")
    assert secrets.reload_if_changed() and secrets.cookies.secrets == (NEW_SECRET, SECRET)
    path.write_text("not hex\n")  # kept: a broken file never takes the secrets away
    assert not secrets.reload_if_changed() and secrets.cookies.secrets == (NEW_SECRET, SECRET)
    path.unlink()
    assert not secrets.reload_if_changed() and secrets.cookies.secrets == (NEW_SECRET, SECRET)
    assert len(CookieSecrets(None).cookies.secrets[0]) == 16  # no file: a random secret


def test_cookies_need_a_secret() -> None:
    with pytest.raises(ValueError):
        Cookies([], clock=lambda: 0)
    with pytest.raises(ValueError):
        Cookies([bytes(15)], clock=lambda: 0)
