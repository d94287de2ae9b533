"""Steering history per record (issue 17, item 5): every write to a steered record is
recorded as a change that names the record and holds its mapping before and after, in
write replies, versions, diffs and the audit trail; rollbacks and the nodes that replay
the versions write that one record into the steering YAML and leave the rest of it as
it was written."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import dns.name

from gslb.config.filestore import FileStore
from gslb.config.live import parsed_steering
from gslb.server.node import Server
from gslb.settings import Settings
from tests.api.conftest import DEMO, Api, make_api

ZONE = "/v1/zones/example.com"
WWW2 = f"{ZONE}/steered/www2/A"
STEERING = "example.com.gslb.yaml"
SOA = ("rrset", "example.com.", "SOA")


def _kinds(changes: list[dict]) -> list[tuple[str, str, str]]:
    return [(c["kind"], c["name"], c["type"]) for c in changes]


def _member(record: dict, value: str) -> dict:
    return next(m for pool in record["pools"].values() for m in pool["members"]
                if isinstance(m, dict) and m["value"] == value)


def _answers(api: Api, name: str) -> set[str]:
    return {address for draw in range(64) for address in api.ask(name, draw=draw)}


def test_a_member_change_is_recorded_as_a_change_of_its_record(api: Api) -> None:
    reply = api.client.patch(f"{WWW2}/members/192.0.2.10", headers=api.auth("write"),
                             json={"weight": 5})
    assert reply.status_code == 200, reply.text
    changes = reply.json()["changes"]
    assert _kinds(changes) == [("steered", "www2.example.com.", "A"), SOA]
    www2 = changes[0]
    assert www2["zone"] == "example.com."
    assert _member(www2["before"], "192.0.2.10")["weight"] == 3
    assert _member(www2["after"], "192.0.2.10")["weight"] == 5
    unchanged = copy.deepcopy(www2["after"])
    unchanged["pools"]["web"]["members"][0]["weight"] = 3
    assert unchanged == www2["before"]  # nothing else of the record changed
    assert len(json.dumps(www2)) < 1000  # the record, not the file
    for shown in (api.client.get("/v1/versions/1", headers=api.auth("read")).json()["changes"],
                  api.client.get("/v1/versions/0/diff/1", headers=api.auth("read")).json()):
        assert shown == changes
    back = api.client.get("/v1/versions/1/diff/0", headers=api.auth("read")).json()
    assert back[0]["before"] == changes[0]["after"] and back[0]["after"] == changes[0]["before"]
    audit = api.client.get("/v1/audit", headers=api.auth("read")).json()
    assert [(e["kind"], e["name"], e["type"], e["author"]) for e in audit] == [
        ("steered", "www2.example.com.", "A", "write-user"), ("rrset", "example.com.", "SOA", "write-user")]


def test_the_audit_finds_who_changed_a_steered_record(api: Api) -> None:
    api.client.patch(f"{WWW2}/members/192.0.2.11", headers=api.auth("write"), json={"weight": 2})
    drained = api.client.post(f"{ZONE}/steered/api/A/members/192.0.2.21/drain", headers=api.auth())
    assert drained.status_code == 200, drained.text
    for name in ("www2", "www2.example.com", "www2.example.com."):
        found = api.client.get("/v1/audit", headers=api.auth("read"), params={"name": name}).json()
        assert [(e["version"], e["author"], e["name"], e["type"]) for e in found] == [
            (1, "write-user", "www2.example.com.", "A")], (name, found)
    found = api.client.get("/v1/audit", headers=api.auth("read"),
                           params={"name": "api", "type": "a"}).json()
    assert [(e["version"], e["author"], e["kind"]) for e in found] == [(2, "admin-user", "steered")]
    assert api.client.get("/v1/audit", headers=api.auth("read"),
                          params={"name": "www2", "type": "AAAA"}).json() == []


def test_rolling_back_a_steered_put_restores_that_record_and_nothing_else(api: Api) -> None:
    path = api.zones / STEERING
    original = path.read_text()
    patched = api.client.patch(f"{ZONE}/steered/api/A/members/192.0.2.21", headers=api.auth(),
                               json={"priority": 3})
    assert patched.status_code == 200, patched.text
    kept = path.read_text()  # version 1: api changed
    record = api.client.get(WWW2, headers=api.auth("read")).json()["record"]
    record["ttl"] = 60
    record["pools"]["web"]["members"] = [{"value": "192.0.2.10", "weight": 1}, "192.0.2.13"]
    record.pop("policies")
    put = api.client.put(WWW2, headers=api.auth(), json=record)
    assert put.status_code == 200, put.text
    assert _kinds(put.json()["changes"]) == [("steered", "www2.example.com.", "A"), SOA]
    assert _answers(api, "www2.example.com") == {"192.0.2.10", "192.0.2.13"}

    rolled = api.client.post("/v1/versions/1/rollback", headers=api.auth())
    assert rolled.status_code == 200, rolled.text
    assert _kinds(rolled.json()["changes"]) == [("steered", "www2.example.com.", "A"), SOA]
    assert rolled.json()["changes"][0]["after"] == put.json()["changes"][0]["before"]
    assert _answers(api, "www2.example.com") == {"192.0.2.10", "192.0.2.11"}
    assert path.read_text() == kept  # www2 as it was written, api as version 1 left it
    changed = [(old, new) for old, new in zip(original.splitlines(), kept.splitlines()) if old != new]
    assert changed == [
        ("          - {value: 192.0.2.21, priority: 2, datacenter: us-east, check: api-secondary}",
         "          - {value: 192.0.2.21, priority: 3, datacenter: us-east, check: api-secondary}")]


def test_a_datacenter_drain_records_a_change_per_record(api: Api) -> None:
    path = api.zones / STEERING
    original = path.read_text()
    reply = api.client.post("/v1/datacenters/us-east/drain", headers=api.auth("write"))
    assert reply.status_code == 200, reply.text
    changes = reply.json()["changes"]
    assert sorted(_kinds(changes)) == sorted([
        ("steered", "www2.example.com.", "A"), ("steered", "api.example.com.", "A"),
        ("steered", "geo.example.com.", "A"), SOA])
    for change in changes[:-1]:
        states = {m["value"]: m.get("state") for pool in change["after"]["pools"].values()
                  for m in pool["members"] if isinstance(m, dict)}
        assert {v for v, s in states.items() if s == "drained"} == {
            m["value"] for pool in change["before"]["pools"].values()
            for m in pool["members"] if isinstance(m, dict) and m.get("datacenter") == "us-east"}
    assert [(e["name"], e["author"]) for e in api.client.get(
        "/v1/audit", headers=api.auth("read"), params={"name": "geo"}).json()] == [
        ("geo.example.com.", "write-user")]
    # the lines that changed are the drained members', nothing else
    changed = [(old, new) for old, new in zip(original.splitlines(), path.read_text().splitlines())
               if old != new]
    assert len(changed) == 5 and all("state: drained" in new and "us-east" in new
                                     for _, new in changed), changed


def test_a_node_that_replays_the_versions_serves_and_holds_the_same(api: Api, tmp_path: Path) -> None:
    """A second node loaded from the same starting files replays the versions (all at
    once, as a follower that was behind does) and ends with the same steering text,
    byte for byte, and the same answers; a worker given the supervisor's result does too."""
    start = tmp_path / "second"
    shutil.copytree(DEMO, start)
    writes = [
        ("patch", f"{WWW2}/members/192.0.2.10", {"weight": 0}),
        ("post", "/v1/datacenters/eu-west/drain", None),
        ("put", f"{ZONE}/steered/added/A", {"type": "A", "pools": {"p": {"members": ["192.0.2.99"]}},
                                            "rules": [{"pool": "p"}]}),
        ("delete", f"{ZONE}/steered/checked/A", None),
        ("post", "/v1/versions/1/rollback", None),
    ]
    for method, url, body in writes:
        reply = api.client.request(method, url, headers=api.auth(), json=body)
        assert reply.status_code == 200, reply.text
    versions = FileStore(api.zones).versions_after(0)
    assert len(versions) == len(writes)
    second = Server(Settings(zones_dir=start, workers=1, prewarm=0))
    assert second.load()
    before = second.live
    assert second.apply_versions(versions) is None
    third = Server(Settings(zones_dir=start, workers=1, prewarm=0))
    assert third.load()
    third.apply_versions(versions, parsed_steering(before, second.live, versions))
    text = (api.zones / STEERING).read_text()
    origin = dns.name.from_text("example.com.")
    for node in (second, third):
        assert node.live.version == len(writes)
        assert node.live.steering_text[origin] == api.server.live.steering_text[origin] == text
        assert third.live.records[origin] is second.live.records[origin]  # taken, not parsed again
        other = Api(api.client, node, start, api.tokens)
        for name in ("www2.example.com", "geo.example.com", "api.example.com", "added.example.com",
                     "checked.example.com"):
            assert _answers(other, name) == _answers(api, name), name


def test_a_hand_edit_not_yet_reloaded_stays_in_the_file(api: Api) -> None:
    """As in zone files: a change through the API is written into the file as it is
    on disk, so an edit by hand that the server has not read yet is not lost."""
    path = api.zones / STEERING
    edited = path.read_text().replace("    select: 2\n\n# Health check",
                                      "    select: 1  # one is enough here\n\n# Health check")
    path.write_text(edited)
    reply = api.client.patch(f"{WWW2}/members/192.0.2.10", headers=api.auth(), json={"weight": 4})
    assert reply.status_code == 200, reply.text
    assert path.read_text() == edited.replace("{value: 192.0.2.10, weight: 3,",
                                              "{value: 192.0.2.10, weight: 4,")
    again = make_api(api.zones)  # a restart reads the file: the hand edit and the change
    assert again.client.get(f"{ZONE}/steered/checked/A", headers=again.auth()).json()["record"]["select"] == 1
    assert _member(again.client.get(WWW2, headers=again.auth()).json()["record"], "192.0.2.10")["weight"] == 4
