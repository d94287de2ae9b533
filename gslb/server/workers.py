"""`gslb serve --workers N`: one supervisor, N forked workers sharing one port.

The supervisor loads the zones once, then forks the workers, so every worker starts
with the same snapshot in copy-on-write memory. Each worker binds its own UDP and TCP
sockets with SO_REUSEPORT and lets the kernel spread queries across them.

A reload (SIGHUP) is one load in the supervisor followed by a new generation of
workers forked from the new state; the old generation is stopped once the new one is
listening, so no worker ever re-reads files and all of them change together. A worker
that dies unexpectedly is replaced. SIGTERM/SIGINT stop every worker, then exit 0.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import select
import signal
import time
from dataclasses import dataclass

from gslb.server.run import Server, run_loop
from gslb.settings import Settings

log = logging.getLogger("gslb.workers")
SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
PR_SET_PDEATHSIG = 1


@dataclass
class Worker:
    pid: int
    generation: int


def supervise(settings: Settings) -> int:
    """Run the supervisor until SIGTERM/SIGINT; the process exit code."""
    server = Server(settings)
    if not server.load():
        log.error("no zone could be loaded from %s; not starting", settings.zones_dir)
        return 1
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    generation = 1
    workers = _spawn(server, settings.workers, generation)
    if workers is None:
        return 1
    log.info("ready: %d workers serving %d zones", len(workers), len(server.snapshot.zones))
    while True:
        info = signal.sigtimedwait(SIGNALS, 1.0)
        signum = info.si_signo if info else None
        if signum in (signal.SIGTERM, signal.SIGINT):
            log.info("stopping %d workers", len(workers))
            _stop(workers)
            return 0
        if signum == signal.SIGHUP:
            server.reload_zones()
            fresh = _spawn(server, settings.workers, generation + 1)
            if fresh is None:
                log.error("new workers failed to start; the previous ones keep serving")
                continue
            _stop(workers)
            workers, generation = fresh, generation + 1
            log.info("reloaded: generation %d serving", generation)
        workers = _replace_dead(server, workers, generation)


def _spawn(server: Server, count: int, generation: int) -> list[Worker] | None:
    """Fork `count` workers and wait until each listens; None (and none left) on failure."""
    gc.collect()
    gc.freeze()  # keep the collector from touching (and so copying) the shared snapshot
    started: list[tuple[Worker, int]] = []
    for _ in range(count):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            for _, sibling_fd in started:
                os.close(sibling_fd)
            os._exit(_worker_main(server, write_fd))
        os.close(write_fd)
        started.append((Worker(pid, generation), read_fd))
    failed = False
    for worker, read_fd in started:
        status = _await_ready(read_fd)
        if status != "ready":
            log.error("worker %d: %s", worker.pid, status)
            failed = True
    workers = [worker for worker, _ in started]
    if failed:
        _stop(workers)
        return None
    return workers


def _await_ready(read_fd: int) -> str:
    deadline = time.monotonic() + READY_TIMEOUT
    chunks = b""
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            chunks += chunk
            if chunks.startswith(b"R"):
                return "ready"
    finally:
        os.close(read_fd)
    if chunks.startswith(b"E"):
        return chunks[1:].decode(errors="replace")
    return "did not report ready in time"


def _worker_main(server: Server, ready_fd: int) -> int:
    """Inside the fork: die with the supervisor, serve until SIGTERM."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads are the supervisor's job
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    try:
        return run_loop(_serve_worker(server, ready_fd))
    except BaseException:  # never fall back into the supervisor's code in a fork
        log.exception("worker %d crashed", os.getpid())
        return 1


async def _serve_worker(server: Server, ready_fd: int) -> int:
    try:
        await server.start(reuse_port=True)
    except OSError as exc:
        os.write(ready_fd, b"E" + f"cannot listen: {exc}".encode())
        os.close(ready_fd)
        await server.stop()
        return 1
    os.write(ready_fd, b"R")
    os.close(ready_fd)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    await stopping.wait()
    await server.stop()
    return 0


def _stop(workers: list[Worker]) -> None:
    """SIGTERM each worker, wait for all, SIGKILL whoever outlives the timeout."""
    for worker in workers:
        _kill(worker.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    pending = {worker.pid for worker in workers}
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            if _reaped(pid):
                pending.discard(pid)
        if pending:
            time.sleep(0.02)
    for pid in pending:
        log.warning("worker %d did not stop; killing it", pid)
        _kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _replace_dead(server: Server, workers: list[Worker], generation: int) -> list[Worker]:
    alive = []
    for worker in workers:
        if not _reaped(worker.pid):
            alive.append(worker)
            continue
        log.error("worker %d exited unexpectedly; starting a replacement", worker.pid)
        replacement = _spawn(server, 1, generation)
        if replacement:
            alive.extend(replacement)
    return alive


def _reaped(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
