"""`gslb serve --workers N` with real processes: SO_REUSEPORT workers share the load,
SIGHUP swaps every worker to the reloaded zones, a killed worker is replaced, SIGTERM
leaves no child behind, and a port that cannot be shared stops the start-up.

Workers are found as the supervisor's children in /proc; whether a worker served
queries is read from its voluntary context switches (an idle worker sleeps in epoll and
barely switches; each query it answers wakes it once).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.servers import DEMO_ZONES, ROOT, GslbProcess, copy_demo_zones, free_port, wait_until

DEMO_ZONE_NAMES = ["example.com.", "sub.example.com.", "example.net."]
OLD_SERIAL = 2026112401
WORKERS = ["--workers", "2"]


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    """A private copy of the demo zones, free to edit."""
    return copy_demo_zones(tmp_path)


def _children(pid: int) -> set[int]:
    """Live (not zombie) worker processes whose parent is `pid` (not the state process,
    which runs beside them when there are health checks to probe)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                name, _, rest = stat.read().rpartition(")")
            fields = rest.split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and not name.endswith("(gslb-state"):
            found.add(int(entry))
    return found


def _exists(pid: int) -> bool:
    """True while `pid` is in the process table, zombie or not."""
    return os.path.exists(f"/proc/{pid}")


def _workers(server: GslbProcess, count: int = 2) -> set[int]:
    assert wait_until(lambda: len(_children(server.pid)) == count), server.log()
    return _children(server.pid)


