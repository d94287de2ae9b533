"""Control-plane security: what a token holder (or anyone) must not be able to do.

Each test is one finding of the security review; it failed on the code before the fix."""

from __future__ import annotations

import contextlib
import io
import shutil
import time
from pathlib import Path
from typing import Callable

import pytest

import gslb.config.changes as changes
from gslb.cli import main
from gslb.config.tokens import TokenStore
from tests.api.conftest import DEMO, Api, make_api

SOA = {"name": "@", "type": "SOA", "ttl": 3600,
       "rdata": ["ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300"]}
NS = {"name": "@", "type": "NS", "ttl": 3600, "rdata": ["ns1.example.com."]}


def wait_for(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _zone_text(origin: str, extra: str = "") -> str:
    return (f"$ORIGIN {origin}\n$TTL 300\n@ SOA ns1.example.com. hostmaster.example.com. 1 7200 "
            f"3600 1209600 300\n@ NS ns1.example.com.\n{extra}")


def test_a_zone_name_cannot_name_a_file_outside_the_zones_folder(api: Api, tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere"
    victim.mkdir()
    (victim / "victim.zone").write_text("precious\n")
    for name in (f"{victim}/victim", "../outside", "a/b.example", "a\\\\b.example", "..", ".",
                 "a\\047b.example", "has space.example", "-lead.example"):
        reply = api.client.post("/v1/zones", headers=api.auth(),
                                json={"name": name, "rrsets": [SOA, NS]})
        assert reply.status_code == 422, (name, reply.status_code, reply.text)
        assert reply.json()["errors"][0]["field"] == "name", reply.text
    assert (victim / "victim.zone").read_text() == "precious\n"
    assert not (tmp_path / "outside.zone").exists()
    assert sorted(p.name for p in api.zones.iterdir() if p.suffix == ".zone") == sorted(
        p.name for p in Path(__file__).resolve().parents[2].joinpath("zones").iterdir()
        if p.suffix == ".zone")
    # an ordinary new zone still works, and lands in the folder
    ok = api.client.post("/v1/zones", headers=api.auth(),
                         json={"name": "new-zone_1.example", "rrsets": [SOA, NS]})
    assert ok.status_code == 201, ok.text
    assert (api.zones / "new-zone_1.example.zone").is_file()


def test_zone_text_through_the_api_cannot_include_files(api: Api, tmp_path: Path) -> None:
    secret = tmp_path / "records.txt"
    secret.write_text("leak 300 IN A 192.0.2.66\n")
    for target in (str(secret), "/etc/passwd", "../../../../etc/passwd", "example.com.zone"):
        reply = api.client.post("/v1/zones", headers=api.auth(), json={
            "name": "inc.example", "text": _zone_text("inc.example.", f"$INCLUDE {target}\n")})
        assert reply.status_code == 422, (target, reply.text)
        problems = reply.json()["errors"]
        assert len(problems) == 1 and "$INCLUDE is not allowed" in problems[0]["message"], problems
        assert "root:" not in reply.text and "192.0.2.66" not in reply.text
    assert api.ask("leak.inc.example") == []


def test_numbers_out_of_range_are_refused_by_the_api_and_gslb_check(api: Api, tmp_path: Path) -> None:
    huge = 10 ** 4000
    body = {"type": "A", "pools": {"p": {"members": [{"value": "192.0.2.200"}]}},
            "rules": [{"pool": "p"}], "policies": ["health", {"priority": {"min_healthy": huge}}]}
    for dry_run in (True, False):
        reply = api.client.put("/v1/zones/example.com/steered/lb/A", headers=api.auth(),
                               params={"dry_run": dry_run}, json=body)
        assert reply.status_code == 422, reply.text
        assert "min_healthy must be an integer 1..1000" in reply.text
    assert api.ask("lb.example.com") == []
    for field, value, message in (("select", 65, "less than or equal to 64"),
                                  ("ttl", 86401, "less than or equal to 86400")):
        reply = api.client.put("/v1/zones/example.com/steered/lb/A", headers=api.auth(),
                               json={**body, "policies": ["health"], field: value})
        assert reply.status_code == 422 and message in reply.text, reply.text
    # the same file fails `gslb check` with the same words, at its line
    zones = tmp_path / "check"
    zones.mkdir()
    for path in api.zones.glob("example.com.*"):
        (zones / path.name).write_text(path.read_text())
    (zones / "example.com.gslb.yaml").write_text(
        "records:\n  lb:\n    type: A\n    pools: {p: {members: [192.0.2.200]}}\n"
        f"    rules: [{{pool: p}}]\n    policies: [health, {{priority: {{min_healthy: {huge}}}}}]\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["check", "--zones", str(zones)])
    assert code == 1 and ":6: lb.example.com. A: policy priority: min_healthy must be an integer " \
        "1..1000" in out.getvalue(), out.getvalue()


def test_a_pool_has_at_most_256_members(api: Api) -> None:
    members = [{"value": f"10.0.{n // 256}.{n % 256}"} for n in range(300)]
    body = {"type": "A", "pools": {"p": {"members": members}}, "rules": [{"pool": "p"}]}
    reply = api.client.put("/v1/zones/example.com/steered/big/A", headers=api.auth(), json=body)
    assert reply.status_code == 422, reply.text
    assert reply.json()["errors"][0]["field"].endswith("members"), reply.text
    body["pools"]["p"]["members"] = members[:256]
    assert api.client.put("/v1/zones/example.com/steered/big/A", headers=api.auth(),
                          json=body).status_code == 200
    one_more = api.client.post("/v1/zones/example.com/steered/big/A/pools/p/members",
                               headers=api.auth(), json={"value": "10.0.9.9"})
    assert one_more.status_code == 422 and "at most 256" in one_more.text, one_more.text


def test_the_version_history_is_bounded(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(changes, "KEEP_VERSIONS", 5)
    for n in range(8):
        reply = api.client.put("/v1/zones/example.com/rrsets/v/A", headers=api.auth(),
                               json={"ttl": 30, "rdata": [f"192.0.2.{n + 1}"]})
        assert reply.status_code == 200, reply.text
    kept = sorted(p.name for p in (api.zones / ".gslb" / "versions").iterdir())
    assert kept == [f"{n:08d}.json" for n in range(4, 9)]
    listed = [v["number"] for v in api.client.get("/v1/versions", headers=api.auth()).json()]
    assert listed == [8, 7, 6, 5, 4]
    assert api.client.get("/v1/versions/2", headers=api.auth()).status_code == 404
    gone = api.client.post("/v1/versions/2/rollback", headers=api.auth())
    assert gone.status_code == 404 and "no longer kept" in gone.text
    back = api.client.post("/v1/versions/5/rollback", headers=api.auth())
    assert back.status_code == 200, back.text
    assert api.ask("v.example.com") == ["192.0.2.5"]


NET_STEERING = """\
records:
  adm:
    type: A
    pools:
      p:
        members: [203.0.113.5, 192.0.2.10]
    rules: [{pool: p}]
    select: 2
"""


def _scoped(tmp_path: Path) -> tuple[Api, dict[str, str]]:
    """The demo zones plus a steered name in example.net (one member only it uses, one it
    shares with example.com), a state file, and tokens limited to one zone each."""
    zones = tmp_path / "zones"
    shutil.copytree(DEMO, zones)
    (zones / "example.net.gslb.yaml").write_text(NET_STEERING)
    state = tmp_path / "state.yaml"
    state.write_text("health: {api-primary: up, api-dr: down}\n")
    api = make_api(zones, state=state)
    store = TokenStore.for_zones(zones)
    scoped = {f"{role}-{zone}": store.create(f"{role}-{zone}", role, [f"{zone}."])[1]
              for role in ("read", "write") for zone in ("example.com", "example.net")}
    return api, {name: f"Bearer {secret}" for name, secret in scoped.items()}


def test_an_override_stays_within_the_zones_of_its_token(tmp_path: Path) -> None:
    api, tokens = _scoped(tmp_path)
    down = {"mode": "down", "seconds": 600, "reason": "maintenance"}
    put = api.client.put  # the case: an example.com token and an example.net member
    refused = put("/v1/overrides/203.0.113.5", headers={"Authorization": tokens["write-example.com"]},
                  json=down)
    assert refused.status_code == 403, refused.text
    shared = put("/v1/overrides/192.0.2.10", headers={"Authorization": tokens["write-example.net"]},
                 json=down)
    assert shared.status_code == 403 and "example.com." in shared.text, shared.text
    unused = put("/v1/overrides/192.0.2.99", headers={"Authorization": tokens["write-example.net"]},
                 json=down)
    assert unused.status_code == 403
    assert wait_for(lambda: api.ask("adm.example.net") == ["192.0.2.10", "203.0.113.5"])
    own = put("/v1/overrides/203.0.113.5", headers={"Authorization": tokens["write-example.net"]},
              json=down)
    assert own.status_code == 200, own.text
    # kept with its author and reason, and logged
    listed = api.client.get("/v1/overrides", headers=api.auth()).json()
    assert [(o["value"], o["by"], o["reason"]) for o in listed] == [
        ("203.0.113.5", "write-example.net", "maintenance")]
    assert api.client.get("/v1/overrides", headers={"Authorization": tokens["read-example.com"]}
                          ).json() == []
    lifted = api.client.delete("/v1/overrides/203.0.113.5",
                               headers={"Authorization": tokens["write-example.net"]})
    assert lifted.status_code == 204
    log = api.client.get("/v1/overrides/log", headers=api.auth()).json()
    assert [(e["action"], e["by"], e["value"], e["zones"]) for e in log] == [
        ("clear", "write-example.net", "203.0.113.5", ["example.net."]),
        ("set", "write-example.net", "203.0.113.5", ["example.net."])]
    assert log[1]["reason"] == "maintenance" and log[1]["mode"] == "down"
    assert api.client.get("/v1/overrides/log", headers={"Authorization": tokens["read-example.com"]}
                          ).json() == []


def test_a_zone_scoped_read_token_sees_only_its_zones(tmp_path: Path) -> None:
    api, tokens = _scoped(tmp_path)
    com = {"Authorization": tokens["read-example.com"]}
    other = api.client.get("/v1/explain", headers=com,
                           params={"name": "adm.example.net", "client": "192.0.2.1"})
    assert other.status_code == 403 and "203.0.113.5" not in other.text, other.text
    own = api.client.get("/v1/explain", headers=com,
                         params={"name": "www2.example.com", "client": "192.0.2.1"})
    assert own.status_code == 200, own.text
    checks = {c["check"] for c in api.client.get("/v1/health", headers=com).json()}
    every = {c["check"] for c in api.client.get("/v1/health", headers=api.auth("read")).json()}
    assert checks == every == {"api-primary", "api-dr"}, (checks, every)
    net = {c["check"] for c in api.client.get(
        "/v1/health", headers={"Authorization": tokens["read-example.net"]}).json()}
    assert net == set(), net  # example.net's members name no check
    assert api.client.get("/metrics", headers=com).status_code == 403
    assert api.client.get("/metrics", headers=api.auth("read")).status_code == 200


def test_the_work_of_one_preview_is_bounded(api: Api) -> None:
    many = [f"10.{n // 256}.{n % 256}.0/24" for n in range(900)]
    drain = "/v1/datacenters/eu-west/drain"
    refused = api.client.post(drain, headers=api.auth(), params={"dry_run": True, "networks": many})
    assert refused.status_code == 422 and "at most 256" in refused.text, refused.text
    reply = api.client.post(drain, headers=api.auth(),
                            params={"dry_run": True, "networks": many[:256]})
    assert reply.status_code == 200, reply.text
    shares = reply.json()["preview"]
    # the work is bounded by count (about 1.5 s of decisions on a quiet 2-core machine)
    assert shares and all(s["networks"] * 64 * 2 * len(shares) <= 50_000 for s in shares), shares


def test_rdata_with_a_line_break_is_refused_not_cut(api: Api) -> None:
    reply = api.client.put("/v1/zones/example.com/rrsets/note/TXT", headers=api.auth(),
                           json={"ttl": 60, "rdata": ['"first line\nsecond line"']})
    assert reply.status_code == 422, reply.text
    assert reply.json()["errors"][0]["field"] == "rdata[0]" and "0x0a" in reply.text
    assert api.ask("note.example.com", "TXT") == []
    escaped = api.client.put("/v1/zones/example.com/rrsets/note/TXT", headers=api.auth(),
                             json={"ttl": 60, "rdata": ['"first line\\010second line"']})
    assert escaped.status_code == 200, escaped.text


def test_a_parent_zone_cannot_hold_data_that_would_be_occluded(api: Api) -> None:
    write = api.auth("write")
    for name, rtype in (("www.sub", "A"), ("x.ext", "TXT"), ("ext", "A")):
        reply = api.client.put(f"/v1/zones/example.com/rrsets/{name}/{rtype}", headers=write,
                               json={"ttl": 60, "rdata": ['"x"' if rtype == "TXT" else "192.0.2.7"]})
        assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "name", reply.text
    glue = api.client.put("/v1/zones/example.com/rrsets/ns2.ext/A", headers=write,
                          json={"ttl": 60, "rdata": ["192.0.2.53"]})
    assert glue.status_code == 200, glue.text  # glue below a delegation is allowed


def test_replies_are_not_cached_or_sniffed_and_secrets_are_private(api: Api, tmp_path: Path) -> None:
    reply = api.client.get("/v1/zones", headers=api.auth("read"))
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert (api.zones / ".gslb" / "tokens.json").stat().st_mode & 0o777 == 0o600
    rebound = api.client.get("/v1/zones", headers={**api.auth("read"), "Host": "evil.example"})
    assert rebound.status_code == 400 and "--api-host" in rebound.text
    scoped, tokens = _scoped(tmp_path / "scoped")  # its state file, rewritten by an override
    put = scoped.client.put("/v1/overrides/203.0.113.5", json={"mode": "down", "seconds": 60},
                            headers={"Authorization": tokens["write-example.net"]})
    assert put.status_code == 200, put.text
    assert (tmp_path / "scoped" / "state.yaml").stat().st_mode & 0o777 == 0o600


def test_bodies_too_large_or_too_deep_are_refused_cleanly(api: Api) -> None:
    chunks = (b"x" * 65536 for _ in range(32))  # 2 MiB, streamed without a length
    large = api.client.post("/v1/zones", headers={**api.auth(), "Content-Type": "application/json"},
                            content=chunks)
    assert large.status_code == 413, large.text
    deep = "[" * 500 + "]" * 500
    nested = api.client.post("/v1/zones", headers={**api.auth(), "Content-Type": "application/json"},
                             content=deep)
    assert nested.status_code == 422 and "nests deeper" in nested.text, nested.text
