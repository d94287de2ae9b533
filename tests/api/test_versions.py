"""Versions, diffs, rollback, audit; zones created, exported and deleted."""

from __future__ import annotations

import time

from tests.api.conftest import Api, make_api

RRSET = "/v1/zones/example.com/rrsets"


def test_versions_diff_rollback_and_audit(api: Api) -> None:
    headers = api.auth("admin")
    start = time.time()
    api.client.put(f"{RRSET}/one/A", headers=headers, json={"ttl": 60, "rdata": ["192.0.2.1"]})
    api.client.patch("/v1/zones/example.com/steered/www2/A/members/192.0.2.10", headers=api.auth("write"),
                     json={"weight": 0})
    api.client.put(f"{RRSET}/one/A", headers=headers, json={"ttl": 60, "rdata": ["192.0.2.2"]})
    listed = api.client.get("/v1/versions", headers=headers).json()
    assert [v["number"] for v in listed] == [3, 2, 1]
    assert listed[1]["author"] == "write-user" and listed[0]["author"] == "admin-user"
    shown = api.client.get("/v1/versions/1", headers=headers).json()
    assert [(c["kind"], c["name"], c["type"]) for c in shown["changes"]] == [
        ("rrset", "one.example.com.", "A"), ("rrset", "example.com.", "SOA")]
    diff = api.client.get("/v1/versions/0/diff/3", headers=headers).json()
    one = next(c for c in diff if c["name"] == "one.example.com.")
    assert one["before"] is None and one["after"]["rdata"] == ["192.0.2.2"]
    assert {(c["kind"], c["name"]) for c in diff} == {
        ("rrset", "one.example.com."), ("rrset", "example.com."), ("steered", "www2.example.com.")}

    rolled = api.client.post("/v1/versions/1/rollback", headers=headers)
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] == 4
    assert api.ask("one.example.com") == ["192.0.2.1"]
    weights = {a for d in range(64) for a in api.ask("www2.example.com", draw=d)}
    assert weights == {"192.0.2.10", "192.0.2.11"}
    serial = api.client.get("/v1/zones/example.com", headers=headers).json()["serial"]
    assert serial == 2026112401 + 4  # rollbacks move the serial forward too

    audit = api.client.get("/v1/audit", headers=headers, params={"name": "one.example.com."}).json()
    assert [e["version"] for e in audit] == [4, 3, 1]
    assert api.client.get("/v1/audit", headers=headers, params={"zone": "example.net"}).json() == []
    assert api.client.get("/v1/audit", headers=headers, params={"since": start - 1, "author": "write-user"}
                          ).json()[0]["kind"] == "steered"
    assert api.client.get("/v1/audit", headers=headers, params={"until": start - 10}).json() == []
    assert api.client.get("/v1/versions/99", headers=headers).status_code == 404


def test_restart_keeps_changes_and_versions(api: Api) -> None:
    api.client.put(f"{RRSET}/kept/AAAA", headers=api.auth("write"), json={"ttl": 60, "rdata": ["2001:db8::7"]})
    again = make_api(api.zones)
    assert again.ask("kept.example.com", "AAAA") == ["2001:db8::7"]
    assert again.server.live.version == 1
    assert len(again.client.get("/v1/versions", headers=again.auth()).json()) == 1


def test_interrupted_commit_is_finished_at_start(api: Api) -> None:
    """A version accepted (its file and `head` written), the crash before the zone file
    was rewritten: the next start writes the file (the version was live)."""
    from gslb.config.filestore import FileStore, write_atomic

    api.client.put(f"{RRSET}/crash/A", headers=api.auth("write"), json={"ttl": 60, "rdata": ["192.0.2.3"]})
    store = FileStore(api.zones)
    text = (api.zones / "example.com.zone").read_text()
    (api.zones / "example.com.zone").write_text(text.replace("crash.example.com. 60 IN A 192.0.2.3\n", ""))
    write_atomic(store.root / "written", "0")
    again = make_api(api.zones)
    assert again.ask("crash.example.com") == ["192.0.2.3"]
    assert store.written() == 1 and store.head() == 1
    assert "crash.example.com. 60 IN A 192.0.2.3" in (api.zones / "example.com.zone").read_text()


def test_a_version_never_accepted_is_ignored(api: Api) -> None:
    """The crash before `head` moved: nobody saw the version; the next commit reuses its number."""
    from gslb.config.filestore import FileStore, write_atomic

    api.client.put(f"{RRSET}/ghost/A", headers=api.auth("write"), json={"ttl": 60, "rdata": ["192.0.2.4"]})
    store = FileStore(api.zones)
    text = (api.zones / "example.com.zone").read_text()
    (api.zones / "example.com.zone").write_text(text.replace("ghost.example.com. 60 IN A 192.0.2.4\n", ""))
    write_atomic(store.root / "head", "0")
    write_atomic(store.root / "written", "0")
    again = make_api(api.zones)
    assert again.ask("ghost.example.com") == []
    put = again.client.put(f"{RRSET}/real/A", headers=again.auth("write"), json={"ttl": 60, "rdata": ["192.0.2.5"]})
    assert put.json()["version"] == 1
    assert [c["name"] for c in again.client.get("/v1/versions/1", headers=again.auth()).json()["changes"]][0] == "real.example.com."


def test_zone_create_export_delete(api: Api) -> None:
    headers = api.auth("admin")
    body = {"name": "example.org", "rrsets": [
        {"name": "@", "type": "SOA", "ttl": 3600, "rdata": ["ns1 hostmaster 1 7200 3600 1209600 300"]},
        {"name": "@", "type": "NS", "ttl": 3600, "rdata": ["ns1"]},
        {"name": "ns1", "type": "A", "ttl": 3600, "rdata": ["192.0.2.53"]},
        {"name": "www", "type": "A", "ttl": 60, "rdata": ["192.0.2.80"]}]}
    created = api.client.post("/v1/zones", headers=headers, json=body)
    assert created.status_code == 201, created.text
    assert api.ask("www.example.org") == ["192.0.2.80"]
    assert (api.zones / "example.org.zone").exists()
    assert api.client.post("/v1/zones", headers=headers, json=body).status_code == 409
    exported = api.client.get("/v1/zones/example.org/export", headers=headers)
    assert exported.headers["content-type"].startswith("text/dns")
    assert "www.example.org. 60 IN A 192.0.2.80" in exported.text
    text = api.client.post("/v1/zones", headers=headers, json={"name": "copy.test.", "text": exported.text.replace(
        "example.org.", "copy.test.")})
    assert text.status_code == 201, text.text
    broken = api.client.post("/v1/zones", headers=headers, json={"name": "bad.test", "text": "$ORIGIN bad.test.\nwww 60 IN A 192.0.2.1\n"})
    assert broken.status_code == 422
    assert any("no SOA" in e["message"] for e in broken.json()["errors"])
    stale = api.client.delete("/v1/zones/example.org", headers={**headers, "If-Match": '"serial-1"'})
    assert stale.status_code == 200  # the serial is still 1: the ETag holds
    assert api.ask("www.example.org") == []
    assert not (api.zones / "example.org.zone").exists()
    rolled = api.client.post(f"/v1/versions/{stale.json()['version'] - 1}/rollback", headers=headers)
    assert rolled.status_code == 200, rolled.text
    assert api.ask("www.example.org") == ["192.0.2.80"]
