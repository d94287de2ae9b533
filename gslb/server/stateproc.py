"""The supervisor's state process: the state service (checker, state file, Redis)
running beside the workers, in its own event loop.

The supervisor never runs an event loop (so it can always fork safely), and workers
should not each probe every backend, so the state service runs in one more child. It
sends each new `StateUpdate` to the supervisor, which applies it to its own snapshot
(future forks inherit it) and fans it out to every worker over their control channels.
The supervisor tells it about reloads with `SteeringTargets`; changes made through the
API or the configuration store (`--api`, `--redis`), which the workers apply without the
supervisor, it follows in the store itself. If it dies, the supervisor forks a new one,
seeded with the last view it applied (warm start: no flap to "up").
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass

from gslb.config.service import ConfigService, Holder, follow
from gslb.server.control import Inbox, Outbox, StateUpdate, SteeringTargets, channel
from gslb.server.fork import become_child
from gslb.server.run import Server, run_loop
from gslb.state.service import StateService

log = logging.getLogger("gslb.state")
STATE_NAME = "gslb-state"  # its process name (ps -o comm)


@dataclass
class StateProcess:
    pid: int
    updates: Inbox  # StateUpdate messages from it
    targets: Outbox  # SteeringTargets to it

    def fds(self) -> list[int]:
        return [self.updates.fd, self.targets.fd]


def fork_state_process(server: Server, close_in_child: list[int]) -> StateProcess:
    """Fork the state process; it starts from the server's current records and view."""
    targets_in, targets_out = channel()
    updates_in, updates_out = channel()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            if become_child(parent, [*close_in_child, targets_out.fd, updates_in.fd], STATE_NAME):
                code = run_loop(_state_main(server, targets_in, updates_out))
        except BaseException:
            log.exception("state process %d crashed", os.getpid())
        finally:
            logging.shutdown()
            os._exit(code)
    targets_in.close()
    os.close(updates_out.fd)
    log.info("state process %d started", pid)
    return StateProcess(pid, updates_in, targets_out)


async def _state_main(server: Server, targets: Inbox, updates: Outbox) -> int:
    os.set_blocking(updates.fd, True)  # the supervisor reads all the time
    service = StateService(server.settings.state, lambda view: updates.send(StateUpdate(view)),
                           server.settings.store, seed=server.state_view)
    service.set_records(server.steered_records())
    await service.prime()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)

    def on_targets() -> None:
        for message in targets.receive():
            if isinstance(message, SteeringTargets):
                service.set_records(message.records)
        if targets.eof:  # the supervisor is gone
            loop.remove_reader(targets.fd)
            stopping.set()

    loop.add_reader(targets.fd, on_targets)
    task = loop.create_task(service.run())
    follower = (loop.create_task(_follow_records(server, service))
                if server.settings.config_follows_store else None)
    heartbeat = server.telemetry.heartbeat()
    await stopping.wait()
    task.cancel()
    if follower is not None:
        follower.cancel()
    if heartbeat is not None:
        heartbeat.cancel()
    await service.close()
    return 0


async def _follow_records(server: Server, service: StateService) -> None:
    """Follow the configuration store (its own copy of the configuration; no snapshot
    is built) and probe what the steered records name after each change: a member added
    through the API with a check is probed from then on, without SIGHUP."""
    config = ConfigService(server.config_store, Holder(server.live))
    await follow(config, applied=lambda: service.set_records(config.node.live.all_records()))