def _switches(pid: int) -> int:
    """Voluntary context switches of all the process's threads (UDP has its own)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with open(task / "status") as status:
            for line in status:
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def _answers(server: GslbProcess, name: str, rdtype: str = "A", tcp: bool = False) -> list[str]:
    """One query from a fresh socket (so a fresh source port); [] on any failure."""
    try:
        reply = server.query(name, rdtype, tcp=tcp, timeout=1.0)
    except Exception:
        return []
    wanted = dns.rdatatype.from_text(rdtype)
    return sorted(rd.to_text() for rrset in reply.answer for rd in rrset if rrset.rdtype == wanted)


def _edit_zone(path: Path, serial: int, extra_lines: list[str]) -> None:
    text = path.read_text()
    assert str(OLD_SERIAL) in text
    text = text.replace(str(OLD_SERIAL), str(serial), 1)
    path.write_text(text.rstrip("\n") + "\n" + "".join(line + "\n" for line in extra_lines))


def _port_is_free(port: int) -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(("127.0.0.1", port))
            tcp.listen(1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def _fds(pid: int) -> tuple[set[str], int]:
    """The supervisor's open files, and how many pipes (one control pipe per worker:
    each generation has new ones, so only their number must stay)."""
    links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    return ({link for link in links if not link.startswith("pipe:")},
            sum(link.startswith("pipe:") for link in links))


# --- serving -------------------------------------------------------------------------


def test_two_workers_answer_udp_and_tcp_and_share_the_load() -> None:
    server = GslbProcess(DEMO_ZONES, WORKERS).start(DEMO_ZONE_NAMES)
    try:
        workers = _workers(server)
        for tcp in (False, True):
            assert _answers(server, "www.example.com", tcp=tcp) == ["192.0.2.80", "192.0.2.81"]
        before = {pid: _switches(pid) for pid in workers}
        for _ in range(300):
            assert _answers(server, "www.example.com") == ["192.0.2.80", "192.0.2.81"]
        for _ in range(100):
            assert _answers(server, "example.net", "SOA", tcp=True)
        served = {pid: _switches(pid) - before[pid] for pid in workers}
        # 400 queries spread by the kernel over two workers: each gets far more than 20.
        assert all(count >= 20 for count in served.values()), served
        assert _children(server.pid) == workers  # nobody died doing it
        log = server.log()
        assert "ready: serving 3 zones with 2 workers" in log
        for pid in workers:
            assert f"[{pid}]: listening on 127.0.0.1:{server.port}" in log, log
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.log()


def test_one_worker_does_not_fork() -> None:
    server = GslbProcess(DEMO_ZONES, ["--workers", "1"]).start(DEMO_ZONE_NAMES)
    try:
        assert _answers(server, "www.example.com", tcp=True) == ["192.0.2.80", "192.0.2.81"]
        assert _children(server.pid) == set()
        assert "gslb.workers" not in server.log()
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("value", ["0", "-3"])
def test_workers_must_be_positive(value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gslb.cli", "serve", "--zones", str(DEMO_ZONES),
         "--listen", f"127.0.0.1:{free_port()}", "--workers", value],
        capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 2
    assert "must be at least 1" in result.stderr


def test_workers_from_environment() -> None:
    env = {**os.environ, "GSLB_WORKERS": "3"}
    port = free_port()
    with open(os.devnull, "w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gslb.cli", "serve", "--zones", str(DEMO_ZONES),
             "--listen", f"127.0.0.1:{port}"], stdout=sink, stderr=sink, cwd=ROOT, env=env)
    try:
        assert wait_until(lambda: len(_children(proc.pid)) == 3)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


# --- reloading -----------------------------------------------------------------------


def test_sighup_serves_the_edit_from_every_worker(zones: Path) -> None:
    server = GslbProcess(zones, WORKERS).start(DEMO_ZONE_NAMES)
    try:
        # the first worker answers before the supervisor has read every ready pipe
        assert wait_until(lambda: "ready: serving" in server.log())
        first = _workers(server)
        fds_before = _fds(server.pid)
        for round_, address in enumerate(["192.0.2.201", "192.0.2.202", "192.0.2.203"], 1):
            _edit_zone(zones / "example.com.zone", OLD_SERIAL + round_, [f"fresh{round_} IN A {address}"])
            server.signal(signal.SIGHUP)
            assert wait_until(lambda: f"reload done: generation {round_ + 1}" in server.log()), \
                server.log()
            current = _workers(server)
            assert not current & first
            # Many queries, each from its own source port, so every worker is asked.
            before = {pid: _switches(pid) for pid in current}
            for _ in range(200):
                assert _answers(server, f"fresh{round_}.example.com") == [address], server.log()
            assert all(_switches(pid) - before[pid] >= 10 for pid in current)
            # The old generation is gone and reaped, not left as zombies.
            assert not any(_exists(pid) for pid in first)
            first = current
            (zones / "example.com.zone").write_text(
                (DEMO_ZONES / "example.com.zone").read_text())
        # No descriptor leaked in the supervisor across three generations.
        assert _fds(server.pid) == fds_before
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.log()


def test_reloads_under_load_leave_queries_answered(zones: Path) -> None:
    """Queries keep coming, over UDP and over new TCP connections, and so do requests to
    the metrics port, while five SIGHUPs replace the worker generation: not one may go
    unanswered. New workers serve the sockets the old ones served (the supervisor holds
    them open), so a UDP query queued as an old worker stops, or a connection waiting to
    be accepted, is taken by the new one; when each worker had its own sockets, about one
    UDP query per reload was lost, and a TCP query or a scrape every few reloads.
    A UDP query is asked again after 1 s, as a resolver does, to tell late from lost."""
    metrics_port = free_port()
    server = GslbProcess(zones, [*WORKERS, "--metrics", f"127.0.0.1:{metrics_port}"])
    server.start(DEMO_ZONE_NAMES)
    query = dns.message.make_query("www.example.com", "A")
    wire = query.to_wire()
    counts = {"sent": 0, "first_try_lost": 0, "lost": 0, "tcp": 0, "tcp_failed": 0,
              "http": 0, "http_failed": 0}
    failures: list[str] = []
    stop = threading.Event()

    def udp_client() -> None:
        while not stop.is_set():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # new source port
                sock.settimeout(1.0)
                for _ in range(20):
                    counts["sent"] += 1
                    for attempt in range(2):
                        sock.sendto(wire, (server.host, server.port))
                        try:
                            sock.recv(4096)
                            break
                        except socket.timeout:
                            counts["first_try_lost" if attempt == 0 else "lost"] += 1

    def tcp_client() -> None:
        while not stop.is_set():
            counts["tcp"] += 1
            try:
                dns.query.tcp(query, server.host, port=server.port, timeout=2.0)
            except Exception as exc:  # refused, reset, closed unanswered, timed out
                counts["tcp_failed"] += 1
                failures.append(repr(exc))

    def http_client() -> None:
        while not stop.is_set():
            counts["http"] += 1
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/live",
                                            timeout=2.0) as reply:
                    assert reply.status == 200
            except Exception as exc:
                counts["http_failed"] += 1
                failures.append(repr(exc))

    clients = [threading.Thread(target=udp_client) for _ in range(3)]
    clients += [threading.Thread(target=tcp_client) for _ in range(2)]
    clients.append(threading.Thread(target=http_client))
    try:
        for thread in clients:
            thread.start()
        for generation in range(2, 7):
            time.sleep(0.3)
            server.signal(signal.SIGHUP)
            assert wait_until(lambda: f"reload done: generation {generation}" in server.log(),
                              timeout=10), server.log()
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in clients:
            thread.join()
        assert server.stop() == 0
    assert counts["sent"] > 1000 and counts["tcp"] > 100 and counts["http"] > 100, counts
    assert counts["lost"] == 0 and counts["first_try_lost"] == 0, counts
    assert counts["tcp_failed"] == 0 and counts["http_failed"] == 0, (counts, failures[:5])


def test_broken_reload_keeps_last_good_in_every_worker(zones: Path) -> None:
    server = GslbProcess(zones, WORKERS).start(DEMO_ZONE_NAMES)
    try:
        workers = _workers(server)
        net = zones / "example.net.zone"
        net.write_text(net.read_text().replace(str(OLD_SERIAL), str(OLD_SERIAL + 1), 1)
                       + "newnet IN A not-an-ip\n")
        _edit_zone(zones / "example.com.zone", OLD_SERIAL + 1, ["fresh IN A 192.0.2.201"])
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: "reload done: generation 2" in server.log()), server.log()
        assert "keeping last good version" in server.log()
        for _ in range(100):
            assert _answers(server, "fresh.example.com") == ["192.0.2.201"]
            assert _answers(server, "example.net", "SOA")[0].split()[2] == str(OLD_SERIAL)
        workers = _workers(server)
        # A reload that loads nothing forks nothing: the same workers keep serving.
        moved = zones.rename(zones.with_name("gone"))
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: "reload loaded no zone" in server.log()), server.log()
        time.sleep(0.3)
        assert _children(server.pid) == workers
        for _ in range(50):
            assert _answers(server, "fresh.example.com") == ["192.0.2.201"]
        moved.rename(zones)
    finally:
        assert server.stop() == 0


def test_sigterm_during_reload_stops_everything(zones: Path) -> None:
    """A zone big enough that the reload takes about a second; SIGTERM lands inside it."""
    big = ["$ORIGIN zzz.test.", "$TTL 60", "@ IN SOA ns1 h 1 60 60 60 60", "@ IN NS ns1",
           "ns1 IN A 192.0.2.1"]
    big += [f"h{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(30000)]
    (zones / "zzz.test.zone").write_text("\n".join(big) + "\n")
    server = GslbProcess(zones, WORKERS).start([*DEMO_ZONE_NAMES, "zzz.test."], timeout=60)
    _workers(server)
    server.signal(signal.SIGHUP)
    time.sleep(0.3)  # the supervisor is now loading zzz.test
    server.signal(signal.SIGTERM)
    assert server.proc is not None
    code = server.proc.wait(timeout=30)
    server.stop()
    log = server.log()
    assert code == 0, log
    # Every worker of either generation is gone, none left behind as an orphan.
    workers = {int(pid) for pid in re.findall(r"\[(\d+)\]: listening on", log)}
    assert len(workers) in (2, 4), log
    assert wait_until(lambda: not any(_exists(pid) for pid in workers), timeout=5), log
    assert wait_until(lambda: _port_is_free(server.port), timeout=5)
    assert "Traceback" not in log


# --- worker failures -----------------------------------------------------------------


def test_killed_worker_is_replaced() -> None:
    server = GslbProcess(DEMO_ZONES, WORKERS).start(DEMO_ZONE_NAMES)
    try:
        workers = _workers(server)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: len(_children(server.pid) - workers) == 1), server.log()
        current = _workers(server)
        assert victim not in current and len(current & workers) == 1
        assert not _exists(victim)  # reaped
        assert f"worker {victim} was killed by SIGKILL" in server.log()
        for tcp in (False, True):
            for _ in range(100):
                assert _answers(server, "www.example.com", tcp=tcp) == ["192.0.2.80", "192.0.2.81"]
    finally:
        assert server.stop() == 0


def test_sigterm_stops_every_worker_and_frees_the_port() -> None:
    server = GslbProcess(DEMO_ZONES, WORKERS).start(DEMO_ZONE_NAMES)
    workers = _workers(server)
    idle = socket.create_connection((server.host, server.port))  # must not hold up the exit
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.proc is not None
    code = server.proc.wait(timeout=10)
    elapsed = time.monotonic() - started
    idle.close()
    server.stop()
    assert code == 0, server.log()
    assert elapsed < 5
    assert not any(_exists(pid) for pid in workers)
    assert wait_until(lambda: _port_is_free(server.port), timeout=5)
    assert "Traceback" not in server.log()


def test_workers_die_with_the_supervisor() -> None:
    server = GslbProcess(DEMO_ZONES, WORKERS).start(DEMO_ZONE_NAMES)
    workers = _workers(server)
    server.signal(signal.SIGKILL)
    server.stop()
    assert wait_until(lambda: not any(_exists(pid) for pid in workers), timeout=10)


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM], ids=["udp", "tcp"])
def test_port_taken_exits_nonzero(kind: int) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, kind) as taken:
        taken.bind(("127.0.0.1", port))
        if kind == socket.SOCK_STREAM:
            taken.listen(1)
        result = subprocess.run(
            [sys.executable, "-m", "gslb.cli", "serve", "--zones", str(DEMO_ZONES),
             "--listen", f"127.0.0.1:{port}", *WORKERS],
            capture_output=True, text=True, timeout=30, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "cannot listen" in output and "Address already in use" in output, output
    assert "Traceback" not in output


def test_port_shared_by_another_reuseport_process_is_refused() -> None:
    """Without the start-up check, a second server would silently split the traffic."""
    first = GslbProcess(DEMO_ZONES, WORKERS).start(DEMO_ZONE_NAMES)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "gslb.cli", "serve", "--zones", str(DEMO_ZONES),
             "--listen", f"127.0.0.1:{first.port}", *WORKERS],
            capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert result.returncode == 1
        assert "Address already in use" in result.stdout + result.stderr
    finally:
        assert first.stop() == 0


def test_worker_that_cannot_start_fails_the_start(tmp_path: Path) -> None:
    """A worker's own failure to start (here its slot's TCP socket is unusable), end to
    end in a child process: every worker reports why, none is left running, and the
    supervisor's other listen sockets stay open for a next try."""
    port = free_port()
    script = textwrap.dedent(f"""
        import logging, os, sys
        from gslb.observability import setup_logging
        from gslb.server.listen import bind_slot
        from gslb.server.node import Server
        from gslb.server.workers import _spawn
        from gslb.settings import Settings, parse_listen
        from pathlib import Path
        setup_logging("INFO")
        settings = Settings(zones_dir=Path({str(DEMO_ZONES)!r}),
                            listen=(parse_listen("127.0.0.1:{port}"),), workers=2)
        server = Server(settings)
        assert server.load()
        slots = [bind_slot(settings) for _ in range(2)]
        for slot in slots:
            slot.dns[0].tcp.close()
        print("spawned:", _spawn(server, slots, [0, 1], 1), flush=True)
        try:
            os.wait()
        except ChildProcessError:
            print("no children", flush=True)
        print("open:", all(slot.dns[0].udp.fileno() >= 0 for slot in slots), flush=True)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "spawned: None" in output and "no children" in output, output
    assert "open: True" in output, output
    assert output.count("cannot listen:") == 2, output
