"""A member's health from several agents' verdicts: the quorum of the fresh ones.

Pure (the time comes in), so nodes, `gslb explain` and tests compute the same thing.

- A verdict is fresh while `now - at <= expiry` and, when its agent gave one, before
  its own `expires`; stale ones are shown but never counted.
- With fresh verdicts, the member is down when at least `quorum` of them say down;
  `quorum` 0 means a majority of the fresh verdicts (more than half). So one agent cut
  off from a datacenter cannot take a member down alone when two others see it up.
- With no fresh verdict (agents gone, or the member not probed yet: warm start), the
  last known state holds: the last quorum judged (`previous`), else the quorum of the
  stale verdicts in the store; with no verdict at all the member counts as up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

from gslb.state.store import AgentVerdict
from gslb.steering.model import Health


@dataclass(frozen=True)
class QuorumRule:
    expiry: float = 10.0  # seconds a verdict stays fresh after its probe
    quorum: int = 0  # fresh "down" verdicts that make a member down; 0 = a majority


def judge(verdicts: Iterable[AgentVerdict], now: float, rule: QuorumRule,
          previous: Health | None = None) -> tuple[Health | None, tuple[AgentVerdict, ...]]:
    """The member's health (None: unknown, counts as up) and every verdict marked
    fresh or stale."""
    marked = tuple(replace(v, fresh=now - v.at <= rule.expiry and (v.expires is None or now <= v.expires))
                   for v in verdicts)
    fresh = [v for v in marked if v.fresh]
    if not fresh:
        if previous is not None:
            return Health(previous.up, f"last known (no fresh verdict: {describe(marked, now)})",
                          previous.age), marked
        if not marked:
            return None, marked
        # Warm start: nothing fresh and nothing judged yet: the stale verdicts are the
        # last known state, better than assuming up.
        downs = sum(1 for v in marked if not v.up)
        up = downs < (rule.quorum or len(marked) // 2 + 1)
        return Health(up, f"last known from the store (stale: {describe(marked, now)})",
                      max(0.0, now - max(v.at for v in marked))), marked
    downs = sum(1 for v in fresh if not v.up)
    needed = rule.quorum or len(fresh) // 2 + 1
    up = downs < needed
    newest = max(v.at for v in fresh)
    source = (f"quorum: {len(fresh) - downs}/{len(fresh)} up, {needed} down needed; "
              f"{describe(marked, now)}")
    return Health(up, source, max(0.0, now - newest)), marked


def describe(verdicts: Iterable[AgentVerdict], now: float) -> str:
    """Each agent's verdict and its age, stale ones marked: `eu-1 up 0.4 s ago, ...`."""
    return ", ".join(f"{v.agent} {'up' if v.up else 'DOWN'} {max(0.0, now - v.at):.1f} s ago"
                     + ("" if v.fresh else " (stale)") for v in verdicts)
