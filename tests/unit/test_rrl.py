"""Response rate limiting, pure logic: the class of a reply and the limiter's verdicts,
in C (gslb/server/native/rrl.c) and in Python (gslb.dns.rrl), which must agree."""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from gslb.dns.rrl import CLASSES, RrlSettings, classify
from gslb.server import fastpath
from gslb.server.rrl import PythonLimiter

native = fastpath.native()
needs_native = pytest.mark.skipif(native is None, reason="the C extension is not built")


def reply(qname: str, qtype: str = "A", rcode: int = dns.rcode.NOERROR, aa: bool = True,
          answer: list[str] = (), authority: list[str] = ()) -> bytes:  # type: ignore[assignment]
    query = dns.message.make_query(qname, qtype)
    message = dns.message.make_response(query)
    message.set_rcode(rcode)
    if aa:
        message.flags |= dns.flags.AA
    for text in answer:
        message.answer.append(dns.rrset.from_text(*text.split(maxsplit=4)))
    for text in authority:
        message.authority.append(dns.rrset.from_text(*text.split(maxsplit=4)))
    return message.to_wire()


SOA = "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 1 2 3 4 5"
REPLIES = {
    "positive": reply("WWW.Example.com.", answer=["www.example.com. 60 IN A 192.0.2.1"]),
    "nodata": reply("www.example.com.", "MX", authority=[SOA]),
    "nxdomain": reply("nope.example.com.", rcode=dns.rcode.NXDOMAIN, authority=[SOA]),
    "cname-nxdomain": reply("alias.example.com.", rcode=dns.rcode.NXDOMAIN,
                            answer=["alias.example.com. 60 IN CNAME gone.example.com."],
                            authority=[SOA]),
    "referral": reply("host.deleg.example.com.", aa=False,
                      authority=["deleg.example.com. 60 IN NS ns.deleg.example.com."]),
    "refused": reply("www.example.org.", rcode=dns.rcode.REFUSED, aa=False),
    "servfail": reply("www.example.com.", rcode=dns.rcode.SERVFAIL, aa=False),
}


def wire(name: str) -> bytes:
    return dns.name.from_text(name).to_wire()


@pytest.mark.parametrize("case, expected", [
    ("positive", ("positive", wire("www.example.com."), 1)),
    ("nodata", ("nodata", wire("www.example.com."), 0)),
    ("nxdomain", ("nxdomain", wire("example.com."), 0)),
    ("cname-nxdomain", ("nxdomain", wire("example.com."), 0)),
    ("referral", ("referral", wire("deleg.example.com."), 0)),
    ("refused", ("error", b"\x00", 0)),
    ("servfail", ("error", b"\x00", 0)),
])
def test_replies_are_classed_by_their_own_bytes(case: str, expected: tuple) -> None:
    cls, name, qtype, _ = classify(REPLIES[case])
    assert (CLASSES[cls], name, qtype) == expected
    if native is not None:
        assert native.rrl_classify(REPLIES[case]) == expected


def test_random_names_of_one_zone_share_the_nxdomain_name() -> None:
    names = {classify(reply(f"r{i}.example.com.", rcode=dns.rcode.NXDOMAIN,
                            authority=[SOA]))[1] for i in range(20)}
    assert names == {wire("example.com.")}


@needs_native
def test_c_and_python_class_every_mangled_reply_alike() -> None:
    """Truncated, bit-flipped and random messages: the same class and name, and no
    read past the end in C (the fuzz and ASan suites run the loop itself)."""
    assert native is not None
    rng = random.Random(7)
    seeds = list(REPLIES.values())
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = bytes(data[: rng.randrange(len(data) + 1)])
        cls, name, qtype, _ = classify(data)
        assert native.rrl_classify(data) == (CLASSES[cls], name, qtype), data.hex()
    for _ in range(500):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        cls, name, qtype, _ = classify(data)
        assert native.rrl_classify(data) == (CLASSES[cls], name, qtype), data.hex()


def limiters(settings: RrlSettings, log: list | None = None) -> list[Any]:
    """The Python limiter, and the C one when built, alike configured."""
    made: list[Any] = [PythonLimiter(settings)]
    if log is not None:
        made[0].buckets.limited = lambda *args: log.append(("python", *args))
    if native is not None:
        exempt = [(n.network_address.packed, n.prefixlen) for n in settings.exempt]
        made.append(native.Limiter(settings.rate, settings.slip, settings.window,
                                   settings.ipv4_prefix, settings.ipv6_prefix, exempt,
                                   (lambda *args: log.append(("c", *args))) if log is not None
                                   else None))
    return made


