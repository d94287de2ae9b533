"""What every process the supervisor forks does first: die with the supervisor, take
the default signal dispositions back, and close the descriptors meant for others."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from typing import Callable, Iterable

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
# SIGUSR1/SIGUSR2 switch the query log; the supervisor passes them on to its workers.
SUPERVISOR_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD,
                      signal.SIGUSR1, signal.SIGUSR2}


def become_child(parent: int, close: Iterable[int] = (), name: str = "") -> bool:
    """Set up a freshly forked child; False when the supervisor is already gone. `name`
    becomes the process name `ps -o comm` and /proc/PID/comm show (gslb-worker,
    gslb-state), so operators and tests can tell the children apart."""
    for fd in close:
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if name:
            libc.prctl(PR_SET_NAME, name.encode()[:15])
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the supervisor died before PR_SET_PDEATHSIG took hold
        return False
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads are the supervisor's job
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor too
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # until a worker's loop takes them
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SUPERVISOR_SIGNALS)
    return True


def fork_child(name: str, close: Iterable[int], main: Callable[[], int],
               log: logging.Logger) -> int:
    """Fork a helper process of the supervisor (the state process, the API process):
    in the child, `become_child` then `main()`, whose result is the exit code (a crash
    is logged and exits 1; the child never returns into the supervisor's code). The
    child's PID, in the parent."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            if become_child(parent, close, name):
                code = main()
        except BaseException:
            log.exception("%s process %d crashed", name, os.getpid())
        finally:
            logging.shutdown()
            os._exit(code)
    return pid
