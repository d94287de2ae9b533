"""Steered records, pools, members and datacenters through the API."""

from __future__ import annotations

from tests.api.conftest import Api

WWW2 = "/v1/zones/example.com/steered/www2/A"


def _answers(api: Api, name: str = "www2.example.com") -> set[str]:
    return {address for draw in range(64) for address in api.ask(name, draw=draw)}


def test_weight_change_shifts_answers_and_keeps_comments(api: Api) -> None:
    assert _answers(api) == {"192.0.2.10", "192.0.2.11"}
    reply = api.client.patch(f"{WWW2}/members/192.0.2.10", headers=api.auth("write"), json={"weight": 0})
    assert reply.status_code == 200, reply.text
    assert _answers(api) == {"192.0.2.11"}
    text = (api.zones / "example.com.gslb.yaml").read_text()
    assert "# Failover: priority 1 answers while healthy" in text
    assert "- {value: 192.0.2.10, weight: 0, datacenter: us-east}" in text
    record = api.client.get(WWW2, headers=api.auth("read"))
    assert record.headers["etag"] == reply.headers["etag"]


def test_drain_undrain_member_and_datacenter(api: Api) -> None:
    headers = api.auth("write")
    assert api.client.post(f"{WWW2}/members/192.0.2.11/drain", headers=headers).status_code == 200
    assert _answers(api) == {"192.0.2.10"}
    assert api.client.post(f"{WWW2}/members/192.0.2.11/undrain", headers=headers).status_code == 200
    assert _answers(api) == {"192.0.2.10", "192.0.2.11"}
    reply = api.client.post("/v1/datacenters/eu-west/drain", headers=headers)
    assert reply.status_code == 200, reply.text
    assert _answers(api) == {"192.0.2.10"}
    assert api.ask("geo.example.com") == ["192.0.2.30"]
    assert api.client.post("/v1/datacenters/eu-west/undrain", headers=headers).status_code == 200
    assert _answers(api) == {"192.0.2.10", "192.0.2.11"}
    assert api.client.post("/v1/datacenters/nowhere/drain", headers=headers).status_code == 404


def test_create_replace_delete_steered_record_and_pools(api: Api) -> None:
    headers = api.auth("write")
    body = {"type": "A", "ttl": 30, "pools": {"p": {"members": [{"value": "192.0.2.200"}]}},
            "rules": [{"pool": "p"}], "policies": ["health", "weighted"]}
    created = api.client.put("/v1/zones/example.com/steered/lb/A", headers=headers, json=body)
    assert created.status_code == 200, created.text
    assert api.ask("lb.example.com") == ["192.0.2.200"]
    pool = {"members": [{"value": "192.0.2.201", "weight": 2}]}
    assert api.client.put("/v1/zones/example.com/steered/lb/A/pools/q", headers=headers,
                          json=pool).status_code == 422  # pool q is not used by any rule
    added = api.client.post("/v1/zones/example.com/steered/lb/A/pools/p/members", headers=headers,
                            json={"value": "192.0.2.201", "weight": 3})
    assert added.status_code == 200, added.text
    assert _answers(api, "lb.example.com") == {"192.0.2.200", "192.0.2.201"}
    removed = api.client.delete("/v1/zones/example.com/steered/lb/A/members/192.0.2.200", headers=headers)
    assert removed.status_code == 200
    assert _answers(api, "lb.example.com") == {"192.0.2.201"}
    assert api.client.delete("/v1/zones/example.com/steered/lb/A", headers=headers).status_code == 200
    assert api.ask("lb.example.com") == []
    listed = api.client.get("/v1/zones/example.com/steered", headers=headers).json()
    names = {r["name"] for r in listed}
    assert {"api.example.com.", "geo.example.com.", "www2.example.com."} <= names
    assert "lb.example.com." not in names


def test_invalid_steering_names_the_problem_and_changes_nothing(api: Api) -> None:
    before = (api.zones / "example.com.gslb.yaml").read_text()
    headers = api.auth("write")
    body = {"type": "A", "pools": {"p": {"members": [{"value": "not-an-ip", "datacenter": "mars"}]}}}
    reply = api.client.put("/v1/zones/example.com/steered/lb/A", headers=headers, json=body)
    assert reply.status_code == 422
    messages = " | ".join(e["message"] for e in reply.json()["errors"])
    assert "not-an-ip" in messages and 'unknown datacenter "mars"' in messages
    unknown = api.client.patch(f"{WWW2}/members/192.0.2.10", headers=headers, json={"wieght": 1})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "wieght"
    too_heavy = api.client.patch(f"{WWW2}/members/192.0.2.10", headers=headers, json={"weight": 5000})
    assert too_heavy.status_code == 422 and too_heavy.json()["errors"][0]["field"] == "weight"
    assert (api.zones / "example.com.gslb.yaml").read_text() == before


def test_stale_etag_on_member_change_is_412(api: Api) -> None:
    headers = api.auth("write")
    tag = api.client.get(WWW2, headers=headers).headers["etag"]
    first = api.client.patch(f"{WWW2}/members/192.0.2.10", headers={**headers, "If-Match": tag}, json={"weight": 5})
    assert first.status_code == 200
    second = api.client.patch(f"{WWW2}/members/192.0.2.11", headers={**headers, "If-Match": tag}, json={"weight": 5})
    assert second.status_code == 412
    record = api.client.get(WWW2, headers=headers).json()["record"]
    weights = {m["value"]: m.get("weight") for m in record["pools"]["web"]["members"]}
    assert weights["192.0.2.10"] == 5 and weights["192.0.2.11"] == 1


def test_dry_run_preview_shows_shares_before_and_after(api: Api) -> None:
    reply = api.client.post("/v1/datacenters/eu-west/drain", headers=api.auth("write"),
                            params={"dry_run": "true", "networks": ["10.0.0.0/24", "192.0.2.0/24"]})
    assert reply.status_code == 200, reply.text
    preview = {(p["name"], p["type"]): p for p in reply.json()["preview"]}
    www2 = {m["key"]: (m["before"], m["after"]) for m in preview[("www2.example.com.", "A")]["members"]}
    assert www2["192.0.2.10"] == (0.75, 1.0) and www2["192.0.2.11"] == (0.25, 0.0)
    geo_pools = {p["key"]: (p["before"], p["after"]) for p in preview[("geo.example.com.", "A")]["pools"]}
    assert geo_pools == {"internal": (0.5, 0.5), "public": (0.5, 0.5)}
    assert _answers(api) == {"192.0.2.10", "192.0.2.11"}  # nothing changed


def test_explain_matches_the_dns_answer(api: Api) -> None:
    reply = api.client.get("/v1/explain", headers=api.auth("read"),
                           params={"name": "geo.example.com", "client": "192.0.2.1", "ecs": "10.1.2.0/24"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["steered"] and body["pool"] == "internal" and body["values"] == ["10.0.0.80"]
    assert body["scope"] == 8 and "10.0.0.80" in body["answer"]
    bad = api.client.get("/v1/explain", headers=api.auth("read"), params={"name": "x", "client": "nope"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "client"
