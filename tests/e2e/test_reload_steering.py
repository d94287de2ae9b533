"""A bad edit never changes what steered names answer (issue 7, items 1 and 2).

Real `gslb serve` (one process, and a supervisor with two workers), real SIGHUP. For every
steered name of the demo zone and several client networks (sent as ECS), 200 answers are
recorded before the edit and after it: the same answers in the same proportions, with
the same ECS scopes. The edits: a typo in the zone file (the zone is kept with its
steering), then a typo in one steered record (that record keeps its last good version
while the other edits of the file apply). The log holds exactly the true problems.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
from pathlib import Path

import dns.edns
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.servers import DEMO_ZONES, GslbProcess, wait_until

NAMES = ["www2.example.com.", "api.example.com.", "geo.example.com."]
NETWORKS = ["10.1.2.0/24", "192.0.2.0/24", "203.0.113.0/24"]  # internal, two public
SAMPLES = 200
SHARE_TOLERANCE = 0.2  # a 3:1 weighted share over 200 draws varies by about 0.03
ZONE_TYPO = ("web         IN A    192.0.2.80", "web         IN A    192.0.2.800")
YAML_TYPO = ("        fallback: dr\n", "        fallback: drr\n")
NEW_RECORD = """
  added:
    type: A
    pools: {p: {members: [192.0.2.99]}}
    rules: [{pool: p}]
"""
GEO_RECORD = """
  eu:
    type: A
    pools: {p: {members: [{value: 192.0.2.97, check: eu-web}]}, q: {members: [192.0.2.98]}}
    rules: [{geos: [EU], pool: q}, {pool: p}]