def verdicts(limiter: Any, script: list[tuple[str, str, int]]) -> list[str]:
    return [limiter.check(REPLIES[case], host, now)[0] for case, host, now in script]


def test_a_bucket_holds_rate_times_window_and_refills_at_the_rate() -> None:
    script = [("positive", "10.0.0.1", 1000)] * 13 + [("positive", "10.0.0.1", 2000)] * 6
    for limiter in limiters(RrlSettings(rate=5, slip=3, window=2)):
        got = verdicts(limiter, script)
        assert got[:10] == ["pass"] * 10  # 5/s x 2 s
        assert got[10:13] == ["drop", "drop", "slip"]  # every 3rd limited one slips
        assert got[13:] == ["pass"] * 5 + ["drop"]  # a second later: 5 more
        assert limiter.counts() == {("dropped", "positive"): 3, ("slipped", "positive"): 1}


def test_networks_classes_and_exemptions_have_their_own_fate() -> None:
    settings = RrlSettings(rate=1, slip=0, window=1,
                           exempt=(ipaddress.ip_network("192.0.2.7/32"),))
    script = [
        ("positive", "10.0.0.1", 0), ("positive", "10.0.0.200", 0),  # one /24
        ("positive", "10.0.1.1", 0),                                   # another /24
        ("nxdomain", "10.0.0.1", 0), ("cname-nxdomain", "10.0.0.1", 0),  # one zone
        ("nodata", "10.0.0.1", 0), ("referral", "10.0.0.1", 0), ("referral", "10.0.0.9", 0),
        ("refused", "10.0.0.1", 0), ("servfail", "10.0.0.1", 0),       # errors: one bucket
        ("positive", "2001:db8:0:1::1", 0), ("positive", "2001:db8:0:ff::2", 0),  # one /56
        ("positive", "2001:db8:0:100::1", 0),                          # another /56
        ("positive", "192.0.2.7", 0), ("positive", "192.0.2.7", 0),    # exempt
    ]
    expected = ["pass", "drop", "pass", "pass", "drop", "pass", "pass", "drop", "pass", "drop",
                "pass", "drop", "pass", "pass", "pass"]
    for limiter in limiters(settings):
        assert verdicts(limiter, script) == expected


@pytest.mark.parametrize("slip, pattern", [(0, "dddddd"), (1, "ssssss"), (2, "dsdsds")])
def test_slip_truncates_every_nth_limited_reply(slip: int, pattern: str) -> None:
    for limiter in limiters(RrlSettings(rate=1, slip=slip, window=1)):
        limiter.check(REPLIES["positive"], "10.0.0.1", 5)
        got = "".join(limiter.check(REPLIES["positive"], "10.0.0.1", 5)[0][0] for _ in pattern)
        assert got == pattern


def test_a_slipped_reply_is_the_header_with_tc_and_the_question() -> None:
    sent = []
    for limiter in limiters(RrlSettings(rate=1, slip=1, window=1)):
        limiter.check(REPLIES["nxdomain"], "10.0.0.1", 5)
        verdict, truncated = limiter.check(REPLIES["nxdomain"], "10.0.0.1", 5)
        assert verdict == "slip"
        sent.append(truncated)
    message = dns.message.from_wire(sent[0])
    assert message.flags & dns.flags.TC and message.rcode() == dns.rcode.NXDOMAIN
    assert [str(q.name) for q in message.question] == ["nope.example.com."]
    assert not message.answer and not message.authority and not message.additional
    assert len(set(sent)) == 1  # C and Python: the same bytes


def test_a_limited_bucket_is_logged_once_a_window() -> None:
    log: list = []
    for limiter in limiters(RrlSettings(rate=1, slip=0, window=2), log):
        for now in (0, 0, 0, 500, 1500, 2100, 2100, 2200, 4300, 4300):
            limiter.check(REPLIES["nxdomain"], "10.0.0.1", now)
    entry = (b"\x0a\x00\x00\x00", "nxdomain", wire("example.com."))
    expected = [("python", *entry)] * 2
    if native is not None:
        expected += [("c", *entry)] * 2
    assert log == expected


def test_rate_zero_makes_no_limiter() -> None:
    from gslb.server.rrl import make_limiter

    assert make_limiter(RrlSettings(rate=0), native=False) is None
    assert make_limiter(RrlSettings(rate=0), native=True) is None
