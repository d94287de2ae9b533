"""Live state without sockets: a health or override change swaps the steering view on the
same zones and answer cache; only the records whose members changed get new cache keys;
overrides (up, down, drain) in decisions; rise/fall; the control channel's framing."""

from __future__ import annotations

import os

import dns.rdatatype
import pytest

from gslb.dns.resolver import Zones
from gslb.health.agent import Tracker
from gslb.server.control import StateUpdate, channel
from gslb.state.store import StateView
from gslb.steering.front import Steering
from gslb.steering.model import AllDown, CheckSpec, Health, Member, Override, Probe, Rule
from tests.unit.test_steering_front import (addresses, api, ask, record, records,
                                            snapshot_for, zones)  # noqa: F401

WEB = CheckSpec("web", "http", 8080, interval=0.5, timeout=0.4)
PROBED = record("www2", {"web": [Member("192.0.2.10", check="web", probe=Probe(WEB, "192.0.2.10")),
                                 Member("192.0.2.11", check="web", probe=Probe(WEB, "192.0.2.11"))]},
                [Rule("web")], chain=("health",), select=2)
DOWN = Health(up=False, source="test")


def test_a_health_change_keeps_the_zones_the_cache_and_other_records_keys(zones: Zones) -> None:
    snapshot = snapshot_for(zones, Steering(records(PROBED, api(AllDown.FAIL_OPEN))))
    ask(snapshot, "ns1")
    ask(snapshot, "api")
    assert addresses(ask(snapshot, "www2")[1]) == ["192.0.2.10", "192.0.2.11"]
    hits = snapshot.answers.hits

    changed = snapshot.with_state({"web@192.0.2.11": DOWN}, {}, {}, 7)
    assert changed.zones is snapshot.zones and changed.answers is snapshot.answers
    assert addresses(ask(changed, "www2")[1]) == ["192.0.2.10"]
    ask(changed, "ns1")  # a static answer: still cached
    ask(changed, "api")  # a steered record none of whose members changed: still cached
    assert changed.answers.hits == hits + 2

    before, after = snapshot.steering, changed.steering
    assert before is not None and after is not None
    assert after.versions[("api.example.test.", "A")] == before.versions[("api.example.test.", "A")]
    assert after.versions[("www2.example.test.", "A")] != before.versions[("www2.example.test.", "A")]
    # The same content again is the same version: the cached answer is found again.
    again = changed.with_state({"web@192.0.2.11": Health(up=False, source="other")}, {}, {}, 8)
    hits = again.answers.hits
    assert addresses(ask(again, "www2")[1]) == ["192.0.2.10"]
    assert again.answers.hits == hits + 1


def test_overrides_force_up_down_and_drain(zones: Zones) -> None:
    snapshot = snapshot_for(zones, Steering(records(api(AllDown.FAIL_OPEN))))
    down = {"primary": DOWN}
    assert addresses(ask(snapshot.with_state(down, {}, {}, 1), "api")[1]) == ["192.0.2.21"]
    forced = snapshot.with_state(down, {}, {"192.0.2.20": Override("up", "until t")}, 2)
    assert addresses(ask(forced, "api")[1]) == ["192.0.2.20"]
    off = snapshot.with_state({}, {}, {"192.0.2.20": Override("down")}, 3)
    assert addresses(ask(off, "api")[1]) == ["192.0.2.21"]
    # Drained: answered only when nothing else in the pool is up.
    both = record("www2", {"web": [Member("192.0.2.10"), Member("192.0.2.11")]}, [Rule("web")],
                  chain=("health",), select=2)
    snapshot = snapshot_for(zones, Steering(records(both)))
    drained = snapshot.with_state({}, {}, {"192.0.2.10": Override("drain")}, 4)
    assert addresses(ask(drained, "www2")[1]) == ["192.0.2.11"]
    alone = drained.with_state({}, {}, {"192.0.2.10": Override("drain"),
                                        "192.0.2.11": Override("down")}, 5)
    assert addresses(ask(alone, "www2")[1]) == ["192.0.2.10"]


def test_a_bare_check_id_in_the_state_pins_every_probed_target_without_a_verdict(zones: Zones) -> None:
    snapshot = snapshot_for(zones, Steering(records(PROBED)))
    pinned = snapshot.with_state({"web": DOWN, "web@192.0.2.10": Health(up=True, source="t")}, {}, {}, 1)
    assert addresses(ask(pinned, "www2")[1]) == ["192.0.2.10"]


@pytest.mark.parametrize("results, verdicts", [
    ([True], [True]),  # the first result decides at once (warm start)
    ([False], [False]),
    ([True, False, True, False, False], [True, True, True, True, False]),  # fall 2
    ([False, True, False, True, True, True], [False, False, False, False, False, True]),  # rise 3
])
def test_rise_and_fall(results: list[bool], verdicts: list[bool]) -> None:
    tracker = Tracker(rise=3, fall=2)
    seen = []
    for ok in results:
        tracker.record(ok)
        seen.append(tracker.up)
    assert seen == verdicts


def test_control_channel_carries_large_messages_without_blocking_the_writer() -> None:
    inbox, outbox = channel()
    health = {f"web@10.0.{i // 256}.{i % 256}": Health(up=i % 2 == 0, source="x" * 40)
              for i in range(5000)}
    message = StateUpdate(StateView(version=42, health=health))
    outbox.send(message)  # far more than a pipe holds: the rest waits in the outbox
    outbox.send(StateUpdate(StateView(version=43)))
    assert outbox.wants_write
    received = []
    while outbox.wants_write or len(received) < 2:
        received += inbox.receive()
        outbox.flush()
    assert [m.view.version for m in received] == [42, 43]
    assert received[0].view.health == health
    outbox.close()
    assert inbox.receive() == [] and inbox.eof
    inbox.close()
    with pytest.raises(OSError):
        os.fstat(outbox.fd)


def test_an_owner_is_steered_by_its_own_bucket_version(zones: Zones) -> None:
    steering = Steering(records(PROBED))
    client = steering.client("192.0.2.1", None)
    owner = b"\x04www2\x07example\x04test\x00"
    before = steering.bucket(owner, dns.rdatatype.A, client, 0)
    after = steering.with_state({"web@192.0.2.10": DOWN}, {}, {}, 9).bucket(owner, dns.rdatatype.A, client, 0)
    assert before != after
