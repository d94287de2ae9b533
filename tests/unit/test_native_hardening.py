"""Crafted inputs against the C fast path's edges: each test here failed (crashed, hung
or answered wrong) on the code before its fix. Run under ASan and UBSan too
(test_native_asan.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from types import SimpleNamespace

import dns.message
import pytest

from gslb.server import fastpath
from tests.servers import ROOT

pytestmark = pytest.mark.skipif(not fastpath.available(), reason="the C extension is not built")


def module():
    return fastpath.native()


def table():
    return module().Table(64, 1232, False)


def query(name: str, rdtype: str = "A") -> bytes:
    return dns.message.make_query(name, rdtype).to_wire()


# ---- names without a terminating root label ------------------------------------------

@pytest.mark.parametrize("wire", [b"\x40", b"\x03abc\x40", b"\x03abc\xff", b"\x03abc"])
def test_a_name_without_its_root_label_is_refused(wire: bytes) -> None:
    t = table()
    with pytest.raises(ValueError):
        t.add_zone(wire)
    zone = t.add_zone(b"\x04test\x00")
    t.reserve_names(4)
    with pytest.raises(ValueError):
        t.add_names(zone, [wire], fastpath.NAME_EXISTS)
    with pytest.raises(ValueError):
        t.denial(zone, False, [wire], b"", b"", 0)


def test_no_name_is_added_once_the_names_are_sealed() -> None:
    t = table()
    zone = t.add_zone(b"\x04test\x00")
    t.reserve_names(4)
    t.add_names(zone, [b"\x01a\x04test\x00"], fastpath.NAME_EXISTS)
    t.seal_names()
    t.seal_names()  # twice: nothing more to do
    with pytest.raises(ValueError):
        t.add_names(zone, [b"\x01b\x04test\x00"], fastpath.NAME_EXISTS)


def test_a_ds_query_at_a_child_apex_walks_only_real_names() -> None:
    """The walk that crashed: a DS question at the apex of a zone under another."""
    t = table()
    t.add_zone(b"\x00")
    t.add_zone(b"\x04test\x00")
    assert t.answer(query("test.", "DS")) is None
    with pytest.raises(ValueError):
        t.add_zone(b"\x40")


# ---- objects made by __new__ alone ---------------------------------------------------

TABLE_CALLS = [
    ("answer", (query("example."),)),
    ("put", (b"\x00" + bytes(fastpath.KEY_TAIL.size), 0, bytes(6), [], 0, 0)),
    ("add_zone", (b"\x00",)),
    ("zone_data", (0, {}, frozenset(), b"\x00", False)),
    ("denial", (0, False, [], b"", b"", 0)),
    ("reserve_names", (10,)),
    ("add_names", (0, [b"\x00"], 1)),
    ("seal_names", ()),
    ("add_record", (True, False, False, bytes(4), b"\x00", bytes(4), bytes(16), b"\x00",
                    bytes(4))),
    ("add_owner", (b"\x00", (), -1)),
    ("set_blocks", (0, bytes(4), b"\x00", bytes(4), bytes(16), b"\x00", bytes(4))),
    ("set_closest", (0, b"")),
    ("set_versions", (b"",)),
]


@pytest.mark.parametrize("method, args", TABLE_CALLS, ids=[call[0] for call in TABLE_CALLS])
def test_an_uninitialised_table_refuses_every_method(method: str, args: tuple) -> None:
    t = module().Table.__new__(module().Table)
    with pytest.raises(RuntimeError):
        getattr(t, method)(*args)
    assert len(t) == 0


def test_an_uninitialised_loop_refuses_to_run() -> None:
    loop = module().Loop.__new__(module().Loop)
    with pytest.raises(RuntimeError):
        loop.run()
    assert loop.table is None
    loop.stop()
    assert loop.counters()["received"] == 0


# ---- steering: rule indexes read from the rule map's bytes ---------------------------

STEERED = b"\x03www\x07steered\x04test\x00"
ANSWER_A = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04"
PLAIN = (512, 0, False, None, 0, -1, False)  # a query without EDNS (nor a cookie): the size limit 512


def steered_table(rules: list[int]):
    """One steered owner whose A record's IPv4 rule map has a block per /8 starting at
    0, 10, 20, ...: rule `rules[i]` for block i (native int32, read in place)."""
    from array import array
    t = table()
    starts = b"".join(bytes([10 * i, 0, 0, 0]) for i in range(len(rules)))
    prefixes = bytes([8] * len(rules))
    record = t.add_record(True, False, False, starts, prefixes, array("i", rules).tobytes(),
                          bytes(16), b"\x00", array("i", [-1]).tobytes())
    t.add_owner(STEERED, ((1, record),), -1)
    return t


def test_a_closest_array_is_replaced_only_for_a_closest_record_and_read_within_it() -> None:
    """set_closest (a replaced GeoIP database): an index past the records, a record
    without closest classes or classes not int32 are refused; a shorter array leaves a
    location entry past its end to Python (the ASan build checks the read)."""
    from array import array
    t = table()
    none = array("i", [-1]).tobytes()
    plain = t.add_record(True, False, False, bytes(4), b"\x00", none, bytes(16), b"\x00", none)
    near = t.add_record(True, False, False, bytes(4), b"\x00", none, bytes(16), b"\x00", none,
                        True, array("i", [1] * 8).tobytes(), False)
    t.add_owner(STEERED, ((1, near), (28, plain)), -1)
    t.set_locations(bytes(4), array("i", [6]).tobytes(), b"\x18",
                    bytes(16), array("i", [-1]).tobytes(), b"\x38")
    with pytest.raises(IndexError):
        t.set_closest(2, b"")
    with pytest.raises(IndexError):
        t.set_closest(-1, b"")
    with pytest.raises(ValueError):
        t.set_closest(plain, b"")
    with pytest.raises(ValueError):
        t.set_closest(near, b"\x00\x00\x00")
    with pytest.raises(TypeError):
        t.set_closest(near, bytearray(4))
    t.set_closest(near, array("i", [1, 2]).tobytes())  # entry 6 is past its end
    assert t.answer(query("www.steered.test."), host="10.1.2.3") is None


def put_steered(t, rule: int | None, address: bytes) -> None:
    bucket = fastpath.steer_bucket((0, rule, 4, 8, 0xFFFF, None))
    tail = fastpath.key_tail(1, PLAIN, False)[:-1] + b"\x01" + bucket
    t.put(STEERED + tail, 0x8400, b"\x00\x01\x00\x00\x00\x00" + ANSWER_A + address, [], 0, 0)


def test_rule_indexes_are_read_from_the_rule_map_bytes() -> None:
    """Each block's rule decides the bucket: read with memcpy, whatever the bytes'
    alignment (the UBSan build checks the reads)."""
    t = steered_table([-1, 7, 123456, -1])
    put_steered(t, None, b"\x01\x01\x01\x01")
    put_steered(t, 7, b"\x07\x07\x07\x07")
    wire = query("www.steered.test.")
    assert t.answer(wire, host="1.2.3.4").endswith(b"\x01\x01\x01\x01")
    assert t.answer(wire, host="10.9.9.9").endswith(b"\x07\x07\x07\x07")
    assert t.answer(wire, host="35.0.0.1").endswith(b"\x01\x01\x01\x01")
    assert t.answer(wire, host="20.0.0.1") is None  # rule 123456: nothing stored yet


@pytest.mark.parametrize("rule", [32_767, 32_768, 65_536 + 7, 2**31 - 1])
def test_rule_indexes_past_16_bits_keep_their_own_bucket(rule: int) -> None:
    """A rule map with more than 32,767 rules: the bucket carries the whole index (it
    was cut to 16 bits in C and packed as a short in Python, which raised)."""
    t = steered_table([-1, rule, rule & 0xFFFF])
    assert len(fastpath.steer_bucket((0, rule, 4, 8, 0xFFFF, None))) == fastpath.STEER_BUCKET.size == 14
    put_steered(t, rule, b"\x05\x05\x05\x05")
    wire = query("www.steered.test.")
    assert t.answer(wire, host="10.0.0.1").endswith(b"\x05\x05\x05\x05")
    if rule & 0xFFFF != rule:
        assert t.answer(wire, host="20.0.0.1") is None  # the low 16 bits are another rule


# ---- sizes: tables sized for huge counts, owners added one by one ----------------------

def run_bounded(code: str, timeout: float) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter that must end within `timeout` seconds (the code
    before the fix looped forever or took minutes: a timeout fails, never hangs)."""
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not end within {timeout} s: {code}")


