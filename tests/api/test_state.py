"""Overrides with an expiry and RTT telemetry through the API (state, not configuration)."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from tests.api.conftest import Api, make_api
from tests.redis_server import RedisProcess


def test_overrides_need_a_store(api: Api) -> None:
    reply = api.client.put("/v1/overrides/192.0.2.10", headers=api.auth("write"),
                           json={"mode": "down", "seconds": 60})
    assert reply.status_code == 409 and "--redis" in reply.json()["detail"]
    assert api.client.post("/v1/telemetry/rtt", headers=api.auth("write"),
                           json={"samples": [{"client": "EU", "datacenter": "eu-west", "ms": 20}]}
                           ).status_code == 409


def test_overrides_in_the_state_file(api: Api, tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    with_file = make_api(api.zones, state=state)
    headers = with_file.auth("write")
    put = with_file.client.put("/v1/overrides/192.0.2.10", headers=headers,
                               json={"mode": "drain", "seconds": 120, "reason": "maintenance"})
    assert put.status_code == 200, put.text
    until = yaml.safe_load(state.read_text())["overrides"]["192.0.2.10"]["until"]
    assert time.time() + 100 < until < time.time() + 130
    listed = with_file.client.get("/v1/overrides", headers=with_file.auth("read")).json()
    assert [(o["value"], o["mode"]) for o in listed] == [("192.0.2.10", "drain")]
    bad = with_file.client.put("/v1/overrides/192.0.2.10", headers=headers, json={"mode": "off", "seconds": 1})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "mode"
    assert with_file.client.put("/v1/overrides/x", headers=with_file.auth("read"),
                                json={"mode": "up", "seconds": 1}).status_code == 403
    assert with_file.client.delete("/v1/overrides/192.0.2.10", headers=headers).status_code == 204
    assert with_file.client.delete("/v1/overrides/192.0.2.10", headers=headers).status_code == 404


def test_overrides_and_rtt_in_redis(api: Api, redis_server: RedisProcess) -> None:
    import redis

    shared = make_api(api.zones, redis=redis_server.url)
    headers = shared.auth("write")
    assert shared.client.put("/v1/overrides/192.0.2.11", headers=headers,
                             json={"mode": "down", "seconds": 30}).status_code == 200
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    assert "192.0.2.11" in client.hgetall("gslb:overrides")
    assert shared.client.get("/v1/overrides", headers=headers).json()[0]["by"] == "write-user"
    samples = [{"client": "10.1.0.0/16", "datacenter": "eu-west", "ms": 12.5},
               {"client": "10.1.0.0/16", "datacenter": "us-east", "ms": 80},
               {"client": "not a net", "datacenter": "eu-west", "ms": 1}]
    reply = shared.client.post("/v1/telemetry/rtt", headers=headers, json={"samples": samples})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["accepted"] == 2 and len(body["invalid"]) == 1 and "not a net" in body["invalid"][0]
    assert set(client.hkeys("gslb:rtt")) == {"10.1.0.0/16|eu-west", "10.1.0.0/16|us-east"}
    flood = [{"client": "10.2.0.0/16", "datacenter": "eu-west", "ms": 5}] * 200
    limited = shared.client.post("/v1/telemetry/rtt", headers=headers, json={"samples": flood}).json()
    assert limited["limited"] >= 100 and limited["accepted"] <= 100
    too_many = shared.client.post("/v1/telemetry/rtt", headers=headers, json={"samples": flood * 6})
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "samples"
