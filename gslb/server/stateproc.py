"""The supervisor's state process: the node's one follower, beside the workers.

The supervisor never runs an event loop (so it can always fork safely), and workers
neither probe backends nor read stores, so one more child does both for the node:
- the state service (checker, state file, Redis verdicts): each new `StateUpdate` goes
  to the supervisor, which applies it to its own snapshot (future forks inherit it) and
  fans it out to every worker over their control channels;
- the configuration follower (gslb/config/follower.py), when the API or Redis may change
  the configuration: each new version goes to the supervisor as `ConfigVersions` (fanned
  out the same way), and `ConfigSource` when the node must load Redis whole.
The supervisor sends `SteeringTargets` whenever the steered records changed (so the
embedded checker probes what they name) and `LookNow` when a worker committed a version
or missed one. If this process dies, the supervisor forks a new one, seeded with the last
view it applied (warm start: no flap to "up") and the version it serves.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass

from gslb.config.changes import Version
from gslb.server.control import (ConfigSource, ConfigVersions, Inbox, LookNow, Outbox,
                                 StateUpdate, SteeringTargets, channel)
from gslb.server.fork import fork_child
from gslb.server.node import Server
from gslb.server.single import follower_of, run_loop
from gslb.state.service import StateService

log = logging.getLogger("gslb.state")
STATE_NAME = "gslb-state"  # its process name (ps -o comm)


@dataclass
class StateProcess:
    pid: int
    updates: Inbox  # StateUpdate, ConfigVersions and ConfigSource from it
    targets: Outbox  # SteeringTargets and LookNow to it

    def fds(self) -> list[int]:
        return [self.updates.fd, self.targets.fd]


def fork_state_process(server: Server, close_in_child: list[int]) -> StateProcess:
    """Fork the state process; it starts from the server's current records and view."""
    targets_in, targets_out = channel()
    updates_in, updates_out = channel()
    pid = fork_child(STATE_NAME, [*close_in_child, targets_out.fd, updates_in.fd],
                     lambda: run_loop(_state_main(server, targets_in, updates_out)), log)
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

    follower = follower_of(server)

    def on_targets() -> None:
        for message in targets.receive():
            if isinstance(message, SteeringTargets):
                service.set_records(message.records)
            elif isinstance(message, LookNow) and follower is not None:
                follower.look_now(message.after)
            elif isinstance(message, ConfigSource) and follower is not None:
                assert message.source is not None
                follower.restart(message.source)
        if targets.eof:  # the supervisor is gone
            loop.remove_reader(targets.fd)
            stopping.set()

    def deliver(versions: list[Version]) -> None:
        updates.send(ConfigVersions(tuple(versions)))

    def switch(reason: str) -> None:
        # The supervisor loads the store whole, forks workers from it, and says here
        # where to follow on from (ConfigSource with its source).
        log.info("%s: the supervisor loads the configuration from it", reason)
        updates.send(ConfigSource(reason))

    loop.add_reader(targets.fd, on_targets)
    tasks = [loop.create_task(service.run())]
    if follower is not None:
        tasks.append(loop.create_task(follower.run(deliver, switch)))
    served = server.served.minimum if server.served is not None else None
    heartbeat = server.telemetry.heartbeat(served)
    await stopping.wait()
    for task in tasks:
        task.cancel()
    if heartbeat is not None:
        heartbeat.cancel()
    await service.close()
    return 0
