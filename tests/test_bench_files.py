"""`make bench` writes its zone and query files before any server starts: every query file
must name only the zones the servers load (a typo there shows only as a bench run full of
REFUSED answers, or as a traceback after minutes of set-up)."""

from __future__ import annotations

import sys
from pathlib import Path

import dns.edns
import dns.message
import dns.name
import dns.rdatatype

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import run  # noqa: E402
import zonegen  # noqa: E402

SAMPLE = 5_000  # queries written of each file


def wire_questions(path: Path) -> list[str]:
    """The questions of a file in dnsperf's wire format (-B: each message after its
    2-byte length), as "name type" lines; every message must carry an ECS option."""
    data, lines, at = path.read_bytes(), [], 0
    while at < len(data):
        length = int.from_bytes(data[at:at + 2], "big")
        message = dns.message.from_wire(data[at + 2:at + 2 + length])
        assert any(isinstance(option, dns.edns.ECSOption) for option in message.options)
        question = message.question[0]
        lines.append(f"{question.name} {dns.rdatatype.to_text(question.rdtype)}")
        at += 2 + length
    return lines


def test_every_query_file_names_a_served_zone(tmp_path: Path) -> None:
    """Each file `make bench` sends, written by its own writer and seed, but SAMPLE queries
    long (a writer draws each query the same way whatever the count: generating and
    parsing the 100,000 ECS messages of each wire file took most of a minute)."""
    served = {dns.name.from_text(zonegen.ORIGIN), dns.name.from_text(run.SIGNED_ORIGIN)}
    used = {sub.queries for mix in run.MIXES for sub in mix.subruns or ()}
    wire = {sub.queries for mix in run.MIXES for sub in mix.subruns or () if sub.wire}
    assert used == set(run.QUERY_FILES)
    for key in sorted(used):
        assert run.QUERY_FILES[key].count >= 100_000, key
        path = tmp_path / f"{key}.queries"
        run.QUERY_FILES[key].write(path, SAMPLE)
        lines = wire_questions(path) if key in wire else path.read_text().splitlines()
        assert len(lines) == SAMPLE, key
        for line in lines:
            name, rdtype = line.split()
            assert any(dns.name.from_text(name).is_subdomain(zone) for zone in served), (key, line)
            assert rdtype in ("A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "DS"), (key, line)
    zone = tmp_path / "bench.test.zone"
    assert zonegen.write_bench_zone(zone) > 10_000


def test_long_tail_queries_name_owners_of_the_large_zone(tmp_path: Path) -> None:
    zone, records = tmp_path / "large.test.zone", 1_000
    zonegen.write_large_zone(zone, records)
    owners = {line.split()[0] for line in zone.read_text().splitlines() if line.startswith("r")}
    for kind in ("first", "uniform", "zipf"):
        path = tmp_path / f"{kind}.queries"
        zonegen.write_large_queries(path, kind, records, 5_000, seed=1)
        lines = path.read_text().splitlines()
        names = [line.split()[0] for line in lines]
        assert all(line.endswith(" A") for line in lines), kind
        assert {name.removesuffix("." + zonegen.LARGE_ORIGIN) for name in names} <= owners, kind
        if kind == "first":
            assert len(names) == len(set(names)) == records
        else:
            assert len(names) == 5_000
    zipf = (tmp_path / "zipf.queries").read_text().splitlines()
    top = max(zipf.count(name) for name in set(zipf))
    assert top > 5_000 / 10  # rank 1 of a Zipf s = 1 draw over 1,000 owners gets about 13%
