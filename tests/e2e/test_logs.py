"""Logs of a real server parse as the documented formats (JSON, logfmt), and the query
log is sampled and switched on and off at run time with SIGUSR1 / SIGUSR2."""

from __future__ import annotations

import json
import re
import signal

import dns.edns
import dns.message
import dns.query

from tests.conftest import DEMO_ZONE_NAMES
from tests.servers import DEMO_ZONES, GslbProcess, wait_until

BASE_KEYS = {"ts", "level", "logger", "pid", "msg"}
QUERY_KEYS = {"client", "port", "ecs", "name", "type", "class", "rcode", "transport", "zone",
              "steering", "cookie", "latency_us"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# logfmt: key=value pairs, values bare or JSON-quoted strings.
LOGFMT_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^ "=]*)(?: |$)')


def parse_logfmt(line: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    position = 0
    for match in LOGFMT_PAIR.finditer(line):
        assert match.start() == position, f"not logfmt at {position}: {line!r}"
        value = match.group(2)
        fields[match.group(1)] = json.loads(value) if value.startswith('"') else value
        position = match.end()
    assert position == len(line), f"trailing garbage: {line!r}"
    return fields


def ask(server: GslbProcess, name: str, ecs: str | None = None) -> None:
    options = [dns.edns.ECSOption.from_text(ecs)] if ecs else []
    message = dns.message.make_query(name, "A", use_edns=0, options=options)
    dns.query.udp(message, "127.0.0.1", port=server.port, timeout=3)


def query_lines(events: list[dict]) -> list[dict]:
    return [e for e in events if e["logger"] == "gslb.query"]


def test_json_logs_and_query_log_switched_at_run_time() -> None:
    server = GslbProcess(DEMO_ZONES, ["--workers", "2", "--log-format", "json"])
    server.start(DEMO_ZONE_NAMES)
    try:
        ask(server, "www.example.com")  # query log off: not logged
        server.signal(signal.SIGUSR1)
        assert wait_until(lambda: server.log().count('"query log on') >= 3)  # supervisor + 2
        ask(server, "www2.example.com", ecs="198.51.100.7/24")
        ask(server, "geo.example.com", ecs="10.1.2.3/24")
        ask(server, "missing.example.net")
        assert wait_until(lambda: server.log().count('"logger": "gslb.query"') == 3)
        server.signal(signal.SIGUSR2)
        assert wait_until(lambda: server.log().count('"query log off') >= 3)
        ask(server, "www.example.com")
    finally:
        assert server.stop() == 0
    events = [json.loads(line) for line in server.log().splitlines()]
    for event in events:
        assert BASE_KEYS <= set(event), event
        assert TS.match(event["ts"]) and event["level"] in ("debug", "info", "warning", "error")
    # Two workers write their own lines: sorted by name, not in arrival order.
    lines = sorted(query_lines(events), key=lambda e: e["name"], reverse=True)
    assert [(e["name"], e["ecs"], e["rcode"], e["zone"]) for e in lines] == [
        ("www2.example.com.", "198.51.100.0/24", "NOERROR", "example.com."),
        ("missing.example.net.", "-", "NXDOMAIN", "example.net."),
        ("geo.example.com.", "10.1.2.0/24", "NOERROR", "example.com."),
    ]
    for event in lines:
        assert QUERY_KEYS <= set(event) and event["client"] == "127.0.0.1"
        assert event["type"] == "A" and event["transport"] == "udp"
    assert lines[0]["steering"].startswith("www2.example.com./A pool=web answer=192.0.2.1")
    assert lines[1]["steering"] == "-"
    assert lines[2]["steering"] == "geo.example.com./A pool=internal answer=10.0.0.80"


def test_logfmt_lines_and_a_sampled_query_log() -> None:
    server = GslbProcess(DEMO_ZONES, ["--workers", "1", "--log-format", "logfmt",
                                      "--query-log-sample", "5"])
    server.start(DEMO_ZONE_NAMES)
    try:
        server.signal(signal.SIGUSR1)
        assert wait_until(lambda: 'msg="query log on (one query in 5)"' in server.log())
        for index in range(20):
            ask(server, f"host{index}.example.com")
    finally:
        assert server.stop() == 0
    events = [parse_logfmt(line) for line in server.log().splitlines()]
    for event in events:
        assert BASE_KEYS <= set(event) and TS.match(event["ts"]), event
    lines = query_lines(events)
    assert [e["name"] for e in lines] == [f"host{i}.example.com." for i in (4, 9, 14, 19)]
    assert all(QUERY_KEYS <= set(e) and e["rcode"] == "NXDOMAIN" for e in lines)
