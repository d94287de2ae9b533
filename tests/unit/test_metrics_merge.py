"""Merging per-process reports into one node's metrics: sums across processes (stopped
ones included), folding a stopped worker keeps every count, histogram buckets cumulate."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gslb.observability import metrics
from gslb.observability.logs import logfmt_pairs
from gslb.observability.taps import SUM, new_histogram

STATIC = ("example.com.", 1, 0, False, ())  # zone, qtype A, NOERROR, udp, not steered
STEERED = ("example.com.", 1, 0, False, (("www.example.com.", "A", "web", ("192.0.2.1",)),))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def report(pid: int, hits: int, misses: int, steered: int, latency_us: list[int]) -> dict:
    latency = new_histogram()
    for us in latency_us:
        latency[us.bit_length()] += 1
        latency[SUM] += us * 1000
    return {"pid": pid, "serves": True,
            "queries": {(STATIC, True): hits, (STATIC, False): misses, (STEERED, True): steered},
            "udp_latency": latency, "tcp_accepted": 1}


def samples(directory: Path) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render(directory).decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def write(directory: Path, data: dict) -> None:
    (directory / f"{data['pid']}{metrics.SUFFIX}").write_bytes(marshal.dumps(data))


def test_reports_sum_and_a_folded_worker_keeps_its_counts(tmp_path: Path) -> None:
    gone = dead_pid()
    write(tmp_path, report(os.getpid(), hits=5, misses=2, steered=1, latency_us=[3, 40]))
    write(tmp_path, report(gone, hits=10, misses=1, steered=2, latency_us=[700]))
    static = frozenset({"zone": "example.com.", "qtype": "A", "rcode": "NOERROR",
                        "transport": "udp", "steered": "false"}.items())
    before = samples(tmp_path)
    assert before[("gslb_queries_total", static)] == 18
    assert before[("gslb_answer_cache_hits_total", frozenset({("zone", "example.com.")}))] == 18
    assert before[("gslb_answer_cache_misses_total", frozenset({("zone", "example.com.")}))] == 3
    member = frozenset({"record": "www.example.com.", "type": "A", "pool": "web",
                        "member": "192.0.2.1"}.items())
    assert before[("gslb_steering_answers_total", member)] == 3
    assert before[("gslb_tcp_connections_accepted_total", frozenset())] == 2
    assert before[("gslb_workers", frozenset())] == 1  # the stopped one is not live

    retired: dict = {}
    own = tmp_path / f"{os.getpid()}{metrics.SUFFIX}"
    mine = marshal.loads(own.read_bytes())

    def write_own() -> None:
        merged = dict(mine)
        metrics.merge_counters(merged, {k: v for k, v in retired.items()})
        own.write_bytes(marshal.dumps(merged))

    assert metrics.fold_dead(tmp_path, retired, write_own) == 1
    assert not (tmp_path / f"{gone}{metrics.SUFFIX}").exists()
    after = samples(tmp_path)
    for key, value in before.items():
        if key[0].endswith(("_total", "_count", "_sum", "_bucket")):
            assert after[key] == value, key


def test_latency_buckets_are_cumulative(tmp_path: Path) -> None:
    write(tmp_path, report(os.getpid(), 1, 0, 0, latency_us=[0, 5, 9, 100, 5000, 10**7]))
    got = samples(tmp_path)
    bucket = lambda le: got[("gslb_answer_duration_seconds_bucket",  # noqa: E731
                             frozenset({"transport": "udp", "le": le}.items()))]
    assert bucket("8e-06") == 2  # 0 and 5 us
    assert bucket("1.6e-05") == 3  # and 9
    assert bucket("0.000128") == 4
    assert bucket("0.008192") == 5
    assert bucket("+Inf") == 6
    assert got[("gslb_answer_duration_seconds_count", frozenset({("transport", "udp")}))] == 6


def test_logfmt_quotes_only_what_needs_it() -> None:
    assert logfmt_pairs({"a": "plain", "b": "two words", "c": 'say "hi"', "d": "", "e": 3}) == \
        'a=plain b="two words" c="say \\"hi\\"" d="" e=3'

