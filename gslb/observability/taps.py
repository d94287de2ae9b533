"""What the socket code records per query besides the responder's counts: the answer
latency, the sampled query log and the dnstap feed.

The latency histogram is a plain list per transport: index `i` counts answers that took
under 2**i microseconds (and at least half that), the last slot holds the sum in
nanoseconds; the metrics layer turns the list into a Prometheus histogram when it is
scraped. Reading the clock is what costs: about 250 ns a read on a virtual machine
without a fast clock source (two reads per query would be 5% of a cached answer), so one
query in LATENCY_SAMPLE is timed. While the query log or dnstap is on, every query is
(they report its latency and time anyway).

When both are off, the cost per query is one counter and one mask test.
"""

from __future__ import annotations

import logging
from time import perf_counter_ns
from typing import Protocol

import dns.name
import dns.rcode
import dns.rdatatype

from gslb.dns.handler import NO_ZONE
from gslb.dns.tally import Label
from gslb.dns.wire import parse_query

SUM = 64  # index of the nanosecond sum in a latency list (after 64 bucket slots)
LATENCY_SAMPLE = 16  # by default one query in 16 is timed (a power of two: a mask test)
log = logging.getLogger("gslb.query")


def new_histogram() -> list[int]:
    return [0] * (SUM + 1)


def qtype_text(number: int) -> str:
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(number))


def rcode_text(number: int) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(number))
    except ValueError:
        return str(number)


class Feed(Protocol):
    """Where sampled query/response pairs go (gslb.observability.dnstap.Dnstap)."""

    sent: int
    reconnects: int

    @property
    def dropped(self) -> int: ...

    def offer(self, query: bytes, response: bytes, peer: tuple, local: tuple, tcp: bool,
              elapsed_ns: int, zone: str = "") -> None: ...


class QueryLog:
    """Logs one query in `every` to the `gslb.query` logger, at INFO, as fields:
    client, port, ecs, name, type, class, rcode, transport, zone, steering, cookie,
    latency_us. Switched on and off at run time (SIGUSR1 / SIGUSR2)."""

    def __init__(self, every: int = 1) -> None:
        self.every = max(1, every)
        self.seen = 0
        self.lines = 0  # how many lines were written (a metric)

    def offer(self, label: Label | None, query: bytes, reply: bytes, peer: tuple, tcp: bool,
              elapsed_ns: int, cookie: str = "-") -> None:
        self.seen += 1
        if self.seen % self.every:
            return
        self.lines += 1
        log.info("query", extra={"fields": query_fields(label, query, reply, peer, tcp,
                                                         elapsed_ns, cookie)})


def query_fields(label: Label | None, query: bytes, reply: bytes, peer: tuple, tcp: bool,
                 elapsed_ns: int, cookie: str = "-") -> dict[str, object]:
    """The query log's fields for one answered query. `label` is what the responder
    counted it under (None when it was not counted: the answer failed); `cookie` its
    verdict on the query's DNS cookie (`Responder.cookie`)."""
    parsed = parse_query(query)
    name = qtype = qclass = ecs = "-"
    if parsed is not None and parsed.question_end:
        try:
            name = dns.name.from_wire(query, 12)[0].to_text()
        except Exception:  # a name the parse accepted but dnspython does not
            name = "-"
        qtype = qtype_text(parsed.qtype)
        qclass = "IN" if parsed.qclass == 1 else str(parsed.qclass)
        if parsed.edns is not None and parsed.edns.ecs is not None:
            ecs = str(parsed.edns.ecs.network())
    zone, steering = (label.key[0], label.key[4]) if label is not None else ("-", ())
    return {
        "client": peer[0], "port": peer[1] if len(peer) > 1 else 0, "ecs": ecs,
        "name": name, "type": qtype, "class": qclass,
        "rcode": rcode_text(reply[3] & 0x0F) if len(reply) > 3 else "-",
        "transport": "tcp" if tcp else "udp", "zone": zone,
        "steering": describe_steering(steering) or "-",
        "cookie": cookie,
        "latency_us": elapsed_ns // 1000,
    }


def describe_steering(decisions: tuple) -> str:
    """`owner/type pool=P answer=v1,v2` per decision, joined with `; `."""
    return "; ".join(f"{owner}/{rdtype} pool={pool or '-'} answer={','.join(values) or '-'}"
                     for owner, rdtype, pool, values in decisions)


class Taps:
    """Per-process: latency per transport, and the optional query log and dnstap feed."""

    def __init__(self, query_log: QueryLog | None = None, dnstap: Feed | None = None,
                 query_log_on: bool = False, latency_sample: int = LATENCY_SAMPLE) -> None:
        if latency_sample < 1 or latency_sample & (latency_sample - 1):
            raise ValueError(f"latency sample {latency_sample}: must be a power of two")
        self.latency_sample = latency_sample
        self.udp_latency = new_histogram()
        self.tcp_latency = new_histogram()
        self.query_log = query_log
        self.dnstap = dnstap
        self.query_log_on = False
        self.active = False
        self.seen = 0  # queries, for the sampling mask
        self.mask = latency_sample - 1  # time a query when `seen & mask` is 0
        self.set_query_log(query_log_on)

    def set_query_log(self, on: bool) -> None:
        """Turn the query log on or off (a no-op without one configured)."""
        self.query_log_on = on and self.query_log is not None
        self.active = self.query_log_on or self.dnstap is not None
        self.mask = 0 if self.active else self.latency_sample - 1

    def timed(self, started: int, label: Label | None, query: bytes, replies: list[bytes],
              peer: tuple, local: tuple, tcp: bool, cookie: str = "-") -> None:
        """A timed query was answered: its latency, then the query log and dnstap."""
        elapsed = perf_counter_ns() - started
        latency = self.tcp_latency if tcp else self.udp_latency
        latency[(elapsed // 1000).bit_length()] += 1
        latency[SUM] += elapsed
        if self.active:
            self.record(label, query, replies, peer, local, tcp, elapsed, cookie)

    def record(self, label: Label | None, query: bytes, replies: list[bytes], peer: tuple,
               local: tuple, tcp: bool, elapsed_ns: int, cookie: str = "-") -> None:
        """One answered query, for the query log and dnstap."""
        if not replies:
            return  # silence: nothing was answered
        if self.query_log_on and self.query_log is not None:
            self.query_log.offer(label, query, replies[0], peer, tcp, elapsed_ns, cookie)
        if self.dnstap is not None:
            zone = label.key[0] if label is not None and label.key[0] != NO_ZONE else ""
            self.dnstap.offer(query, replies[0], peer, local, tcp, elapsed_ns, zone)
