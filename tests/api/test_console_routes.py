"""The web console's files and the three routes it reads besides the others: a steered
record with live member health, the serving nodes, the caller's token."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import redis
from fastapi.testclient import TestClient

from api.app import create_app
from gslb.observability.heartbeat import NODES
from gslb.state.store import AgentVerdict, StateView
from gslb.steering.model import Health
from tests.api.conftest import DEMO, Api, make_api
from tests.redis_server import RedisProcess

STATUS = "/v1/zones/example.com/steered/{}/A/status"


def test_the_console_is_served_with_a_strict_policy(api: Api) -> None:
    page = api.client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "object-src 'none'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert api.client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"
    # Every file the page names is served, and none is from another origin.
    names = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert names and all("//" not in name for name in names)
    for name in names:
        reply = api.client.get(f"/ui/{name}")
        assert reply.status_code == 200, name
        assert reply.headers["content-security-policy"] == policy
    scripts = [api.client.get(f"/ui/{n}").text for n in ("app.js", "lib.js", "record.js")]
    assert all("innerHTML" not in text and "eval(" not in text for text in scripts)
    assert "<script>" not in page.text and " style=" not in page.text
    assert api.client.get("/ui/../app.py").status_code == 404
    assert api.client.get("/ui/nothing.js").status_code == 404


def test_the_console_can_be_left_out(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    shutil.copytree(DEMO, zones)
    context = make_api(zones).client.app.state.gslb  # type: ignore[attr-defined]
    context.settings.console = False
    client = TestClient(create_app(context), base_url="http://localhost")
    assert client.get("/ui/").status_code == 404
    assert client.get("/v1/token").status_code == 401  # the API itself is there


def test_status_shows_each_member_with_its_health(api: Api) -> None:
    reply = api.client.get(STATUS.format("api"), headers=api.auth("read"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    pools = {p["name"]: p for p in body["pools"]}
    assert pools["main"]["fallback"] == "dr"
    first = pools["main"]["members"][0]
    assert first["value"] == "192.0.2.20" and first["priority"] == 1
    assert first["datacenter"] == "us-east" and first["state"] == "enabled"
    assert first["check"] == "api-primary"

    now = time.time()
    api.server.apply_state(StateView(version=1, health={"api-primary": Health(False, "quorum")},
                                     verdicts={"api-primary": (
                                         AgentVerdict("eu-1", False, now - 1, "timed out after 2 s"),
                                         AgentVerdict("us-1", True, now - 30, "", fresh=False))}))
    down = api.client.get(STATUS.format("api"), headers=api.auth("read")).json()["pools"][0]["members"][0]
    assert down["up"] is False and down["source"] == "quorum"
    assert [(a["agent"], a["up"], a["fresh"], a["detail"]) for a in down["agents"]] == [
        ("eu-1", False, True, "timed out after 2 s"), ("us-1", True, False, "")]
    drained = api.client.post("/v1/zones/example.com/steered/api/A/members/192.0.2.20/drain",
                              headers=api.auth("write"))
    assert drained.status_code == 200, drained.text
    after = api.client.get(STATUS.format("api"), headers=api.auth("read")).json()
    assert after["pools"][0]["members"][0]["state"] == "drained"
    assert after["version"] == drained.json()["version"]


def test_status_refuses_what_it_should(api: Api) -> None:
    assert api.client.get(STATUS.format("www2")).status_code == 401
    assert api.client.get(STATUS.format("nothing"), headers=api.auth("read")).status_code == 404
    net = api.client.get(STATUS.format("www2"), headers={
        "Authorization": f"Bearer {api.tokens['net-writer']}"})
    assert net.status_code == 403


def test_nodes_and_token(api: Api) -> None:
    nodes = api.client.get("/v1/nodes", headers=api.auth("read"))
    assert nodes.status_code == 200, nodes.text
    (node,) = nodes.json()
    assert node["zones"]["example.com."] > 0 and not node["stopped"] and node["lagging"] == []
    limited = api.client.get("/v1/nodes", headers={"Authorization": f"Bearer {api.tokens['net-writer']}"})
    assert list(limited.json()[0]["zones"]) == ["example.net."]
    me = api.client.get("/v1/token", headers={"Authorization": f"Bearer {api.tokens['net-writer']}"})
    assert me.json() == {"name": "net-writer", "role": "write", "zones": ["example.net."]}
    assert api.tokens["net-writer"] not in me.text
    assert api.client.get("/v1/token").status_code == 401


def test_geo_map_gives_each_country_its_pool(api: Api) -> None:
    record = {"type": "A", "pools": {"eu": {"members": ["192.0.2.1"]}, "fr": {"members": ["192.0.2.2"]},
                                     "us": {"members": ["192.0.2.3"]}, "rest": {"members": ["192.0.2.4"]},
                                     "lan": {"members": ["10.0.0.1"]}},
              "rules": [{"subnets": ["10.0.0.0/8"], "pool": "lan"}, {"geos": ["NA-US-CA"], "pool": "us"},
                        {"geos": ["FR"], "pool": "fr"}, {"geos": ["EU"], "pool": "eu"},
                        {"geos": ["NA-US"], "pool": "us"}, {"pool": "rest"}]}
    put = api.client.put("/v1/zones/example.com/steered/world/A", json=record, headers=api.auth("write"))
    assert put.status_code == 200, put.text
    reply = api.client.get("/v1/zones/example.com/steered/world/A/geo", headers=api.auth("read"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    countries = body["countries"]
    assert countries["FR"] == "fr" and countries["DE"] == "eu" and countries["RU"] == "eu"
    assert countries["US"] == "us" and countries["BR"] == "rest" and len(countries) > 170
    assert body["split"] == ["US"]  # California is named before the rest of the US
    assert body["address_rules"] == ["10.0.0.0/8 -> lan"]
    assert "no GeoIP database" in body["continents"] and body["geo_rules"] == 4
    no_rules = api.client.get("/v1/zones/example.com/steered/www2/A/geo", headers=api.auth("read")).json()
    assert set(no_rules["countries"].values()) == {"web"}
    assert api.client.get("/v1/zones/example.com/steered/nothing/A/geo",
                          headers=api.auth("read")).status_code == 404


def test_nodes_come_from_the_heartbeats_in_redis(api: Api, redis_server: RedisProcess) -> None:
    """Three nodes' beats: one current, one on an older serial, one that stopped."""
    shared = make_api(api.zones, redis=redis_server.url)
    now = time.time()

    def beat(node: str, serial: int, at: float) -> str:
        return json.dumps({"node": node, "config_version": 4, "at": at, "interval": 2.0, "qps": 1.5,
                           "zones": {"example.com.": serial, "example.net.": 7}})

    client = redis.Redis.from_url(redis_server.url)
    client.hset(NODES, mapping={"a": beat("ns-a", 9, now), "b": beat("ns-b", 8, now - 1),
                                "c": beat("ns-c", 9, now - 60)})
    client.close()
    reply = shared.client.get("/v1/nodes", headers=shared.auth("read"))
    assert reply.status_code == 200, reply.text
    nodes = {n["node"]: n for n in reply.json()}
    assert sorted(nodes) == ["ns-a", "ns-b", "ns-c"]
    assert not nodes["ns-a"]["stopped"] and nodes["ns-a"]["lagging"] == []
    assert nodes["ns-b"]["lagging"] == ["example.com."] and not nodes["ns-b"]["stopped"]
    assert nodes["ns-c"]["stopped"] and nodes["ns-c"]["seen"] >= 59
    limited = shared.client.get("/v1/nodes", headers={"Authorization": f"Bearer {shared.tokens['net-writer']}"})
    assert {n["node"]: n["zones"] for n in limited.json()}["ns-b"] == {"example.net.": 7}
    assert all(n["lagging"] == [] for n in limited.json())