@pytest.mark.parametrize("call", ["m.Table(1 << 62, 512, False)",
                                  "m.Table(sys.maxsize, 512, False)",
                                  "m.Table(64, 512, False).reserve_names(1 << 62)",
                                  "m.Table(64, 512, False).reserve_names(sys.maxsize)"])
def test_huge_counts_fail_with_memory_error_not_a_loop_without_end(call: str) -> None:
    done = run_bounded("import sys\nfrom gslb.server import _fastpath as m\n"
                       f"try:\n    {call}\nexcept MemoryError:\n    print('MemoryError')\n",
                       timeout=20)
    assert done.stdout.strip() == "MemoryError", done.stderr[-2000:]


def test_steered_owners_load_in_linear_time() -> None:
    """200,000 owners: each add_owner rebuilt the whole owner index (O(n^2), minutes);
    now an insertion, with a rebuild at each doubling."""
    code = """
from array import array
from gslb.server import _fastpath as m
t = m.Table(64, 512, False)
r = t.add_record(True, False, False, bytes(4), b"\\x00", array("i", [-1]).tobytes(),
                 bytes(16), b"\\x00", array("i", [-1]).tobytes())
for i in range(200_000):
    t.add_owner(b"\\x07h" + b"%06d" % i + b"\\x04test\\x00", ((1, r),), -1)
q = bytearray(b"\\x00\\x01\\x00\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07h199999\\x04test\\x00\\x00\\x01\\x00\\x01")
print(t.answer(bytes(q)))
"""
    done = run_bounded(code, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "None"  # a steered owner: its bucket, no entry yet


# ---- the name set: two names with one fingerprint ---------------------------------------

HASH_KEY = bytes(range(16))
# Under HASH_KEY, zone index 0 and a 1024-slot name set, these two names have one
# fingerprint and one home slot (found by a search over n0, n1, ... .c.test.).
PLAIN_NAME, CUT_NAME = "n1137661.c.test.", "n1340940.c.test."
COLLIDING_ZONE = f"""$ORIGIN c.test.
$TTL 300
@            SOA  ns.c.test. hostmaster.c.test. 1 7200 3600 1209600 60
@            NS   ns
ns           A    192.0.2.1
{PLAIN_NAME}     A    192.0.2.10
www.{PLAIN_NAME} A    192.0.2.11
{CUT_NAME}   NS   ns.elsewhere.example.
"""


class KeyedModule:
    """The extension with every Table made under HASH_KEY."""

    def __init__(self, real) -> None:
        self.real = real

    def Table(self, *args, **kwargs):  # noqa: N802 - the module's name
        return self.real.Table(*args, hash_key=HASH_KEY, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.real, name)


def test_two_names_with_one_fingerprint_never_merge(tmp_path, monkeypatch) -> None:
    """A plain name whose fingerprint is a cut's looked like a cut: its existing child
    was answered from the plain name's anchored NXDOMAIN entry."""
    from gslb.dns.handler import Responder
    from gslb.snapshot import Snapshot
    from tests.unit.test_answer_cache import OPTIONS
    from tests.zonesets import load_zone_dir

    (tmp_path / "c.test.zone").write_text(COLLIDING_ZONE)
    zones = load_zone_dir(tmp_path)
    monkeypatch.setattr(fastpath, "_module", KeyedModule(module()))
    native, python = Snapshot(zones), Snapshot(zones)
    table = fastpath.attach(native, OPTIONS)
    responder = Responder(OPTIONS)
    responder.respond(native, query("nx." + PLAIN_NAME), False, "127.0.0.1")
    assert table.answer(query("other-nx." + PLAIN_NAME)) is not None  # the anchored entry
    for name in ("www." + PLAIN_NAME, PLAIN_NAME, "x.www." + PLAIN_NAME, "a." + CUT_NAME):
        wire = query(name)
        expected = responder.respond(python, wire, False, "127.0.0.1")
        got = table.answer(wire)
        assert got is None or [got] == expected, name
    www = dns.message.from_wire(responder.respond(python, query("www." + PLAIN_NAME), False,
                                                  "127.0.0.1")[0])
    assert www.rcode() == 0 and www.answer


# ---- a socket's descriptor number reused while a loop still runs -----------------------

class StuckAnswer:
    """A miss callback that holds the loop until released, as a slow answer would."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.taps = SimpleNamespace(mask=0)

    def __call__(self, data: bytes, host: str, port: int = 0, draw: int = 0) -> list[bytes]:
        self.entered.set()
        self.release.wait(10)
        return [b"reply:" + data[:2]]


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_a_loop_never_uses_a_descriptor_number_reused_after_close() -> None:
    """The socket is closed while its loop is stuck in an answer and a new socket gets
    the same descriptor number: the loop's reply leaves from its own socket, and the new
    socket's traffic stays the new socket's (the loop kept a bare number: it sent
    through the new socket)."""
    old = udp_socket()
    address = old.getsockname()
    stuck = StuckAnswer()
    loop = module().Loop(old.fileno(), None, stuck)
    thread = threading.Thread(target=loop.run)
    thread.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        client.settimeout(5)
        client.sendto(b"\x12\x34" + bytes(10), address)
        assert stuck.entered.wait(5)
        loop.stop()
        number = old.fileno()
        old.close()
        new = udp_socket()
        try:
            assert new.fileno() == number  # the number is reused, as the kernel does
            other.sendto(b"for the new socket", new.getsockname())
            stuck.release.set()
            thread.join(5)
            assert not thread.is_alive()
            reply, source = client.recvfrom(100)
            assert (reply, source) == (b"reply:\x12\x34", address)
            new.settimeout(2)
            assert new.recv(100) == b"for the new socket"
        finally:
            new.close()
    again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    again.bind(address)  # the loop's end released the old socket
    again.close()
    with pytest.raises(OSError):
        loop.run()  # once per Loop: its descriptor went with it


def test_stop_leaves_the_socket_open_while_the_thread_runs(monkeypatch) -> None:
    """stop() gives up waiting after STOP_WAIT: the socket is then closed by the thread
    when it ends, never under it."""
    from gslb.server import udp

    monkeypatch.setattr(udp.UdpLoop, "STOP_WAIT", 0.2)
    sock = udp_socket()
    stuck = StuckAnswer()
    running = udp.NativeUdpLoop(sock, stuck, None)  # type: ignore[arg-type]
    running.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.sendto(b"\x56\x78" + bytes(10), sock.getsockname())
        assert stuck.entered.wait(5)
        running.stop()
        assert running.thread.is_alive() and sock.fileno() >= 0
        stuck.release.set()
        running.thread.join(5)
        assert client.recv(100) == b"reply:\x56\x78"
    assert sock.fileno() == -1
