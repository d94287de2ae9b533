"""The logic around shared state, without a Redis: quorum and expiry of verdicts,
Redis URLs (plain, TLS, Sentinel), override durations and the state file's overrides,
telemetry validation, the check definitions' validation messages."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from gslb.health.quorum import QuorumRule, judge
from gslb.state.overrides import clear_in_file, list_in_file, parse_duration, set_in_file
from gslb.state.redis import Backoff, parse_url
from gslb.state.shared import parse_copy
from gslb.state.store import AgentVerdict, InProcessStore, StateFileError
from gslb.state.telemetry import Sample, validate
from gslb.steering.model import Health
from tests.unit.load.test_steering import problems, zone  # noqa: F401

NOW = 1000.0
RULE = QuorumRule(expiry=5.0)


def verdicts(*spec: tuple[str, bool, float]) -> list[AgentVerdict]:
    return [AgentVerdict(agent, up, NOW - age) for agent, up, age in spec]


@pytest.mark.parametrize("spec, up", [
    ([("a", True, 1), ("b", False, 1)], True),  # 1 of 2 down: not a majority
    ([("a", False, 1), ("b", False, 1)], False),
    ([("a", True, 1), ("b", False, 1), ("c", False, 2)], False),  # 2 of 3
    ([("a", True, 1), ("b", False, 9), ("c", False, 9)], True),  # the downs are stale
    ([("a", False, 0.5)], False),
])
def test_majority_of_fresh_verdicts(spec: list[tuple[str, bool, float]], up: bool) -> None:
    health, marked = judge(verdicts(*spec), NOW, RULE)
    assert health is not None and health.up is up
    assert [v.fresh for v in marked] == [age <= 5 for _, _, age in spec]


def test_quorum_setting_and_the_explain_text() -> None:
    health, _ = judge(verdicts(("eu-1", True, 0.4), ("us-1", False, 1.25)), NOW, QuorumRule(5, quorum=1))
    assert health is not None and not health.up
    assert health.source == ("quorum: 1/2 up, 1 down needed; eu-1 up 0.4 s ago, "
                             "us-1 DOWN 1.2 s ago")
    assert health.age == pytest.approx(0.4)


def test_without_fresh_verdicts_the_last_known_state_holds() -> None:
    stale = verdicts(("a", False, 30), ("b", False, 40))
    previous = Health(up=True, source="quorum", age=1)
    health, _ = judge(stale, NOW, RULE, previous)
    assert health is not None and health.up and health.source.startswith("last known")
    health, _ = judge(stale, NOW, RULE)  # warm start: the stale verdicts are the last known
    assert health is not None and not health.up
    assert judge([], NOW, RULE) == (None, ())


def test_copy_parsing_skips_malformed_entries() -> None:
    copy, bad = parse_copy("7", {"web@10.0.0.1|a": '{"up": true, "at": 5}', "x|b": "{not json"},
                           {"10.0.0.1": '{"mode": "drain", "until": 9}', "y": '{"mode": "off"}'},
                           {"EU|eu-west": '{"ms": 12.5, "n": 3}'})
    assert bad == 2 and copy.epoch == 7
    assert copy.verdicts == {"web@10.0.0.1": [AgentVerdict("a", True, 5.0)]}
    assert copy.overrides == {"10.0.0.1": ("drain", 9.0)}
    assert copy.rtt == {("EU", "eu-west"): (12.5, 3)}


@pytest.mark.parametrize("url, sentinels, service, db, shown", [
    ("redis://:secret@127.0.0.1:6379/2", (), None, 0, "redis://127.0.0.1:6379/2"),
    ("rediss://r.example:6380/0", (), None, 0, "rediss://r.example:6380/0"),
    ("redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/gslb/3",
     (("10.0.0.1", 26379), ("10.0.0.2", 26379)), "gslb", 3, "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/gslb/3"),
])
def test_redis_urls(url: str, sentinels: tuple, service: str | None, db: int, shown: str) -> None:
    target = parse_url(url)
    assert (target.sentinels, target.service, target.db, target.display()) == (sentinels, service, db, shown)


@pytest.mark.parametrize("url, message", [
    ("http://x", "expected redis://, rediss:// or redis+sentinel://"),
    ("redis+sentinel://10.0.0.1/gslb", "sentinel '10.0.0.1' is not HOST:PORT"),
    ("redis+sentinel://10.0.0.1:26379", "expected /SERVICE or /SERVICE/DB"),
])
def test_bad_redis_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_url(url)


def test_backoff_grows_to_a_ceiling_and_resets() -> None:
    backoff = Backoff(0.1, 1.0)
    delays = [backoff.next() for _ in range(8)]
    assert delays[0] <= 0.1 and max(delays) <= 1.0 and delays[-1] >= 0.5
    backoff.reset()
    assert backoff.next() <= 0.1


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "10m", "2h", "1d", "0.5s")] == \
        [90, 90, 600, 7200, 86400, 0.5]
    for bad in ("", "-1m", "10x", "0"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_overrides_in_the_state_file_keep_the_rest_and_expire(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("health: {api-primary: down}\n")
    set_in_file(state, "192.0.2.20", "drain", time.time() + 60)
    set_in_file(state, "192.0.2.21", "down", time.time() - 1)  # already expired
    store = InProcessStore.from_file(state)
    assert store.view().health["api-primary"].up is False
    assert set(store.active_overrides()) == {"192.0.2.20"}
    assert set(list_in_file(state)) == {"192.0.2.20"}
    assert clear_in_file(state, "192.0.2.20") and not clear_in_file(state, "192.0.2.20")
    state.write_text("overrides: {192.0.2.20: {mode: off, until: 5}}\n")
    with pytest.raises(StateFileError, match=r"overrides.192.0.2.20.mode: expected up, down or drain"):
        InProcessStore.from_file(state)


@pytest.mark.parametrize("sample, problem", [
    (Sample("10.0.0.0/8", "us-east", 12), None),
    (Sample("NA-US", "us-east", 12), None),
    (Sample("10.0.0.1/8", "us-east", 12), "has host bits set"),
    (Sample("10.0.0.0/8", "us east", 12), "expected a datacenter name"),
    (Sample("10.0.0.0/8", "us-east", -1), "expected 0..60000"),
])
def test_telemetry_samples_are_validated(sample: Sample, problem: str | None) -> None:
    found = validate(sample)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_check_definitions_report_every_problem(tmp_path: Path, zone) -> None:  # noqa: F811
    text = """\
        checks:
          bad: {type: tcp, interval: 0.01, path: /x}
          web: {type: http, port: 70000, expect: [99], timeout: 9, interval: 1}
          ns: {type: dns, transport: sctp}
          odd: {type: icmp}
        records:
          www:
            type: A
            pools:
              p:
                members:
                  - {value: 192.0.2.1, check: bad}
                  - {value: 192.0.2.2, check: external}
                  - {value: 192.0.2.3, probe: 10.0.0.1}
            rules: [{pool: p}]
        """
    assert problems(tmp_path, zone, text) == [
        '2: checks: bad: "path" does not apply to a tcp check',
        "2: checks: bad: interval 0.01 is out of range 0.05..3600 s",
        '2: checks: bad: a tcp check needs "port"',
        "3: checks: web: timeout 9.0 is longer than the interval 1.0",
        "3: checks: web: port 70000 is out of range 1..65535",
        "3: checks: web: expect 99 is not an HTTP status (100..599)",
        '4: checks: ns: a dns check needs "query" (the name to ask)',
        '4: checks: ns: transport "sctp" is not one of udp, tcp',
        '5: checks: odd: type "icmp" is not one of http, https, tcp, dns',
        '12: www.example.test. A: pool "p" member 1: check "bad" has problems (see checks:)',
        '14: www.example.test. A: pool "p" member 3: probe needs a check defined under checks:',
    ]


def test_stale_policy_after_max_age_without_redis() -> None:
    from gslb.settings import StoreSettings
    from gslb.state.shared import Copy, RedisVerdicts

    def source(stale: str) -> RedisVerdicts:
        verdicts = RedisVerdicts(StoreSettings(redis="redis://127.0.0.1:1/0", max_age=5, stale=stale),
                                 lambda: None)
        verdicts.copy = Copy(verdicts={"web@10.0.0.1": [AgentVerdict("a", False, NOW - 1)]})
        verdicts.outage.connected = False
        verdicts.last_sync = time.monotonic() - 6  # unreachable for longer than max_age
        return verdicts

    keep = source("keep")
    health, _ = keep.health(NOW)
    assert health["web@10.0.0.1"].up is False and keep.status().stale
    up = source("up")
    assert up.health(NOW) == ({}, {})  # every member counts as up
    assert not up.status().connected and up.status().stale


def test_an_agents_own_expiry_ends_its_verdict() -> None:
    early = AgentVerdict("a", False, NOW - 1, expires=NOW - 0.5)
    health, marked = judge([early, AgentVerdict("b", True, NOW - 1)], NOW, RULE)
    assert health is not None and health.up and [v.fresh for v in marked] == [False, True]
