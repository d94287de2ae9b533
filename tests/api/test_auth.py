"""Every route but /livez and the docs needs a token; the role and the zone limit decide."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import Api

SAMPLE = {"zone": "example.com.", "name": "www2", "type": "A", "pool": "web",
          "value": "192.0.2.11", "action": "drain", "datacenter": "us-east", "number": "1",
          "first": "0", "second": "1"}
OPEN = {"/livez", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document, path parameters filled in."""
    found = []
    for template, operations in api.client.get("/openapi.json").json()["paths"].items():
        if template not in OPEN:
            path = re.sub(r"{(\w+)}", lambda m: SAMPLE[m.group(1)], template)
            found += [(method.upper(), path) for method in operations]
    return found


def test_every_route_needs_a_token(api: Api) -> None:
    routes = _routes(api)
    assert len(routes) > 20
    for method, path in routes:
        reply = api.client.request(method, path)
        assert reply.status_code == 401, (method, path)
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.headers["www-authenticate"] == "Bearer"
        bad = api.client.request(method, path, headers={"Authorization": "Bearer gslb_nope_nope"})
        assert bad.status_code == 401, (method, path)


def test_read_token_cannot_change_anything(api: Api) -> None:
    mutating = [(m, p) for m, p in _routes(api) if m != "GET"]
    assert len(mutating) == 17
    for method, path in mutating:
        reply = api.client.request(method, path, headers=api.auth("read"), json={})
        assert reply.status_code == 403, (method, path, reply.text)
        assert "needs" in reply.json()["detail"]


def test_write_token_cannot_create_or_delete_zones_or_roll_back(api: Api) -> None:
    headers = api.auth("write")
    assert api.client.post("/v1/zones", headers=headers, json={"name": "x.test.", "text": ""}).status_code == 403
    assert api.client.delete("/v1/zones/example.net", headers=headers).status_code == 403
    assert api.client.post("/v1/versions/0/rollback", headers=headers).status_code == 403


def test_zone_limited_token(api: Api) -> None:
    headers = api.auth("net-writer")
    listed = api.client.get("/v1/zones", headers=headers).json()
    assert [z["name"] for z in listed] == ["example.net."]
    assert api.client.get("/v1/zones/example.com/rrsets", headers=headers).status_code == 403
    put = api.client.put("/v1/zones/example.com/rrsets/x/A", headers=headers,
                         json={"ttl": 60, "rdata": ["192.0.2.1"]})
    assert put.status_code == 403
    assert api.ask("x.example.com") == []
    ok = api.client.put("/v1/zones/example.net/rrsets/x/A", headers=headers,
                        json={"ttl": 60, "rdata": ["192.0.2.1"]})
    assert ok.status_code == 200, ok.text
    # a datacenter drain spans zones: only the token's zones are touched (none steer here)
    assert api.client.post("/v1/datacenters/us-east/drain", headers=headers).status_code == 404


def test_liveness_and_docs_are_open(api: Api) -> None:
    assert api.client.get("/livez").json()["status"] == "ok"
    assert api.client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize("role", ["read", "write", "admin"])
def test_revoked_token_stops_working(api: Api, role: str) -> None:
    from gslb.config.tokens import TokenStore

    store = TokenStore.for_zones(api.zones)
    token = next(t for t in store.list() if t.role == role)
    assert api.client.get("/v1/zones", headers=api.auth(role)).status_code == 200
    assert store.revoke(token.id)
    assert api.client.get("/v1/zones", headers=api.auth(role)).status_code == 401
