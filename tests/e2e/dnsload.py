"""A steady UDP query load on loopback, run as its own process so the test's other
threads cannot delay it: `python dnsload.py PORT NAME QPS SECONDS` prints one JSON line
{sent, answered, timeouts, p50_ms, p99_ms, max_ms}. Bounded: it stops after SECONDS and
waits at most TIMEOUT for the last answers.

A latency runs from just before the query is sent to the kernel's receive timestamp of
the answer (SO_TIMESTAMPNS), so time this process itself waits for a CPU on a busy
machine is not counted as the server's."""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
import time

TIMEOUT = 2.0
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def query(qid: int, name: str) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + labels + b"\x00\x00\x01\x00\x01"


def main(port: int, name: str, qps: float, seconds: float) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    sock.connect(("127.0.0.1", port))
    sent: dict[int, float] = {}
    latencies: list[float] = []
    start = time.perf_counter()
    count = int(qps * seconds)
    for qid in range(count):
        due = start + qid / qps
        while True:
            now = time.perf_counter()
            readable, _, _ = select.select([sock], [], [], max(0.0, due - now))
            if readable:
                _drain(sock, sent, latencies)
            elif time.perf_counter() >= due:
                break
        sent[qid] = time.time()  # the clock the kernel's timestamps use
        sock.send(query(qid, name))
    deadline = time.perf_counter() + TIMEOUT
    while sent and time.perf_counter() < deadline:
        if select.select([sock], [], [], 0.05)[0]:
            _drain(sock, sent, latencies)
    latencies.sort()
    pick = (lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 3)
            if latencies else None)
    return {"sent": count, "answered": len(latencies), "timeouts": len(sent),
            "p50_ms": pick(0.5), "p99_ms": pick(0.99),
            "max_ms": round(latencies[-1] * 1000, 3) if latencies else None}


def _drain(sock: socket.socket, sent: dict[int, float], latencies: list[float]) -> None:
    while True:
        try:
            reply, ancillary, _, _ = sock.recvmsg(4096, 64)
        except BlockingIOError:
            return
        received = time.time()
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", data[:16])
                received = seconds + nanoseconds / 1e9
        qid = struct.unpack_from("!H", reply)[0]
        started = sent.pop(qid, None)
        if started is not None:
            latencies.append(max(0.0, received - started))


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))))
