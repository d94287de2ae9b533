"""Differential test against NSD: the protocol corners of test_knot_diff.py (meta query
types, AXFR and IXFR over UDP, refused transfers, classes not served) go to gslb and to a
real `nsd` on the same zones, and must match but for `KNOWN_DIFFERENCES`, each with the
RFC reason gslb's reply is right. (The general DNS corpus is compared with Knot only: NSD
differs from both by design there, e.g. it puts the zone's NS RRset in the authority
section of every positive answer.)

Run: .venv/bin/python -m pytest -q tests/interop/test_nsd_diff.py   (about 3 seconds)
"""

from __future__ import annotations

import os
from typing import Iterator

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

from tests.interop.compare import (
    Known,
    Message,
    Outcome,
    assert_none_stale,
    assert_only_known,
    section_set,
)
from tests.interop.nsd import NSD, NsdProcess
from tests.interop.test_knot_diff import ORIGINS, ZONES, corner_corpus, gslb, run_corpus

if NSD is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("nsd (Debian package nsd) is required in CI")
    pytest.skip("nsd (Debian package nsd) not installed", allow_module_level=True)

__all__ = ["gslb"]  # the module fixture, shared with the Knot test's definition

def soa_alone_where_nsd_sends_part_of_the_zone(ours: Message, theirs: Message) -> bool:
    soa = [rrset for rrset in ours.answer if rrset.rdtype == dns.rdatatype.SOA]
    return (ours.rcode() == theirs.rcode() == dns.rcode.NOERROR and len(ours.answer) == 1
            and len(soa) == 1 and section_set(soa) < section_set(theirs.answer)
            and not theirs.flags & dns.flags.TC)


KNOWN_DIFFERENCES: list[Known] = [
    Known("parent.test.", ("IXFR",), frozenset({"answer"}),
          soa_alone_where_nsd_sends_part_of_the_zone,
          "IXFR over UDP from a client with an older serial: RFC 1995 section 4 says 'If "
          "the UDP reply does not fit, the query responder MUST send back single SOA "
          "record of the server's zone', which gslb does (and Knot). NSD instead sends "
          "the first 1232 bytes' worth of a full transfer, without TC and without the "
          "closing SOA, which is neither a whole transfer nor the single SOA."),
]


@pytest.fixture(scope="module")
def outcomes(gslb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Outcome]]:
    nsd = NsdProcess(ZONES, ORIGINS, tmp_path_factory.mktemp("nsd"))
    try:
        nsd.start()
        yield run_corpus(gslb, nsd.host, nsd.port, corner_corpus(), "nsd")
    finally:
        nsd.stop()


def test_corners_match_nsd(outcomes: list[Outcome]) -> None:
    assert_only_known(outcomes, KNOWN_DIFFERENCES, "NSD")


def test_known_differences_still_occur(outcomes: list[Outcome]) -> None:
    assert_none_stale(outcomes, KNOWN_DIFFERENCES)
