"""Steered record settings written into a steering text (gslb/config/steertext.py and its
quick span edits, gslb/config/steerspans.py): the record reads as set, the other lines
stay as written, the result depends only on the text and the settings, and folds and
rollbacks of mixed whole-text and record changes come back to where they started."""

from __future__ import annotations

import copy
import random
import re
from pathlib import Path

import dns.name
import pytest
import yaml

from gslb.config import steerspans, steertext
from gslb.config.changes import STEERED, STEERING, Change, Version
from gslb.config.history import fold, rollback_changes
from gslb.config.live import steering_after

DEMO = (Path(__file__).resolve().parents[2] / "zones" / "example.com.gslb.yaml").read_text()
ORIGIN = dns.name.from_text("example.com.")
WWW2 = ("www2.example.com.", "A")


def _record(text: str, key: tuple[str, str] = WWW2) -> dict:
    return steertext.records(text, ORIGIN)[key]


def _changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    return [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]


def _drain(record: dict, value: str, state: str | None) -> dict:
    record = copy.deepcopy(record)
    for _, listed, index in steertext.members(record):
        if steertext.member_value(listed, index) == value:
            steertext.set_member_fields(listed, index, {"state": state})
    return record


def test_a_drain_and_undrain_come_back_to_the_same_bytes() -> None:
    geo = ("geo.example.com.", "A")
    drained = steertext.set_records(DEMO, ORIGIN, [
        (*WWW2, _drain(_record(DEMO), "192.0.2.11", "drained")),
        (*geo, _drain(_record(DEMO, geo), "10.0.0.80", "drained"))])
    assert drained is not None
    assert _changed_lines(DEMO, drained) == [
        ("          - {value: 192.0.2.11, weight: 1, datacenter: eu-west}",
         "          - {value: 192.0.2.11, weight: 1, datacenter: eu-west, state: drained}"),
        ("          - 10.0.0.80", "          - {value: 10.0.0.80, state: drained}")]
    back = steertext.set_records(drained, ORIGIN, [(*WWW2, _record(DEMO)), (*geo, _record(DEMO, geo))])
    assert back == DEMO
    assert steertext.set_records(back, ORIGIN, [(*WWW2, _record(DEMO))]) is back  # already so
    undrained = steertext.set_records(drained, ORIGIN, [  # as the API undrains: the key goes
        (*WWW2, _drain(_record(drained), "192.0.2.11", None)),
        (*geo, _drain(_record(drained, geo), "10.0.0.80", None))])
    assert undrained is not None
    assert _changed_lines(DEMO, undrained) == [("          - 10.0.0.80", "          - {value: 10.0.0.80}")]


@pytest.mark.parametrize("change", ["scalar", "new key", "key removed", "member added",
                                    "member removed", "record removed", "record added"])
def test_a_setting_changes_its_record_and_no_other_line(change: str) -> None:
    record = _record(DEMO)
    members = record["pools"]["web"]["members"]
    key, after = WWW2, record
    if change == "scalar":
        record["ttl"] = 45
    elif change == "new key":
        record["select"] = 2
    elif change == "key removed":
        del record["policies"]
    elif change == "member added":
        members.append({"value": "192.0.2.13", "weight": 2})
    elif change == "member removed":
        del members[1]
    elif change == "record removed":
        after = None
    else:
        key, after = ("new.example.com.", "AAAA"), {"type": "AAAA", "pools": {"p": {"members": ["2001:db8::1"]}},
                                                    "rules": [{"pool": "p"}]}
    text = steertext.set_records(DEMO, ORIGIN, [(*key, after)])
    assert text is not None
    found = steertext.records(text, ORIGIN)
    assert found.get(key) == after
    others = steertext.records(DEMO, ORIGIN)
    others.pop(key, None)
    assert {k: v for k, v in found.items() if k != key} == others
    # every line outside www2 (or the new record, at the end of the records) is as written
    if change == "record added":
        start = text.index("  new:\n")
        assert text[:start] + text[text.index("\n# Health check"):] == DEMO
    else:
        start, end = DEMO.index("  www2:\n"), DEMO.index("\n  # Failover")
        assert text.startswith(DEMO[:start]) and text.endswith(DEMO[end:])
    # the same text and setting give the same text, and setting it again changes nothing
    assert steertext.set_records(DEMO, ORIGIN, [(*key, after)]) == text
    assert steertext.set_records(text, ORIGIN, [(*key, after)]) == text


def test_quick_edits_are_taken_only_where_they_read_as_set() -> None:
    record = _record(DEMO)
    record["ttl"] = 5
    record["pools"]["web"]["members"].append({"value": "192.0.2.14", "weight": 1})
    del record["pools"]["web"]["members"][1]
    text = steerspans.edit(DEMO, ORIGIN, [(*WWW2, record)])
    assert text is not None and _record(text) == record
    assert [line for line in text.splitlines() if line not in DEMO.splitlines()] == [
        "    ttl: 5", "          - {value: 192.0.2.14, weight: 1}"]
    record["select"] = 2  # a key added to a block mapping: the general way
    assert steerspans.edit(DEMO, ORIGIN, [(*WWW2, record)]) is None
    record = _record(DEMO)
    record["pools"]["web"]["members"] = []  # a list emptied: the general way
    assert steerspans.edit(DEMO, ORIGIN, [(*WWW2, record)]) is None
    removed = steerspans.edit(DEMO, ORIGIN, [(*WWW2, None)])
    assert removed is not None and WWW2 not in steertext.records(removed, ORIGIN)
    aaaa = {"type": "AAAA", "pools": {"p": {"members": ["2001:db8::1"]}}, "rules": [{"pool": "p"}]}
    assert steerspans.edit(DEMO, ORIGIN, [("www2.example.com.", "AAAA", aaaa)]) is None  # a list
    quoted = _record(DEMO)
    quoted["pools"]["web"]["members"][0]["datacenter"] = "yes, really"  # needs quotes
    text = steerspans.edit(DEMO, ORIGIN, [(*WWW2, quoted)])
    assert text is not None and "datacenter: 'yes, really'}" in text
    assert _record(text) == quoted


