"""The API process: `gslb serve --api` serves the REST API from a process of its own.

Whatever an API request costs (a large steered record's YAML, a dry-run preview over
many networks, a version file), it runs here, never in a process that answers DNS: the
native UDP loop needs the GIL for its table, so a long request in a worker would stall
that worker's answers. This process also runs at a lower scheduling priority (nice
API_NICE), so on a busy machine the workers get the CPU first.

It is forked from the supervisor like a worker and holds the same `Server` (the same
snapshot, for explain and previews), but serves no DNS socket: only the API socket the
supervisor keeps. It receives the same control messages as the workers, so it knows
every version and state view; a write commits to the configuration store, is adopted
here at once, and answers once every worker serves it (gslb/server/served.py), having
asked the supervisor to have the node's follower read the store now (`LookNow`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from typing import Any, Callable

from gslb.server.control import Inbox, Outbox, channel
from gslb.server.fork import fork_child
from gslb.server.node import Server
from gslb.server.single import run_loop

log = logging.getLogger("gslb.api")
ApiFactory = Callable[[Server, socket.socket], Any]
"""Makes the REST API over a `Server` and its listening socket: the CLI passes
api.serve.embedded_api, so the server itself never imports the control plane. Returns
an object with start() and async stop()."""
API_NAME = "gslb-api"  # its process name (ps -o comm)
API_NICE = 10


def fork_api_process(server: Server, sock: socket.socket, factory: ApiFactory,
                     close_in_child: list[int]) -> tuple[int, Outbox, Inbox]:
    """Fork the API process, serving `sock` with the API `factory` makes: its PID, the
    channel of control messages to it (as to a worker), and that of its requests."""
    control_in, control_out = channel()
    requests_in, requests_out = channel()

    def main() -> int:
        _lower_priority()
        server.requests = Outbox(requests_out.fd, blocking=True)
        server.telemetry.serves = False
        return run_loop(_api_main(server, sock, factory, control_in))

    pid = fork_child(API_NAME, [*close_in_child, control_out.fd, requests_in.fd], main, log)
    control_in.close()
    os.close(requests_out.fd)
    log.info("API process %d started", pid)
    return pid, control_out, requests_in


def _lower_priority() -> None:
    """SCHED_IDLE where the kernel has it: the API runs on CPU time the DNS processes do
    not want, and a waking worker preempts it at once (a nice value alone still let
    it delay answers by milliseconds on a busy machine); else nice API_NICE."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(API_NICE)


async def _api_main(server: Server, sock: socket.socket, factory: ApiFactory,
                    control: Inbox) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)

    def on_control() -> None:
        for message in control.receive():
            server.apply(message)  # a gap is of no harm here: the API catches up itself
        if control.eof:  # the supervisor is gone
            loop.remove_reader(control.fd)
            stopping.set()

    loop.add_reader(control.fd, on_control)
    api = factory(server, sock)
    api.start()
    await stopping.wait()
    await api.stop()
    return 0
