"""RRsets through the API: validation naming the field, serials, ETags, files, answers."""

from __future__ import annotations

import subprocess
import sys
import threading

from tests.api.conftest import Api

RRSET = "/v1/zones/example.com/rrsets"


def _serial(api: Api) -> int:
    return api.client.get("/v1/zones/example.com", headers=api.auth("read")).json()["serial"]


def test_put_get_delete_with_serial_bumps_and_live_answers(api: Api) -> None:
    headers = api.auth("write")
    serial = _serial(api)
    put = api.client.put(f"{RRSET}/shop/A", headers=headers, json={"ttl": 120, "rdata": ["192.0.2.50", "192.0.2.51"]})
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 1
    assert api.ask("shop.example.com") == ["192.0.2.50", "192.0.2.51"]
    assert _serial(api) == serial + 1
    got = api.client.get(f"{RRSET}/shop.example.com./A", headers=api.auth("read"))
    assert got.json() == {"name": "shop.example.com.", "type": "A", "ttl": 120,
                          "rdata": ["192.0.2.50", "192.0.2.51"]}
    assert got.headers["etag"] == put.headers["etag"]
    # relative names in rdata are in the zone; the file keeps its comments
    mx = api.client.put(f"{RRSET}/shop/MX", headers=headers, json={"ttl": 300, "rdata": ["10 mail"]})
    assert mx.status_code == 200, mx.text
    text = (api.zones / "example.com.zone").read_text()
    assert "shop.example.com. 300 IN MX 10 mail.example.com." in text
    assert text.count(";") == (api.zones.parent / "zones").joinpath("example.com.zone").read_text().count(";")
    assert api.client.delete(f"{RRSET}/shop/A", headers=headers).status_code == 200
    assert api.ask("shop.example.com") == []
    assert api.client.get(f"{RRSET}/shop/A", headers=api.auth("read")).status_code == 404
    assert _serial(api) == serial + 3
    check = subprocess.run([sys.executable, "-m", "gslb.cli", "check", "--zones", str(api.zones)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_validation_errors_name_the_field_and_change_nothing(api: Api) -> None:
    headers = api.auth("write")
    cases = [
        (f"{RRSET}/bad/A", {"ttl": 60, "rdata": ["192.0.2.1", "not-an-address"]}, "rdata[1]"),
        (f"{RRSET}/bad/A", {"ttl": -1, "rdata": ["192.0.2.1"]}, "ttl"),
        (f"{RRSET}/bad/A", {"ttl": 60, "rdata": ["192.0.2.1"], "comment": "x"}, "comment"),
        (f"{RRSET}/bad/A", {"rdata": ["192.0.2.1"]}, "ttl"),
        (f"{RRSET}/bad.example.org./A", {"ttl": 60, "rdata": ["192.0.2.1"]}, "name"),
        (f"{RRSET}/bad/BOGUS", {"ttl": 60, "rdata": ["x"]}, "type"),
        (f"{RRSET}/app/TXT", {"ttl": 60, "rdata": ['"beside a CNAME"']}, "type"),
        (f"{RRSET}/www2/A", {"ttl": 60, "rdata": ["192.0.2.1"]}, "type"),  # steered
        (f"{RRSET}/sub2/NS", {"ttl": 60, "rdata": ["ns.sub2"]}, "rdata[0]"),  # no glue
        (f"{RRSET}/deep/SOA", {"ttl": 60, "rdata": ["a. b. 1 2 3 4 5"]}, "name"),
    ]
    before = (api.zones / "example.com.zone").read_text()
    for path, body, field in cases:
        reply = api.client.put(path, headers=headers, json=body)
        assert reply.status_code == 422, (path, body, reply.text)
        assert reply.headers["content-type"] == "application/problem+json"
        problem = reply.json()
        assert problem["status"] == 422 and problem["title"]
        assert field in [e["field"] for e in problem["errors"]], (field, problem)
    apex_ns = api.client.delete(f"{RRSET}/@/NS", headers=headers)
    assert apex_ns.status_code == 422 and apex_ns.json()["errors"][0]["field"] == "type"
    assert (api.zones / "example.com.zone").read_text() == before
    assert api.client.get("/v1/versions", headers=api.auth("read")).json() == []


def test_list_pages_through_the_zone(api: Api) -> None:
    first = api.client.get(RRSET, headers=api.auth("read"), params={"limit": 3}).json()
    assert first["more"] and first["rrsets"][0]["type"] == "SOA"
    rest = api.client.get(RRSET, headers=api.auth("read"), params={"offset": 3, "limit": 1000}).json()
    assert not rest["more"]
    names = {r["name"] for r in first["rrsets"] + rest["rrsets"]}
    assert "www.example.com." in names or "web.example.com." in names


def test_two_writers_one_gets_412_nothing_lost(api: Api) -> None:
    headers = api.auth("write")
    api.client.put(f"{RRSET}/race/A", headers=headers, json={"ttl": 60, "rdata": ["192.0.2.1"]})
    tag = api.client.get(f"{RRSET}/race/A", headers=headers).headers["etag"]
    results: list[int] = []

    def writer(address: str) -> None:
        reply = api.client.put(f"{RRSET}/race/A", headers={**headers, "If-Match": tag},
                               json={"ttl": 60, "rdata": [address]})
        results.append(reply.status_code)

    threads = [threading.Thread(target=writer, args=(f"192.0.2.{n}",)) for n in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 412]
    final = api.client.get(f"{RRSET}/race/A", headers=headers).json()["rdata"]
    assert final in (["192.0.2.2"], ["192.0.2.3"])
    assert api.ask("race.example.com") == final
    assert len(api.client.get("/v1/versions", headers=headers).json()) == 2


def test_stale_if_match_on_delete_is_412(api: Api) -> None:
    headers = api.auth("write")
    reply = api.client.delete(f"{RRSET}/www/CNAME", headers={**headers, "If-Match": '"stale"'})
    assert reply.status_code in (404, 412)
    target = api.client.get(RRSET, headers=headers).json()["rrsets"][-1]
    path = f"{RRSET}/{target['name']}/{target['type']}"
    assert api.client.delete(path, headers={**headers, "If-Match": '"stale"'}).status_code == 412


def test_dry_run_changes_nothing(api: Api) -> None:
    reply = api.client.put(f"{RRSET}/dry/A", headers=api.auth("write"), params={"dry_run": "true"},
                           json={"ttl": 60, "rdata": ["192.0.2.9"]})
    assert reply.status_code == 200
    assert reply.json()["dry_run"] and reply.json()["version"] is None
    assert [c["type"] for c in reply.json()["changes"]] == ["A", "SOA"]
    assert api.ask("dry.example.com") == []
    assert "dry" not in (api.zones / "example.com.zone").read_text()


def test_body_size_is_bounded(api: Api) -> None:
    big = {"ttl": 60, "rdata": ['"' + "x" * 200 + '"'] * 6000}
    reply = api.client.put(f"{RRSET}/big/TXT", headers=api.auth("write"), json=big)
    assert reply.status_code == 413
    assert reply.headers["content-type"] == "application/problem+json"


def test_ipseckey_without_a_public_key_is_accepted_as_in_zone_files(api: Api) -> None:
    """RFC 4025 section 2.6: the key is optional. A zone file may hold `10 0 0 .` (Knot
    DNS and NSD load it), so the API takes it too, and shows it back as written."""
    rdata = ["10 0 0 .", "20 3 2 gw AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ=="]
    put = api.client.put(f"{RRSET}/vpn/IPSECKEY", headers=api.auth("write"),
                         json={"ttl": 300, "rdata": rdata})
    assert put.status_code == 200, put.text
    got = api.client.get(f"{RRSET}/vpn/IPSECKEY", headers=api.auth("read")).json()
    key = "AQNRU3mG7TVTO2BkR47usntb102uFJtu gbo6BSGvgqt4AQ=="  # in dnspython's spelling
    assert got["rdata"] == ["10 0 0 .", f"20 3 2 gw.example.com. {key}"]
    assert api.ask("vpn.example.com", "IPSECKEY") == ["10 0 0 . ", f"20 3 2 gw.example.com. {key}"]