def test_shared_nodes_are_not_changed_through_another_record() -> None:
    text = """zone: example.com.
base: &base
  type: A
  pools: {p: {members: [192.0.2.1]}}
  rules: [{pool: p}]
records:
  a:
    <<: *base
    ttl: 30
  b: *base
"""
    a, b = ("a.example.com.", "A"), ("b.example.com.", "A")
    record = _record(text, a)
    record["pools"]["p"]["members"] = ["192.0.2.2"]
    written = steertext.set_records(text, ORIGIN, [(*a, record)])
    assert written is not None
    assert _record(written, a) == record
    assert _record(written, b) == _record(text, b)


def test_a_file_indented_otherwise_still_gets_valid_yaml() -> None:
    text = DEMO.replace("\n  ", "\n    ")  # four spaces where the demo has two
    assert yaml.safe_load(text) == yaml.safe_load(DEMO)
    record = _record(text)
    record["pools"]["web"]["members"].append({"value": "192.0.2.13"})
    written = steertext.set_records(text, ORIGIN, [(*WWW2, record)])
    assert written is not None and _record(written) == record
    assert steertext.records(written, ORIGIN).keys() == steertext.records(text, ORIGIN).keys()


def _version(number: int, *changes: Change) -> Version:
    return Version(number, "t", 0.0, "", changes)


def test_rolling_back_whole_texts_and_record_changes_together_comes_back() -> None:
    """Versions stored before record changes existed hold whole texts; a fold keeps them
    in order with the record changes, and a rollback over both restores the records (a
    deleted record comes back at the end of the records, in block style)."""
    zone = ORIGIN.to_text()
    texts = [DEMO]
    versions = []

    def whole(text: str) -> Change:
        return Change(STEERING, zone, before=texts[-1], after=text)

    def record(key: tuple[str, str], after: dict | None) -> Change:
        return Change(STEERED, zone, *key, steertext.records(texts[-1], ORIGIN).get(key), after)

    api = ("api.example.com.", "A")
    steps = [
        record(WWW2, _drain(_record(DEMO), "192.0.2.10", "drained")),
        whole(DEMO.replace("ttl: 20", "ttl: 25")),
        record(api, None),
        whole(DEMO.replace("weight: 3", "weight: 7")),
        record(WWW2, None),
    ]
    for number, change in enumerate(steps, 1):
        change = Change(change.kind, change.zone, change.name, change.rtype,
                        steertext.records(texts[-1], ORIGIN).get((change.name, change.rtype))
                        if change.kind == STEERED else texts[-1], change.after)
        versions.append(_version(number, change))
        after = steering_after(texts[-1], ORIGIN, [change])
        assert after is not None
        texts.append(after)
    assert [c.kind for c in fold(versions)] == [STEERED, STEERING, STEERED, STEERING, STEERED]
    for target in range(len(versions)):
        undone = steering_after(texts[-1], ORIGIN, rollback_changes(versions[target:]))
        assert undone is not None
        assert steertext.records(undone, ORIGIN) == steertext.records(texts[target], ORIGIN), target


def _blocks(text: str) -> dict[str, str]:
    """The text cut where each record or top-level key starts, by its name."""
    blocks: dict[str, str] = {}
    name = ""
    for line in text.splitlines(True):
        match = re.match(r"(?:  )?([\w-]+):", line)
        if match:
            name = match.group(1)
        blocks[name] = blocks.get(name, "") + line
    return blocks


def test_many_member_edits_in_a_row_read_as_set_and_touch_nothing_else() -> None:
    """A seeded run of the edits the API makes (weights, priorities, drains and
    undrains, members added and removed) on every record of the demo file."""
    rng = random.Random(17)
    text = DEMO
    keys = sorted(steertext.records(DEMO, ORIGIN))
    for step in range(60):
        key = rng.choice(keys)
        before = steertext.records(text, ORIGIN)
        record = copy.deepcopy(before[key])
        listed = [(pool, members) for pool, members, _ in steertext.members(record)]
        _, members = rng.choice(listed)
        index = rng.randrange(len(members))
        action = rng.choice(["weight", "priority", "drain", "undrain", "add", "remove"])
        if action == "add":
            members.append({"value": f"192.0.2.{100 + step}", "weight": rng.randrange(5)})
        elif action == "remove" and len(members) > 1:
            del members[index]
        elif action in ("drain", "undrain"):
            steertext.set_member_fields(members, index, {"state": "drained" if action == "drain" else None})
        elif action in ("weight", "priority"):
            steertext.set_member_fields(members, index, {action: rng.randrange(1, 9)})
        written = steertext.set_records(text, ORIGIN, [(*key, record)])
        assert written is not None
        after = steertext.records(written, ORIGIN)
        assert after == {**before, key: record}, (step, action)
        changed = key[0].split(".")[0]
        assert {k: v for k, v in _blocks(written).items() if k != changed} == {
            k: v for k, v in _blocks(text).items() if k != changed}, (step, action)
        text = written