"""
Sample = dict[tuple[str, str], tuple[collections.Counter, set[int]]]


def with_records(text: str, records: str) -> str:
    """The steering file with `records` (two-space indented) first under `records:`."""
    head, marker, rest = text.partition("\nrecords:\n")
    assert marker, "no records: mapping in the steering file"
    return head + marker + records.lstrip("\n") + rest


def _ask(server: GslbProcess, name: str, network: str) -> tuple[tuple[str, ...], int, int]:
    address, prefix = network.split("/")
    query = dns.message.make_query(name, "A", use_edns=0,
                                   options=[dns.edns.ECSOption(address, int(prefix))])
    reply = dns.query.udp(query, server.host, port=server.port, timeout=2)
    answer = tuple(sorted(rd.to_text() for rrset in reply.answer for rd in rrset))
    scopes = [opt.scopelen for opt in reply.options if isinstance(opt, dns.edns.ECSOption)]
    return answer, reply.rcode(), scopes[0] if scopes else -1


def _sample(server: GslbProcess) -> Sample:
    """SAMPLES answers per (name, client network): how often each answer, which scopes."""
    result: Sample = {}
    for name in NAMES:
        for network in NETWORKS:
            counts: collections.Counter = collections.Counter()
            scopes = set()
            for _ in range(SAMPLES):
                answer, rcode, scope = _ask(server, name, network)
                assert rcode == dns.rcode.NOERROR, (name, network, dns.rcode.to_text(rcode))
                counts[answer] += 1
                scopes.add(scope)
            result[(name, network)] = (counts, scopes)
    return result


def _assert_same(before: Sample, after: Sample) -> None:
    for key, (counts, scopes) in before.items():
        counts_after, scopes_after = after[key]
        assert set(counts_after) == set(counts), (key, counts, counts_after)
        for answer, count in counts.items():
            share, share_after = count / SAMPLES, counts_after[answer] / SAMPLES
            assert abs(share - share_after) < SHARE_TOLERANCE, (key, counts, counts_after)
        assert scopes_after == scopes, (key, scopes, scopes_after)


def _errors(log: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in log.splitlines() if " ERROR " in line]


def _reload(server: GslbProcess, workers: str) -> None:
    marker = "reload done:" if workers != "1" else "reloaded:"
    count = server.log().count(marker)
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: server.log().count(marker) > count, timeout=20), server.log()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_edits_keep_every_steered_answer(tmp_path: Path, workers: str) -> None:
    zones = tmp_path / "zones"
    shutil.copytree(DEMO_ZONES, zones)
    zone_file, yaml_file = zones / "example.com.zone", zones / "example.com.gslb.yaml"
    server = GslbProcess(zones, ["--workers", workers])
    server.start(["example.com.", "sub.example.com.", "example.net."])
    try:
        before = _sample(server)
        assert {a for c, _ in before.values() for a in c} >= {("192.0.2.10",), ("192.0.2.11",)}
        assert before[("geo.example.com.", "10.1.2.0/24")][1] == {8}  # the rule's /8

        # 1. The zone file breaks while the other zones reload: example.com. is kept,
        # with its steering exactly as before.
        zone_file.write_text(zone_file.read_text().replace(*ZONE_TYPO))
        (zones / "example.net.zone").write_text((zones / "example.net.zone").read_text())
        _reload(server, workers)
        _assert_same(before, _sample(server))
        zone_line = next(n for n, line in enumerate(zone_file.read_text().splitlines(), 1)
                         if ZONE_TYPO[1] in line)
        assert _errors(server.log()) == [
            f"{zone_file}:{zone_line}: bad A rdata: '192.0.2.800' is not an IPv4 address"]

        # 2. The zone is fixed; one steered record gets a typo and a record is added:
        # the broken record keeps its last good version, the new one applies.
        zone_file.write_text(zone_file.read_text().replace(ZONE_TYPO[1], ZONE_TYPO[0]))
        yaml_file.write_text(with_records(yaml_file.read_text().replace(*YAML_TYPO), NEW_RECORD))
        _reload(server, workers)
        _assert_same(before, _sample(server))
        assert _ask(server, "added.example.com.", "192.0.2.0/24")[0] == ("192.0.2.99",)
        typo_line = next(n for n, line in enumerate(yaml_file.read_text().splitlines(), 1)
                         if "fallback: drr" in line)
        assert _errors(server.log())[1:] == [
            f'{yaml_file}:{typo_line}: api.example.com. A: pool "main": fallback "drr" is not a pool']
        assert re.search(r"api\.example\.com\. A: keeping the last good version", server.log())
        assert "also has A records" not in server.log()
    finally:
        server.stop()


def test_a_steered_record_broken_at_start_answers_servfail(tmp_path: Path) -> None:
    """No last good version yet: SERVFAIL for that name and type (resolvers retry
    elsewhere and do not cache it for the negative TTL), never NXDOMAIN; other types at
    the name are NODATA, and the rest of the file steers."""
    zones = tmp_path / "zones"
    shutil.copytree(DEMO_ZONES, zones)
    yaml_file = zones / "example.com.gslb.yaml"
    yaml_file.write_text(with_records(yaml_file.read_text().replace(*YAML_TYPO),
                                      NEW_RECORD + GEO_RECORD))
    state = tmp_path / "state.yaml"
    state.write_text("health:\n  eu-web: up\n  eu-wbe: down\n")
    server = GslbProcess(zones, ["--workers", "1", "--state", str(state)])
    server.start(["example.com."])
    try:
        assert server.query("api.example.com.", "A").rcode() == dns.rcode.SERVFAIL
        for other in ("AAAA", "TXT"):
            reply = server.query("api.example.com.", other)
            assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
        assert _ask(server, "added.example.com.", "192.0.2.0/24")[0] == ("192.0.2.99",)
        log = server.log()
        assert "api.example.com. A: no valid version of this steered record; answering SERVFAIL" in log
        # item 6: what can never take effect is said at start
        assert "eu.example.com. A: rule 1 never matches: geos need a City or Country database " \
            "(--geoip)" in log
        assert f"{state}:3: health check 'eu-wbe' is not the check of any member of a valid " \
            "steered record" in log
        assert "'eu-web' is not" not in log
    finally:
        server.stop()
